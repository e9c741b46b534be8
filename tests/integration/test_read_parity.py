"""One filter, one answer: the traces API, the traces table of the UI, the evaluator matcher and the
dataset reader select the same traces, on chDB and on ClickHouse over HTTP.

The traces are written in pieces (separate inserts, so separate parts) whose merged values differ
from some pieces' values: a user changed by a later event, metadata merged key by key, a level left
unset next to a DEBUG one. Every reader must judge the merged trace.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from owlscope.datasets.olap_reads import trace_summaries
from owlscope.evals.matching import match_traces, parse_conditions
from owlscope.ingestion.rows import ObservationEvent, TraceEvent
from owlscope.tracing.trace_table import TraceFilters, list_trace_table
from read_fixtures import T0, ReadApi, fixture_read_api, fixture_read_olap, insert, s, z  # noqa: F401

P = "parity"
ALL = {"t1", "t2", "t3", "t4", "t5"}


def _trace(tid: str, at: float, **kw: Any) -> TraceEvent:
    return TraceEvent(P, tid, T0 + s(at), timestamp=T0 + s(at), **kw)


def _obs(oid: str, tid: str, at: float, cost: float, **kw: Any) -> ObservationEvent:
    return ObservationEvent(P, oid, tid, T0 + s(at), type="GENERATION", start_time=T0 + s(at),
                            end_time=T0 + s(at + 1), cost_details={"total": cost}, **kw)


@pytest.fixture(scope="module")
def parity(read_api: ReadApi) -> ReadApi:
    olap = read_api.olap
    insert(olap, traces=[
        _trace("t1", 0, user_id="u1", environment="production", tags=["a", "b"], metadata='{"k": "v"}'),
        _trace("t2", 10, user_id="u2", tags=["a"], metadata='{"k": "w"}'),
        _trace("t3", 20, user_id="u1", environment="production", tags=["b"], metadata='{"k": "v", "n": 1}'),
        _trace("t4", 30, user_id="u2", environment="staging"),
        _trace("t5", 40, environment="default"),
    ], observations=[
        _obs("o1", "t1", 0, 0.5, level="DEBUG"),
        _obs("o3", "t3", 20, 1.0, level="ERROR"),
        _obs("o4", "t4", 30, 0.25, level="WARNING"),
    ])
    # Later pieces: t1's metadata gains a key (k stays), t4 changes user, t1/t2/t3 get more observations.
    insert(olap, traces=[
        TraceEvent(P, "t1", T0 + s(100), metadata='{"extra": true}'),
        TraceEvent(P, "t4", T0 + s(100), user_id="u1"),
    ], observations=[
        _obs("o2", "t1", 1, 0.5),  # no level: DEFAULT, so t1 is a DEFAULT trace
        _obs("o5", "t2", 10, 2.0, level="DEBUG"),
        _obs("o6", "t3", 21, 0.0, level="DEFAULT"),
    ])
    return read_api


def _cond(column: str, operator: str, value: Any, type_: str, key: str | None = None) -> dict[str, Any]:
    out = {"column": column, "operator": operator, "value": value, "type": type_}
    if key is not None:
        out["key"] = key
    return out


# name: (API query parameters, traces table filters (None: the table has no such filter),
#        evaluator filter, the traces every reader must return)
CASES: dict[str, tuple[dict[str, Any], TraceFilters | None, list[dict[str, Any]], set[str]]] = {
    "level DEFAULT (DEBUG + unset)": (
        {"filter": [_cond("level", "any of", ["DEFAULT"], "stringOptions")]}, TraceFilters(level=["DEFAULT"]),
        [_cond("level", "any of", ["DEFAULT"], "stringOptions")], {"t1"}),
    "level DEBUG": (
        {"filter": [_cond("level", "any of", ["DEBUG"], "stringOptions")]}, TraceFilters(level=["DEBUG"]),
        [_cond("level", "any of", ["DEBUG"], "stringOptions")], {"t2"}),
    "level ERROR or WARNING": (
        {"filter": [_cond("level", "any of", ["ERROR", "WARNING"], "stringOptions")]},
        TraceFilters(level=["ERROR", "WARNING"]),
        [_cond("level", "any of", ["ERROR", "WARNING"], "stringOptions")], {"t3", "t4"}),
    "metadata key": (
        {"filter": [_cond("metadata", "=", "v", "stringObject", key="k")]}, None,
        [_cond("metadata", "=", "v", "stringObject", key="k")], {"t1", "t3"}),
    "tags": ({"tags": ["a"]}, TraceFilters(tags=["a"]), [_cond("tags", "all of", ["a"], "arrayOptions")],
             {"t1", "t2"}),
    "user (changed by a later piece)": (
        {"userId": "u1"}, TraceFilters(user_id="u1"), [_cond("userId", "=", "u1", "string")], {"t1", "t3", "t4"}),
    "environment": (
        {"environment": ["production"]}, TraceFilters(environment=["production"]),
        [_cond("environment", "any of", ["production"], "stringOptions")], {"t1", "t3"}),
    "environment default (unset)": (
        {"environment": ["default"]}, TraceFilters(environment=["default"]),
        [_cond("environment", "any of", ["default"], "stringOptions")], {"t2", "t5"}),
    "time range": (
        {"fromTimestamp": z(T0 + s(10)), "toTimestamp": z(T0 + s(30))},
        TraceFilters(start=T0 + s(10), end=T0 + s(30)),
        [_cond("timestamp", ">=", z(T0 + s(10)), "datetime"), _cond("timestamp", "<", z(T0 + s(30)), "datetime")],
        {"t2", "t3"}),
    "user and environment and time": (
        {"userId": "u1", "environment": ["production"], "fromTimestamp": z(T0 + s(5))},
        TraceFilters(user_id="u1", environment=["production"], start=T0 + s(5)),
        [_cond("userId", "=", "u1", "string"), _cond("environment", "any of", ["production"], "stringOptions"),
         _cond("timestamp", ">=", z(T0 + s(5)), "datetime")], {"t3"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_reader_selects_the_same_traces(parity: ReadApi, case: str) -> None:
    params, table_filters, evaluator_filter, expected = CASES[case]
    olap = parity.olap
    query = {k: json.dumps(v) if k == "filter" else v for k, v in params.items()}
    api = parity.ok("/api/public/traces", P, limit=100, **query)["data"]
    assert {t["id"] for t in api} == expected
    if table_filters is not None:
        assert {r["id"] for r in list_trace_table(olap, P, table_filters).rows} == expected
    assert set(match_traces(olap, P, parse_conditions(evaluator_filter, "trace"))) == expected
    # The dataset reader finds those traces with the API's totals.
    summaries = trace_summaries(olap, P, [t["id"] for t in api])
    assert set(summaries) == expected
    for t in api:
        assert (summaries[t["id"]]["cost"] or 0.0) == pytest.approx(t["totalCost"])


def test_unfiltered_readers_see_every_trace(parity: ReadApi) -> None:
    olap = parity.olap
    assert {t["id"] for t in parity.ok("/api/public/traces", P, limit=100)["data"]} == ALL
    table = list_trace_table(olap, P, TraceFilters())
    assert {r["id"] for r in table.rows} == ALL
    assert set(match_traces(olap, P, [])) == ALL
    by_id = {r["id"]: r for r in table.rows}
    assert {tid: by_id[tid]["level"] for tid in ("t1", "t2", "t3", "t4")} == {
        "t1": "DEFAULT", "t2": "DEBUG", "t3": "ERROR", "t4": "WARNING"}
    assert by_id["t1"]["totalCost"] == pytest.approx(1.0)
    assert timedelta(seconds=trace_summaries(olap, P, ["t1"])["t1"]["latency"]) == timedelta(seconds=2)
