"""The shapes the trace page draws (not a router): the observation tree in order, the rows the
browser draws as a virtualised tree and as a timeline (static/tracing-views.js), and the agent
graph (observations grouped by type and name, laid out by nesting: agent → tool → generation).

Everything here works from the trace the read model returned (owlscope.tracing.traces.get_trace);
it reads nothing itself.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from owlscope.web import numbers, present

AGENT_TYPES = {"AGENT", "TOOL"}  # a trace with one of these gets the graph view
SERVER_ROWS = 300  # up to this many observations the tree comes as HTML; more: drawn by the browser (virtualised)
GRAPH_COLUMN_W = 230  # px between the graph's layers
GRAPH_ROW_H = 78  # px between nodes of a layer
GRAPH_NODE_W = 190
GRAPH_NODE_H = 58


def _seconds(iso: str | None) -> float | None:
    parsed = present.parse_iso(iso)
    return parsed.timestamp() if parsed else None


def observation_tree(observations: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The observations in tree order (depth first; siblings by start, then end, then name) with
    their depth and their timeline bar (left offset and width in % of the trace's span)."""
    by_id = {o["id"]: o for o in observations}
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    roots = []
    for o in observations:
        parent = o.get("parentObservationId")
        if parent and parent in by_id and parent != o["id"]:
            children[parent].append(o)
        else:
            roots.append(o)
    times = {o["id"]: (_seconds(o["startTime"]), _seconds(o.get("endTime"))) for o in observations}  # parsed once
    starts = [s for s, _ in times.values() if s is not None]
    ends = [e if e is not None else s for s, e in times.values() if (e if e is not None else s) is not None]
    t0 = min(starts) if starts else 0.0
    span = max((max(ends) - t0) if ends else 0.0, 0.001)

    def order(o: dict[str, Any]) -> tuple[float, float, str, str]:
        # siblings that start in the same millisecond: the one that ends first, then by name
        start, end = times[o["id"]]
        return (start or t0, end if end is not None else math.inf, o.get("name") or "", o["id"])

    roots.sort(key=order)
    for kids in children.values():
        kids.sort(key=order)
    nodes: list[dict[str, Any]] = []
    seen: set[str] = set()

    def visit(root: dict[str, Any]) -> None:
        stack = [(root, 0)]  # iterative: a 10,000-deep chain must not hit the recursion limit
        while stack:
            o, depth = stack.pop()
            if o["id"] in seen:
                continue
            seen.add(o["id"])
            start, end = times[o["id"]]
            start = start or t0
            left = (start - t0) / span * 100
            width = ((end - start) / span * 100) if end is not None else 0.0
            nodes.append({"obs": o, "depth": depth, "left": round(min(left, 99.5), 3),
                          "width": round(max(min(width, 100 - left), 0.4), 3), "open_ended": end is None,
                          "start": start - t0, "end": (end - t0) if end is not None else None,
                          "children": len(children.get(o["id"], []))})
            stack.extend((c, depth + 1) for c in reversed(children.get(o["id"], [])))

    for r in roots:
        visit(r)
    for o in observations:  # cycles: show what the walk did not reach
        visit(o)
    return nodes, {"start": t0, "span": span}


def tree_rows(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the browser needs to draw each row of the tree and of the timeline (times in ms from
    the trace's first observation; `e` None for an observation without an end)."""
    rows = []
    for n in nodes:
        o = n["obs"]
        meta = numbers.duration(o["latency"]) if o.get("latency") is not None else ""
        if o.get("calculatedTotalCost"):
            meta = f"{meta} · {numbers.cost(o['calculatedTotalCost'])}" if meta else numbers.cost(o["calculatedTotalCost"])
        rows.append({
            "id": o["id"], "n": o.get("name") or o["id"], "t": (o.get("type") or "SPAN").upper(), "d": n["depth"],
            "s": round(n["start"] * 1000, 3), "e": round(n["end"] * 1000, 3) if n["end"] is not None else None,
            "l": o.get("level") or "DEFAULT", "m": meta, "k": n["children"],
        })
    return rows


def agent_graph(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Observations grouped by (type, name), placed in layers by nesting, with how many ran, their
    total and average latency, their errors, and edges counting parent → child calls. None for a
    trace without agent or tool observations."""
    if not any((n["obs"].get("type") or "").upper() in AGENT_TYPES for n in nodes):
        return None
    by_id = {n["obs"]["id"]: n for n in nodes}
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    edges: dict[tuple[tuple[str, str], tuple[str, str]], int] = defaultdict(int)
    for n in nodes:
        o = n["obs"]
        key = ((o.get("type") or "SPAN").upper(), o.get("name") or "(unnamed)")
        g = groups.setdefault(key, {"type": key[0], "name": key[1], "count": 0, "latency": 0.0, "timed": 0,
                                    "errors": 0, "layer": n["depth"], "first": len(groups)})
        g["count"] += 1
        g["layer"] = min(g["layer"], n["depth"])
        if o.get("latency") is not None:
            g["latency"] += o["latency"]
            g["timed"] += 1
        if o.get("level") == "ERROR":
            g["errors"] += 1
        parent = by_id.get(o.get("parentObservationId") or "")
        if parent is not None:
            po = parent["obs"]
            pkey = ((po.get("type") or "SPAN").upper(), po.get("name") or "(unnamed)")
            if pkey != key:
                edges[(pkey, key)] += 1
    # A group sits one layer right of its deepest parent group (so edges point rightwards).
    layer = {k: 0 for k in groups}
    for _ in range(len(groups)):
        changed = False
        for (a, b), _count in edges.items():
            if layer[b] < layer[a] + 1 and layer[a] + 1 < len(groups):
                layer[b] = layer[a] + 1
                changed = True
        if not changed:
            break
    columns: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for k in sorted(groups, key=lambda k: (layer[k], groups[k]["first"])):
        columns[layer[k]].append(k)
    out_nodes = []
    pos: dict[tuple[str, str], tuple[int, int]] = {}
    for col, keys in sorted(columns.items()):
        for row, k in enumerate(keys):
            g = groups[k]
            x, y = col * GRAPH_COLUMN_W, row * GRAPH_ROW_H
            pos[k] = (x, y)
            out_nodes.append({
                **g, "x": x, "y": y, "key": f"{k[0]}:{k[1]}",
                "avg": numbers.duration(g["latency"] / g["timed"]) if g["timed"] else "—",
                "total": numbers.duration(g["latency"]) if g["timed"] else "—",
            })
    out_edges = []
    for (a, b), count in edges.items():
        (x1, y1), (x2, y2) = pos[a], pos[b]
        sx, sy = x1 + GRAPH_NODE_W, y1 + GRAPH_NODE_H / 2
        ex, ey = x2, y2 + GRAPH_NODE_H / 2
        if ex <= sx:  # same or earlier layer (a cycle): curve around
            path = f"M{sx},{sy} C{sx + 40},{sy} {ex - 40},{ey} {ex},{ey}"
        else:
            mid = (sx + ex) / 2
            path = f"M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}"
        out_edges.append({"from": f"{a[0]}:{a[1]}", "to": f"{b[0]}:{b[1]}", "count": count, "path": path,
                          "lx": (sx + ex) / 2, "ly": (sy + ey) / 2 - 4})
    width = (max(columns) + 1) * GRAPH_COLUMN_W - (GRAPH_COLUMN_W - GRAPH_NODE_W)
    height = max(len(v) for v in columns.values()) * GRAPH_ROW_H - (GRAPH_ROW_H - GRAPH_NODE_H)
    return {"nodes": out_nodes, "edges": out_edges, "width": width, "height": height,
            "node_w": GRAPH_NODE_W, "node_h": GRAPH_NODE_H}


def trace_view_values(trace: dict[str, Any]) -> dict[str, Any]:
    """The trace page's tree, timeline and graph."""
    nodes, timeline = observation_tree(trace["observations"])
    return {"nodes": nodes, "timeline": timeline, "tree_rows": tree_rows(nodes), "graph": agent_graph(nodes),
            "server_rows": SERVER_ROWS}
