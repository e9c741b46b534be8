"""The trace page's shapes (owlscope/web/views/trace_layout.py): tree order, timeline rows and the
agent graph, from observations as the read model returns them."""

from __future__ import annotations

from owlscope.web.views.trace_layout import agent_graph, observation_tree, tree_rows


def obs(id_: str, start: str, end: str | None, *, parent: str | None = None, type_: str = "SPAN", name: str = "",
        level: str = "DEFAULT", latency: float | None = None) -> dict:
    return {"id": id_, "startTime": f"2026-01-05T10:00:{start}Z", "endTime": f"2026-01-05T10:00:{end}Z" if end else None,
            "parentObservationId": parent, "type": type_, "name": name or id_, "level": level, "latency": latency}


def test_siblings_in_the_same_millisecond_go_by_end_then_name() -> None:
    observations = [
        obs("root", "00.000", "01.000"),
        obs("c", "00.100", "00.300", parent="root", name="zz"),
        obs("b", "00.100", "00.200", parent="root", name="yy"),
        obs("a", "00.100", "00.200", parent="root", name="xx"),
        obs("d", "00.050", None, parent="root", name="early"),
    ]
    for shuffled in (observations, list(reversed(observations))):
        nodes, _ = observation_tree(shuffled)
        assert [n["obs"]["id"] for n in nodes] == ["root", "d", "a", "b", "c"]


def test_timeline_rows_carry_offsets_in_ms_and_depth() -> None:
    nodes, timeline = observation_tree([obs("r", "00.000", "02.000"), obs("k", "00.500", "01.250", parent="r"),
                                        obs("e", "01.500", None, parent="k", type_="EVENT")])
    rows = tree_rows(nodes)
    assert timeline["span"] == 2.0
    assert [(r["id"], r["d"], r["s"], r["e"], r["t"]) for r in rows] == [
        ("r", 0, 0.0, 2000.0, "SPAN"), ("k", 1, 500.0, 1250.0, "SPAN"), ("e", 2, 1500.0, None, "EVENT")]


def test_a_deep_chain_does_not_recurse() -> None:
    chain = [obs("o0", "00.000", "01.000")] + [obs(f"o{i}", "00.000", "01.000", parent=f"o{i - 1}") for i in range(1, 5000)]
    nodes, _ = observation_tree(chain)
    assert len(nodes) == 5000 and nodes[-1]["depth"] == 4999


def test_agent_graph_groups_by_type_and_name_and_lays_out_by_nesting() -> None:
    observations = [obs("a", "00.000", "01.000", type_="AGENT", name="planner", latency=1.0)]
    for k in range(3):
        observations.append(obs(f"t{k}", f"00.{k}00", f"00.{k}50", parent="a", type_="TOOL", name="search", latency=0.05))
        observations.append(obs(f"g{k}", f"00.{k}10", f"00.{k}40", parent=f"t{k}", type_="GENERATION", name="llm",
                                latency=0.03, level="ERROR" if k == 2 else "DEFAULT"))
    nodes, _ = observation_tree(observations)
    graph = agent_graph(nodes)
    by_key = {n["key"]: n for n in graph["nodes"]}
    assert {k: (n["count"], n["errors"]) for k, n in by_key.items()} == {
        "AGENT:planner": (1, 0), "TOOL:search": (3, 0), "GENERATION:llm": (3, 1)}
    assert by_key["AGENT:planner"]["x"] < by_key["TOOL:search"]["x"] < by_key["GENERATION:llm"]["x"]
    assert by_key["TOOL:search"]["avg"] == "50ms"
    assert sorted((e["from"], e["to"], e["count"]) for e in graph["edges"]) == [
        ("AGENT:planner", "TOOL:search", 3), ("TOOL:search", "GENERATION:llm", 3)]


def test_no_graph_without_agents_or_tools() -> None:
    nodes, _ = observation_tree([obs("s", "00.000", "01.000"), obs("g", "00.100", "00.200", parent="s", type_="GENERATION")])
    assert agent_graph(nodes) is None
