"""GET /api/public/v2/metrics, /api/public/metrics (v1) and /api/public/metrics/daily, checked
against values computed by hand from the dataset in read_fixtures."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from read_fixtures import (  # noqa: F401  (fixtures)
    DAY2,
    PB,
    T0,
    ReadApi,
    fixture_dataset,
    fixture_read_api,
    fixture_read_olap,
    z,
)

RANGE = {"fromTimestamp": z(T0 - timedelta(days=1)), "toTimestamp": z(T0 + timedelta(days=3))}


def metrics(api: ReadApi, path: str = "/api/public/v2/metrics", project: str | None = None, **query) -> list[dict]:
    body = {**RANGE, **query}
    kwargs = {"project": project} if project else {}
    return api.ok(path, query=json.dumps(body), **kwargs)["data"]


def by(rows: list[dict], key: str) -> dict:
    return {r[key]: r for r in rows}


def test_observation_counts_by_type(dataset: ReadApi) -> None:
    rows = metrics(dataset, view="observations", dimensions=[{"field": "type"}],
                   metrics=[{"measure": "count", "aggregation": "count"}],
                   orderBy=[{"field": "count_count", "direction": "desc"}])
    assert rows == [{"type": "SPAN", "count_count": 9}, {"type": "EVENT", "count_count": 3},
                    {"type": "GENERATION", "count_count": 2}]


def test_observation_cost_tokens_and_latency(dataset: ReadApi) -> None:
    rows = metrics(dataset, view="observations", dimensions=[{"field": "providedModelName"}], metrics=[
        {"measure": "totalCost", "aggregation": "sum"}, {"measure": "totalTokens", "aggregation": "sum"},
        {"measure": "inputTokens", "aggregation": "sum"}, {"measure": "latency", "aggregation": "max"},
    ])
    m = by(rows, "providedModelName")
    assert m["gpt-4o"] == {"providedModelName": "gpt-4o", "sum_totalCost": pytest.approx(0.3),
                           "sum_totalTokens": 30, "sum_inputTokens": 10, "max_latency": 1000}
    assert m["claude-3"]["sum_totalCost"] == 1.0 and m["claude-3"]["sum_totalTokens"] == 150
    assert m[None]["sum_totalCost"] == 0 and m[None]["max_latency"] == 2000  # o1, the longest span

    (row,) = metrics(dataset, view="observations", metrics=[
        {"measure": "latency", "aggregation": "avg"}, {"measure": "latency", "aggregation": "p50"},
        {"measure": "latency", "aggregation": "min"}, {"measure": "latency", "aggregation": "count"},
        {"measure": "timeToFirstToken", "aggregation": "max"}, {"measure": "outputTokens", "aggregation": "sum"},
        {"measure": "countScores", "aggregation": "sum"}, {"measure": "streamingLatency", "aggregation": "max"},
    ])
    # latencies (ms): o1 2000, o2 1000, o4 3000, eight bulk spans 1000; events have no end
    assert row["avg_latency"] == pytest.approx(14000 / 11)
    assert row["p50_latency"] == 1000 and row["min_latency"] == 1000 and row["count_latency"] == 11
    assert row["max_timeToFirstToken"] == 200 and row["sum_outputTokens"] == 70
    assert row["sum_countScores"] == 1 and row["max_streamingLatency"] == 800


def test_observation_time_dimension_filters_and_limits(dataset: ReadApi) -> None:
    rows = metrics(dataset, view="observations", metrics=[{"measure": "count", "aggregation": "count"}],
                   timeDimension={"granularity": "day"})
    assert rows == [{"time_dimension": "2026-01-05T00:00:00.000Z", "count_count": 4},
                    {"time_dimension": "2026-01-06T00:00:00.000Z", "count_count": 10}]
    rows = metrics(dataset, view="observations", metrics=[{"measure": "count", "aggregation": "count"}],
                   filters=[{"column": "type", "operator": "=", "value": "GENERATION", "type": "string"}])
    assert rows == [{"count_count": 2}]
    rows = metrics(dataset, view="observations", metrics=[{"measure": "count", "aggregation": "count"}],
                   filters=[{"column": "traceName", "operator": "=", "value": "named-2", "type": "string"}])
    assert rows == [{"count_count": 1}]
    rows = metrics(dataset, view="observations", dimensions=[{"field": "name"}],
                   metrics=[{"measure": "count", "aggregation": "count"}],
                   orderBy=[{"field": "name", "direction": "asc"}], config={"row_limit": 2})
    assert rows == [{"name": "bulk-span", "count_count": 8}, {"name": "llm", "count_count": 2}]
    (row,) = metrics(dataset, view="observations", metrics=[{"measure": "latency", "aggregation": "histogram"}],
                     config={"bins": 2})
    assert sum(b[2] for b in row["histogram_latency"]) == pytest.approx(11)
    rows = metrics(dataset, view="observations", metrics=[{"measure": "count", "aggregation": "count"}],
                   timeDimension={"granularity": "auto"}, fromTimestamp=z(T0), toTimestamp=z(T0 + timedelta(hours=2)))
    assert sum(r["count_count"] for r in rows) == 4 and len(rows) == 2  # 10:00 bucket and 11:00 bucket


def test_traces_view(dataset: ReadApi) -> None:
    rows = metrics(dataset, view="traces", dimensions=[{"field": "environment"}],
                   metrics=[{"measure": "count", "aggregation": "count"}, {"measure": "totalCost", "aggregation": "sum"},
                            {"measure": "observationsCount", "aggregation": "sum"}])
    env = by(rows, "environment")
    assert env["production"]["count_count"] == 9 and env["production"]["sum_observationsCount"] == 13
    assert env["staging"] == {"environment": "staging", "count_count": 1, "sum_totalCost": 1.0,
                              "sum_observationsCount": 1}
    assert env["default"]["count_count"] == 1 and env["default"]["sum_totalCost"] == 0
    assert env["production"]["sum_totalCost"] == pytest.approx(0.3)
    (row,) = metrics(dataset, view="traces", metrics=[
        {"measure": "uniqueUserIds", "aggregation": "count"}, {"measure": "latency", "aggregation": "max"},
        {"measure": "scoresCount", "aggregation": "sum"}])
    assert row == {"count_uniqueUserIds": 3, "max_latency": 3000, "sum_scoresCount": 4}


def test_score_views(dataset: ReadApi) -> None:
    rows = metrics(dataset, view="scores-numeric", dimensions=[{"field": "name"}],
                   metrics=[{"measure": "value", "aggregation": "avg"}, {"measure": "count", "aggregation": "count"}])
    assert by(rows, "name") == {
        "quality": {"name": "quality", "avg_value": pytest.approx(0.55), "count_count": 2},
        "correct": {"name": "correct", "avg_value": 1.0, "count_count": 1},
        "session-score": {"name": "session-score", "avg_value": 3.0, "count_count": 1},
    }
    rows = metrics(dataset, view="scores-categorical", dimensions=[{"field": "stringValue"}],
                   metrics=[{"measure": "count", "aggregation": "count"}])
    assert rows == [{"stringValue": "good", "count_count": 1}]
    rows = metrics(dataset, view="scores-boolean", metrics=[{"measure": "value", "aggregation": "avg"}])
    assert rows == [{"avg_value": 1.0}]
    rows = metrics(dataset, view="scores-numeric", dimensions=[{"field": "traceName"}],
                   metrics=[{"measure": "count", "aggregation": "count"}],
                   filters=[{"column": "name", "operator": "=", "value": "quality", "type": "string"}])
    assert by(rows, "traceName").keys() == {"root-1", "named-2"}


def test_v1_allows_high_cardinality_dimensions_v2_does_not(dataset: ReadApi) -> None:
    query = {"view": "observations", "dimensions": [{"field": "traceId"}],
             "metrics": [{"measure": "count", "aggregation": "count"}]}
    rows = metrics(dataset, "/api/public/metrics", **query)
    assert by(rows, "traceId")["t1"]["count_count"] == 3
    r = dataset.get("/api/public/v2/metrics", query=json.dumps({**RANGE, **query}))
    assert r.status_code == 400 and r.json()["error"] == "InvalidRequestError"


def test_metrics_are_per_project(dataset: ReadApi) -> None:
    rows = metrics(dataset, project=PB, view="observations", metrics=[{"measure": "count", "aggregation": "count"}])
    assert rows == [{"count_count": 1}]


@pytest.mark.parametrize("query", [
    "not json", "[]", json.dumps({"view": "nope", "metrics": [{"measure": "count", "aggregation": "count"}], **RANGE}),
    json.dumps({"view": "observations", "metrics": [], **RANGE}),
    json.dumps({"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}]}),
    json.dumps({"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}],
                "fromTimestamp": RANGE["toTimestamp"], "toTimestamp": RANGE["fromTimestamp"]}),
    json.dumps({"view": "observations", "metrics": [{"measure": "speed", "aggregation": "sum"}], **RANGE}),
    json.dumps({"view": "observations", "metrics": [{"measure": "latency", "aggregation": "median"}], **RANGE}),
    json.dumps({"view": "observations", "dimensions": [{"field": "color"}],
                "metrics": [{"measure": "count", "aggregation": "count"}], **RANGE}),
    json.dumps({"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}],
                "orderBy": [{"field": "nope", "direction": "asc"}], **RANGE}),
    json.dumps({"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}],
                "config": {"row_limit": 0}, **RANGE}),
    json.dumps({"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}],
                "timeDimension": {"granularity": "fortnight"}, **RANGE}),
    json.dumps({"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}],
                "filters": [{"column": "type", "operator": "~", "value": "x", "type": "string"}], **RANGE}),
    json.dumps({"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}],
                "fromTimestamp": "yesterday", "toTimestamp": RANGE["toTimestamp"]}),
])
def test_bad_queries_are_400(dataset: ReadApi, query: str) -> None:
    for path in ("/api/public/v2/metrics", "/api/public/metrics"):
        r = dataset.get(path, query=query)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"] == "InvalidRequestError"
    assert dataset.get("/api/public/v2/metrics").status_code == 400  # query is required


# ---- daily -----------------------------------------------------------------------------------
GPT = {"model": "gpt-4o", "inputUsage": 10, "outputUsage": 20, "totalUsage": 30, "countObservations": 1,
       "countTraces": 1}
CLAUDE = {"model": "claude-3", "inputUsage": 100, "outputUsage": 50, "totalUsage": 150, "countObservations": 1,
          "countTraces": 1, "totalCost": 1.0}


def test_daily_metrics(dataset: ReadApi) -> None:
    body = dataset.ok("/api/public/metrics/daily")
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 2, "totalPages": 1}
    day2, day1 = body["data"]
    assert day2 == {"date": "2026-01-06", "countTraces": 8, "countObservations": 10, "totalCost": 0.0, "usage": []}
    assert (day1["date"], day1["countTraces"], day1["countObservations"]) == ("2026-01-05", 3, 4)
    assert day1["totalCost"] == pytest.approx(1.3)
    claude, gpt = day1["usage"]
    assert claude == CLAUDE
    assert {k: v for k, v in gpt.items() if k != "totalCost"} == GPT and gpt["totalCost"] == pytest.approx(0.3)


@pytest.mark.parametrize(("params", "expected"), [
    ({"traceName": "named-2"}, [("2026-01-05", 1, 1)]),
    ({"userId": "u3"}, [("2026-01-06", 8, 10)]),
    ({"userId": "u1"}, [("2026-01-05", 1, 3)]),
    ({"tags": "a"}, [("2026-01-05", 2, 4)]),
    ({"environment": "staging"}, [("2026-01-05", 1, 1)]),
    ({"fromTimestamp": z(DAY2)}, [("2026-01-06", 8, 10)]),
    ({"toTimestamp": z(DAY2)}, [("2026-01-05", 3, 4)]),
])
def test_daily_metrics_filters(dataset: ReadApi, params: dict, expected: list) -> None:
    body = dataset.ok("/api/public/metrics/daily", **params)
    assert [(d["date"], d["countTraces"], d["countObservations"]) for d in body["data"]] == expected


def test_daily_metrics_paging_isolation_and_errors(dataset: ReadApi) -> None:
    body = dataset.ok("/api/public/metrics/daily", limit=1, page=2)
    assert [d["date"] for d in body["data"]] == ["2026-01-05"]
    assert body["meta"] == {"page": 2, "limit": 1, "totalItems": 2, "totalPages": 2}
    b = dataset.ok("/api/public/metrics/daily", project=PB)
    assert [(d["date"], d["countTraces"], d["countObservations"]) for d in b["data"]] == [("2026-01-05", 1, 1)]
    for params in ({"fromTimestamp": "x"}, {"page": 0}, {"limit": -1}):
        assert dataset.get("/api/public/metrics/daily", **params).status_code == 400


def test_metrics_v2_keyword_form(dataset: ReadApi) -> None:
    from owlscope.tracing import metrics_v2

    rows = metrics_v2(dataset.olap, "proj-a", view="observations", dimensions=["type"],
                      metrics=[("count", "count")], order_by=[("type", "asc")],
                      from_timestamp=T0 - timedelta(days=1), to_timestamp=T0 + timedelta(days=3))["data"]
    assert rows == [{"type": "EVENT", "count_count": 3}, {"type": "GENERATION", "count_count": 2},
                    {"type": "SPAN", "count_count": 9}]
