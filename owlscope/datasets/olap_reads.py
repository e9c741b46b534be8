"""What runs need from the OLAP store: the run items' observations and traces (input, output,
times, cost) and their scores. Reads are bounded by the ids of one page or one run; every query
filters on project_id first.

Aliases never equal a column name (ClickHouse would substitute them inside the aggregates).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from owlscope.storage.olap.client import Olap
from owlscope.tracing.scores import SCORE_COLUMNS, score_v2

_CHUNK = 2000


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    vals = sorted(set(values))
    for i in range(0, len(vals), _CHUNK):
        yield vals[i:i + _CHUNK]


def utc(value: datetime | None) -> datetime | None:
    """A DateTime64 read back from the store as aware UTC; the epoch (an unset value) as None."""
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return None if value.timestamp() == 0 else value


def parse_json(text: str | None) -> Any:
    if text is None or text == "":
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _cost(costs: dict[str, float] | None) -> float | None:
    if not costs:
        return None
    return float(costs["total"]) if "total" in costs else float(sum(costs.values()))


def observations_by_key(olap: Olap, project_id: str, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """(trace_id, observation_id) -> merged observation: input, output, start, end, level,
    environment, metadata (parsed), cost."""
    keys = list(set(keys))
    out: dict[tuple[str, str], dict] = {}
    for tids in _chunks(k[0] for k in keys):
        tset = set(tids)
        rows = olap.query(
            "SELECT trace_id, id, argMaxIfMerge(input) AS x_in, argMaxIfMerge(output) AS x_out,"
            " argMaxIfMerge(start_time) AS x_start, argMaxIfMerge(end_time) AS x_end,"
            " argMaxIfMerge(level) AS x_level, argMaxIfMerge(environment) AS x_env,"
            " argMaxIfMerge(metadata) AS x_md, argMaxIfMerge(cost_details) AS x_cost"
            " FROM {db}.observations WHERE project_id = {p:String} AND trace_id IN {t:Array(String)}"
            " AND id IN {ids:Array(String)} GROUP BY trace_id, id",
            {"p": project_id, "t": tids, "ids": sorted({k[1] for k in keys if k[0] in tset})},
        )
        for tid, oid, inp, outp, start, end, level, env, md, cost in rows:
            out[(tid, oid)] = {
                "input": parse_json(inp), "output": parse_json(outp), "start": utc(start), "end": utc(end),
                "level": level or "DEFAULT", "environment": env or "default", "metadata": parse_json(md),
                "cost": _cost(cost),
            }
    return out


def trace_summaries(olap: Olap, project_id: str, trace_ids: Iterable[str]) -> dict[str, dict]:
    """trace_id -> input, output (explicit, else the root span's), start, end (over the trace's
    observations), latency in seconds and total cost."""
    out: dict[str, dict] = {}
    for tids in _chunks(trace_ids):
        params = {"p": project_id, "t": tids}
        for tid, inp, outp, ts in olap.query(
            "SELECT id, if(argMaxIfMerge(input) != '', argMaxIfMerge(input), argMaxIfMerge(root_input)) AS x_in,"
            " if(argMaxIfMerge(output) != '', argMaxIfMerge(output), argMaxIfMerge(root_output)) AS x_out,"
            " min(timestamp) AS x_ts FROM {db}.traces WHERE project_id = {p:String} AND id IN {t:Array(String)}"
            " GROUP BY id", params,
        ):
            out[tid] = {"input": parse_json(inp), "output": parse_json(outp), "start": utc(ts), "end": None,
                        "latency": None, "cost": None}
        for tid, start, end, cost in olap.query(
            "SELECT trace_id, min(x_start), max(x_end), sum(x_cost) FROM ("
            " SELECT trace_id, id, argMaxIfMerge(start_time) AS x_start, argMaxIfMerge(end_time) AS x_end,"
            " if(mapContains(argMaxIfMerge(cost_details), 'total'), argMaxIfMerge(cost_details)['total'],"
            "    arraySum(mapValues(argMaxIfMerge(cost_details)))) AS x_cost"
            " FROM {db}.observations WHERE project_id = {p:String} AND trace_id IN {t:Array(String)}"
            " GROUP BY trace_id, id) GROUP BY trace_id", params,
        ):
            rec = out.setdefault(tid, {"input": None, "output": None, "start": None, "end": None,
                                       "latency": None, "cost": None})
            start, end = utc(start), utc(end)
            rec["start"] = start or rec["start"]
            rec["end"] = end
            if start is not None and end is not None:
                rec["latency"] = round((end - start).total_seconds(), 3)
            rec["cost"] = float(cost) if cost else None
    return out


def scores_for_traces(olap: Olap, project_id: str, trace_ids: Iterable[str]) -> dict[str, list[dict]]:
    """trace_id -> its scores (the API's `Score` shape), oldest first."""
    out: dict[str, list[dict]] = {}
    for tids in _chunks(trace_ids):
        rows = olap.query_dicts(
            f"SELECT {SCORE_COLUMNS} FROM {{db}}.scores FINAL WHERE project_id = {{p:String}}"
            " AND trace_id IN {t:Array(String)} ORDER BY timestamp, id", {"p": project_id, "t": tids},
        )
        for r in rows:
            out.setdefault(r["trace_id"], []).append(score_v2(r))
    return out


def scores_for_runs(olap: Olap, project_id: str, run_ids: Iterable[str]) -> dict[str, list[dict]]:
    """dataset_run_id -> its run-level scores (the API's `Score` shape), oldest first."""
    out: dict[str, list[dict]] = {}
    for rids in _chunks(run_ids):
        rows = olap.query_dicts(
            f"SELECT {SCORE_COLUMNS} FROM {{db}}.scores FINAL WHERE project_id = {{p:String}}"
            " AND dataset_run_id IN {r:Array(String)} ORDER BY timestamp, id", {"p": project_id, "r": rids},
        )
        for r in rows:
            out.setdefault(r["dataset_run_id"], []).append(score_v2(r))
    return out


def observation_trace(olap: Olap, project_id: str, observation_id: str) -> str | None:
    """The trace of an observation (to infer a run item's traceId from its observationId)."""
    rows = olap.query(
        "SELECT trace_id FROM {db}.observations WHERE project_id = {p:String} AND id = {o:String} LIMIT 1",
        {"p": project_id, "o": observation_id},
    )
    return rows[0][0] if rows else None
