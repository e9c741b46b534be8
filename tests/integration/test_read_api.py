"""The read API for traces and sessions against a small hand-checked dataset (see read_fixtures),
on embedded chDB and on ClickHouse over HTTP: shapes, merging, filters, order, paging, isolation,
deletes and errors."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from owlscope.ingestion.pricing import load_default_models
from owlscope.ingestion.rows import ObservationEvent, ScoreEvent, TraceEvent
from owlscope.tracing import common as common_module
from owlscope.tracing import sessions as sessions_module
from owlscope.tracing import traces as traces_module
from read_fixtures import (  # noqa: F401  (fixtures)
    PA,
    PB,
    T0,
    ReadApi,
    bulk_ts,
    fixture_dataset,
    fixture_read_api,
    fixture_read_olap,
    insert,
    s,
    z,
)

ALL_TRACES = [f"bulk-{i}" for i in range(7, -1, -1)] + ["t3", "t2", "t1"]
TRACE_KEYS = {
    "id", "timestamp", "name", "input", "output", "sessionId", "release", "version", "userId", "metadata", "tags",
    "public", "environment", "htmlPath", "latency", "totalCost", "observations", "scores",
}
VIEW_KEYS = {
    "id", "traceId", "type", "name", "startTime", "endTime", "completionStartTime", "model", "modelParameters",
    "input", "version", "metadata", "output", "usage", "level", "statusMessage", "parentObservationId", "promptId",
    "usageDetails", "costDetails", "environment", "promptName", "promptVersion", "modelId", "inputPrice",
    "outputPrice", "totalPrice", "calculatedInputCost", "calculatedOutputCost", "calculatedTotalCost", "latency",
    "timeToFirstToken",
}


GPT_4O = next(m for m in load_default_models() if m.model_name == "gpt-4o")  # the matched model


def ids(body: dict) -> list[str]:
    return [d["id"] for d in body["data"]]


# ---- one trace -------------------------------------------------------------------------------
def test_trace_by_id_merges_pieces_and_carries_full_details(dataset: ReadApi) -> None:
    t = dataset.ok("/api/public/traces/t1")
    assert TRACE_KEYS <= set(t)
    assert t["id"] == "t1"
    assert t["timestamp"] == z(T0)
    assert t["name"] == "root-1"  # no explicit name: the root span's
    assert t["input"] == {"q": 1}  # explicit input wins over the root span's
    assert t["output"] == {"answer": 42}  # no explicit output: the root span's
    assert (t["sessionId"], t["userId"], t["release"], t["version"]) == ("s1", "u1", "r1", "v1")
    assert t["metadata"] == {"k": "v", "n": 5}
    assert t["tags"] == ["a", "b"]  # union of the pieces
    assert t["public"] is False
    assert t["environment"] == "production"
    assert t["htmlPath"] == f"/project/{PA}/traces/t1"
    assert t["latency"] == 2.0  # first start (o1) to last end (o1's)
    assert t["totalCost"] == pytest.approx(0.3)

    obs = {o["id"]: o for o in t["observations"]}
    assert [o["id"] for o in t["observations"]] == ["o1", "o2", "o3"]  # by start time
    for o in t["observations"]:
        assert set(o) == VIEW_KEYS
    o2 = obs["o2"]
    assert o2 == {
        "id": "o2", "traceId": "t1", "type": "GENERATION", "name": "llm", "startTime": z(T0 + s(0.5)),
        "endTime": z(T0 + s(1.5)), "completionStartTime": z(T0 + s(0.7)), "model": "gpt-4o",
        "modelParameters": {"temperature": 0.1}, "input": [{"role": "user", "content": "hi"}], "version": None,
        "metadata": None, "output": "hello",
        "usage": {"input": 10, "output": 20, "total": 30, "unit": "TOKENS", "inputCost": 0.1, "outputCost": 0.2,
                  "totalCost": 0.3},
        "level": "DEFAULT", "statusMessage": None, "parentObservationId": "o1", "promptId": "pid1",
        "usageDetails": {"input": 10, "output": 20, "total": 30},
        "costDetails": {"input": 0.1, "output": 0.2, "total": 0.3}, "environment": "production",
        "promptName": "p", "promptVersion": 2, "modelId": GPT_4O.id, "inputPrice": GPT_4O.prices["input"],
        "outputPrice": GPT_4O.prices["output"], "totalPrice": None, "calculatedInputCost": 0.1, "calculatedOutputCost": 0.2, "calculatedTotalCost": 0.3,
        "latency": 1.0, "timeToFirstToken": 0.2,
    }
    o3 = obs["o3"]
    assert (o3["type"], o3["level"], o3["statusMessage"], o3["version"]) == ("EVENT", "WARNING", "careful", "ov1")
    assert o3["endTime"] is None and o3["latency"] is None and o3["timeToFirstToken"] is None
    assert o3["usage"] == {"input": 0, "output": 0, "total": 0, "unit": None, "inputCost": None,
                           "outputCost": None, "totalCost": None}
    assert o3["usageDetails"] == {} and o3["costDetails"] == {} and o3["calculatedTotalCost"] is None
    assert obs["o1"]["metadata"]["step"] == "root" and len(obs["o1"]["metadata"]["long"]) == 300

    scores = {x["id"]: x for x in t["scores"]}
    assert set(scores) == {"sc1", "sc2", "sc3"}
    assert scores["sc1"]["value"] == 0.9 and scores["sc1"]["comment"] == "v2"  # the latest version
    assert scores["sc1"]["dataType"] == "NUMERIC" and scores["sc1"]["stringValue"] is None  # as Langfuse
    assert scores["sc2"] | {} == {
        "id": "sc2", "traceId": "t1", "name": "tone", "source": "ANNOTATION", "observationId": "o2",
        "timestamp": z(T0 + s(4)), "createdAt": z(T0 + s(4)), "updatedAt": z(T0 + s(4)), "authorUserId": "user-x",
        "comment": "nice", "metadata": {"m": 1}, "configId": "cfg1", "queueId": "q1", "environment": "production",
        "dataType": "CATEGORICAL", "value": 0.0, "stringValue": "good", "projectId": "proj-a", "executionTraceId": None,
    }
    assert (scores["sc3"]["value"], scores["sc3"]["stringValue"], scores["sc3"]["dataType"]) == (1.0, "True", "BOOLEAN")


def test_trace_with_explicit_name_and_without_observations(dataset: ReadApi) -> None:
    t2 = dataset.ok("/api/public/traces/t2")
    assert t2["name"] == "named-2" and t2["tags"] == ["a", "c"] and t2["environment"] == "staging"
    assert t2["totalCost"] == 1.0 and t2["latency"] == 3.0
    t3 = dataset.ok("/api/public/traces/t3")
    assert t3["public"] is True and t3["environment"] == "default"
    assert (t3["userId"], t3["sessionId"], t3["input"], t3["metadata"]) == (None, None, None, None)
    assert t3["observations"] == [] and t3["scores"] == [] and t3["latency"] == 0.0 and t3["totalCost"] == 0.0


def test_trace_fields_selection(dataset: ReadApi) -> None:
    t = dataset.ok("/api/public/traces/t1", fields="core")
    assert "input" not in t and "output" not in t and "metadata" not in t
    assert t["observations"] == [] and t["scores"] == [] and t["latency"] == -1 and t["totalCost"] == -1
    t = dataset.ok("/api/public/traces/t1", fields="core,metrics")
    assert t["latency"] == 2.0 and t["observations"] == []
    r = dataset.get("/api/public/traces/t1", fields="core,bogus")
    assert r.status_code == 400 and r.json()["error"] == "InvalidRequestError"


def test_missing_trace_is_a_json_404(dataset: ReadApi) -> None:
    r = dataset.get("/api/public/traces/nope")
    assert r.status_code == 404
    assert r.json() == {"message": "Trace nope not found within authorized project", "error": "LangfuseNotFoundError"}


# ---- trace lists -----------------------------------------------------------------------------
def test_list_traces_latest_first_with_details(dataset: ReadApi) -> None:
    body = dataset.ok("/api/public/traces")
    assert ids(body) == ALL_TRACES
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 11, "totalPages": 1}
    t1 = body["data"][-1]
    assert TRACE_KEYS <= set(t1)
    assert sorted(t1["observations"]) == ["o1", "o2", "o3"]  # ids in lists
    assert sorted(t1["scores"]) == ["sc1", "sc2", "sc3"]
    assert t1["latency"] == 2.0 and t1["totalCost"] == pytest.approx(0.3)
    assert t1["input"] == {"q": 1} and t1["name"] == "root-1"
    t3 = body["data"][8]
    assert t3["id"] == "t3" and t3["observations"] == [] and t3["latency"] == 0.0


def test_list_traces_paging(dataset: ReadApi) -> None:
    seen = []
    for page in (1, 2, 3):
        body = dataset.ok("/api/public/traces", page=page, limit=4)
        assert body["meta"] == {"page": page, "limit": 4, "totalItems": 11, "totalPages": 3}
        seen += ids(body)
    assert seen == ALL_TRACES
    beyond = dataset.ok("/api/public/traces", page=9, limit=4)
    assert beyond["data"] == [] and beyond["meta"]["totalItems"] == 11


@pytest.mark.parametrize("windows", [
    common_module.NEWEST_WINDOWS,
    (timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)),  # windows too short: widened, then all
    (),
])
def test_latest_path_is_exact_when_candidates_must_grow(dataset: ReadApi, monkeypatch, windows) -> None:
    """The latest-rows path starting from tiny candidate sets returns what the GROUP BY path returns,
    whichever windows back from the newest row the bound tries first."""
    monkeypatch.setattr(common_module, "SMALL_ROWS", -1)  # the plan of a large project
    monkeypatch.setattr(common_module, "NEWEST_WINDOWS", windows)
    monkeypatch.setattr(traces_module, "_FIRST_K", 1)
    monkeypatch.setattr(traces_module, "_K_FACTOR", 1)
    seen = []
    for page in range(1, 7):
        seen += ids(dataset.ok("/api/public/traces", page=page, limit=2))
    assert seen == ALL_TRACES
    body = dataset.ok("/api/public/traces", limit=3, fromTimestamp=z(T0 + timedelta(minutes=30)))
    assert ids(body) == ALL_TRACES[:3] and body["meta"]["totalItems"] == 10
    monkeypatch.setattr(traces_module, "_GROWTH", 2)
    body = dataset.ok("/api/public/traces", limit=4, fromTimestamp=z(bulk_ts(5)))
    assert ids(body) == ["bulk-7", "bulk-6", "bulk-5"] and body["meta"]["totalItems"] == 3
    body = dataset.ok("/api/public/traces", limit=9, fromTimestamp=z(T0 + timedelta(minutes=150)))
    assert ids(body) == ALL_TRACES[:8] and body["meta"]["totalItems"] == 8
    body = dataset.ok("/api/public/traces", limit=2, toTimestamp=z(T0 + timedelta(hours=2)))
    assert ids(body) == ["t2", "t1"] and body["meta"]["totalItems"] == 2


@pytest.mark.parametrize(("params", "expected"), [
    ({"userId": "u1"}, ["t1"]),
    ({"userId": "u3"}, [f"bulk-{i}" for i in range(7, -1, -1)]),
    ({"userId": "nobody"}, []),
    ({"name": "named-2"}, ["t2"]),
    ({"name": "root-1"}, ["t1"]),  # the fallback name is filterable
    ({"name": "root-2"}, []),  # hidden by the explicit name
    ({"sessionId": "s1"}, ["t2", "t1"]),
    ({"tags": "a"}, ["t2", "t1"]),
    ({"tags": ["a", "c"]}, ["t2"]),  # all must match
    ({"tags": ["a", "zzz"]}, []),
    ({"environment": "staging"}, ["t2"]),
    ({"environment": ["staging", "default"]}, ["t3", "t2"]),
    ({"version": "v1"}, ["t1"]),
    ({"release": "r2"}, ["t2"]),
    ({"fromTimestamp": z(T0 + s(1)), "toTimestamp": z(T0 + timedelta(hours=3))}, ["t3", "t2"]),
    ({"fromTimestamp": z(T0)}, ALL_TRACES),  # inclusive
    ({"toTimestamp": z(T0)}, []),  # exclusive
    ({"userId": "u1", "sessionId": "s1"}, ["t1"]),
])
def test_list_traces_filters(dataset: ReadApi, params: dict, expected: list[str]) -> None:
    body = dataset.ok("/api/public/traces", **params)
    assert ids(body) == expected
    assert body["meta"]["totalItems"] == len(expected)


@pytest.mark.parametrize(("filter_", "expected"), [
    ([{"type": "string", "column": "userId", "operator": "=", "value": "u2"}], ["t2"]),
    ([{"type": "stringObject", "column": "metadata", "key": "k", "operator": "=", "value": "v"}], ["t1"]),
    ([{"type": "numberObject", "column": "metadata", "key": "n", "operator": ">", "value": 4}], ["t1"]),
    ([{"type": "number", "column": "totalCost", "operator": ">=", "value": 0.5}], ["t2"]),
    ([{"type": "number", "column": "latency", "operator": ">", "value": 1.5}], ["t2", "t1"]),
    ([{"type": "string", "column": "level", "operator": "=", "value": "ERROR"}], ["t2"]),
    ([{"type": "number", "column": "warningCount", "operator": "=", "value": 1}], ["t1"]),
    ([{"type": "arrayOptions", "column": "tags", "operator": "any of", "value": ["b", "c"]}], ["t2", "t1"]),
    ([{"type": "arrayOptions", "column": "tags", "operator": "none of", "value": ["a"]}], ALL_TRACES[:9]),
    ([{"type": "stringOptions", "column": "name", "operator": "any of", "value": ["third", "named-2"]}],
     ["t3", "t2"]),
    ([{"type": "string", "column": "name", "operator": "starts with", "value": "bulk-7"}], ["bulk-7"]),
    ([{"type": "boolean", "column": "public", "operator": "=", "value": True}], ["t3"]),
    ([{"type": "numberObject", "column": "scores_avg", "key": "quality", "operator": ">", "value": 0.5}], ["t1"]),
    ([{"type": "categoryOptions", "column": "score_categories", "key": "tone", "operator": "any of",
       "value": ["good"]}], ["t1"]),
    ([{"type": "booleanObject", "column": "score_booleans", "key": "correct", "operator": "=", "value": True}],
     ["t1"]),
    ([{"type": "datetime", "column": "timestamp", "operator": "<", "value": z(T0 + s(1))}], ["t1"]),
])
def test_list_traces_structured_filter(dataset: ReadApi, filter_: list, expected: list[str]) -> None:
    import json

    body = dataset.ok("/api/public/traces", filter=json.dumps(filter_), userId="ignored-when-filter-given")
    assert ids(body) == expected
    assert body["meta"]["totalItems"] == len(expected)


@pytest.mark.parametrize(("order", "expected_first"), [
    ("timestamp.asc", ["t1", "t2", "t3"]),
    ("name.asc", ["bulk-0", "bulk-1", "bulk-2"]),
    ("name.desc", ["third", "root-1", "named-2"]),
    ("id.asc", ["bulk-0", "bulk-1", "bulk-2"]),
    ("userId.desc", ["t2", "t1"]),
])
def test_list_traces_order(dataset: ReadApi, order: str, expected_first: list[str]) -> None:
    body = dataset.ok("/api/public/traces", orderBy=order)
    got = ids(body) if not order.startswith("name.desc") else [d["name"] for d in body["data"]]
    if order == "userId.desc":  # u3 (8 bulk traces) first, then u2, u1
        assert got[8:10] == expected_first
    else:
        assert got[:3] == expected_first
    assert body["meta"]["totalItems"] == 11


def test_list_traces_fields(dataset: ReadApi) -> None:
    body = dataset.ok("/api/public/traces", fields="core,metrics", limit=20)
    t1 = next(d for d in body["data"] if d["id"] == "t1")
    assert "input" not in t1 and t1["observations"] == [] and t1["scores"] == [] and t1["latency"] == 2.0
    body = dataset.ok("/api/public/traces", fields="core,io,scores,observations")
    t1 = next(d for d in body["data"] if d["id"] == "t1")
    assert t1["totalCost"] == -1 and t1["latency"] == -1 and len(t1["observations"]) == 3


@pytest.mark.parametrize("params", [
    {"orderBy": "cost.desc"}, {"orderBy": "timestamp.sideways"}, {"fromTimestamp": "yesterday"},
    {"toTimestamp": "2026-13-45"}, {"page": 0}, {"limit": 0}, {"limit": 100000}, {"page": "abc"},
    {"filter": "not json"}, {"filter": '{"column": "name"}'}, {"filter": '[{"column": "nope", "operator": "="}]'},
    {"filter": '[{"column": "name", "operator": "between", "value": "x", "type": "string"}]'},
    {"filter": '[{"column": "metadata", "operator": "=", "value": "x", "type": "stringObject"}]'},
    {"fields": "core,everything"},
])
def test_list_traces_bad_params_are_400(dataset: ReadApi, params: dict) -> None:
    r = dataset.get("/api/public/traces", **params)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidRequestError" and r.json()["message"]


# ---- isolation -------------------------------------------------------------------------------
def test_projects_are_isolated(dataset: ReadApi) -> None:
    assert dataset.get("/api/public/traces/tb1").status_code == 404
    assert dataset.get("/api/public/traces/t1", project=PB).status_code == 404
    assert "tb1" not in ids(dataset.ok("/api/public/traces", limit=100))
    b = dataset.ok("/api/public/traces", project=PB, userId="u1")
    assert ids(b) == ["tb1"] and b["data"][0]["observations"] == ["ob1"] and b["data"][0]["scores"] == ["sb1"]
    assert ids(dataset.ok("/api/public/traces", userId="u1")) == ["t1"]
    assert ids(dataset.ok("/api/public/sessions", project=PB)) == ["s1"]
    s1 = dataset.ok("/api/public/sessions/s1")
    assert [t["id"] for t in s1["traces"]] == ["t1", "t2"]
    assert dataset.get("/api/public/observations/ob1").status_code == 404
    assert dataset.get("/api/public/v2/scores/sb1").status_code == 404
    assert dataset.delete("/api/public/scores/sb1").status_code == 404
    dataset.delete("/api/public/traces/tb1")  # A deleting "tb1" deletes nothing of B's
    assert dataset.get("/api/public/traces/tb1", project=PB).status_code == 200


# ---- sessions --------------------------------------------------------------------------------
def test_sessions_list_and_get(dataset: ReadApi) -> None:
    body = dataset.ok("/api/public/sessions")
    assert ids(body) == ["bulk-s3", "bulk-s2", "bulk-s1", "bulk-s0", "s1"]
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 5, "totalPages": 1}
    assert body["data"][0] == {"id": "bulk-s3", "createdAt": z(bulk_ts(6)), "projectId": PA,
                               "environment": "production"}
    assert body["data"][-1] == {"id": "s1", "createdAt": z(T0), "projectId": PA, "environment": "production"}
    page2 = dataset.ok("/api/public/sessions", page=2, limit=2)
    assert ids(page2) == ["bulk-s1", "bulk-s0"] and page2["meta"]["totalPages"] == 3
    assert ids(dataset.ok("/api/public/sessions", toTimestamp=z(bulk_ts(0)))) == ["s1"]
    assert ids(dataset.ok("/api/public/sessions", fromTimestamp=z(bulk_ts(4)))) == ["bulk-s3", "bulk-s2"]
    assert ids(dataset.ok("/api/public/sessions", environment="staging")) == ["s1"]

    s1 = dataset.ok("/api/public/sessions/s1")
    assert {k: s1[k] for k in ("id", "createdAt", "projectId", "environment")} == {
        "id": "s1", "createdAt": z(T0), "projectId": PA, "environment": "production"}
    assert [t["id"] for t in s1["traces"]] == ["t1", "t2"]
    assert s1["traces"][0]["input"] == {"q": 1} and s1["traces"][1]["name"] == "named-2"
    r = dataset.get("/api/public/sessions/nope")
    assert r.status_code == 404 and r.json()["error"] == "LangfuseNotFoundError"
    assert dataset.get("/api/public/sessions", fromTimestamp="nope").status_code == 400


def test_sessions_with_tiny_candidate_sets(dataset: ReadApi, monkeypatch) -> None:
    monkeypatch.setattr(common_module, "SMALL_ROWS", -1)  # the plan of a large project
    monkeypatch.setattr(sessions_module, "_FIRST_K", 1)
    monkeypatch.setattr(sessions_module, "_K_FACTOR", 1)
    monkeypatch.setattr(sessions_module, "_GROWTH", 2)
    seen = []
    for page in (1, 2, 3):
        body = dataset.ok("/api/public/sessions", page=page, limit=2)
        assert body["meta"]["totalItems"] == 5
        seen += ids(body)
    assert seen == ["bulk-s3", "bulk-s2", "bulk-s1", "bulk-s0", "s1"]
    assert ids(dataset.ok("/api/public/sessions", limit=1, toTimestamp=z(bulk_ts(3)))) == ["bulk-s1"]
    assert ids(dataset.ok("/api/public/sessions", limit=3, fromTimestamp=z(bulk_ts(2)))) == [
        "bulk-s3", "bulk-s2", "bulk-s1"]


PLAN_READS = [
    ("/api/public/traces", {}), ("/api/public/traces", {"page": 2, "limit": 3}),
    ("/api/public/traces", {"page": 9, "limit": 4}), ("/api/public/traces", {"fields": "core,io"}),
    ("/api/public/traces", {"limit": 3, "fromTimestamp": z(T0 + timedelta(minutes=30))}),
    ("/api/public/traces", {"limit": 2, "toTimestamp": z(T0 + timedelta(hours=2))}),
    ("/api/public/sessions", {}), ("/api/public/sessions", {"page": 2, "limit": 2}),
    ("/api/public/sessions", {"page": 7, "limit": 2}), ("/api/public/sessions", {"environment": "staging"}),
    ("/api/public/sessions", {"fromTimestamp": z(bulk_ts(4))}), ("/api/public/sessions", {"toTimestamp": z(bulk_ts(0))}),
]


@pytest.mark.parametrize(("path", "params"), PLAN_READS)
def test_small_and_large_project_plans_agree(dataset: ReadApi, monkeypatch, path: str, params: dict) -> None:
    """A small project is read whole in one GROUP BY, a large one through the latest-rows bound: the
    same bodies, totals included."""
    small = dataset.ok(path, **params)
    monkeypatch.setattr(common_module, "SMALL_ROWS", -1)
    assert dataset.ok(path, **params) == small
    assert small["data"] or small["meta"]["totalItems"] or params.get("page", 1) > 1


def test_project_size_is_remembered_for_a_while(read_olap, monkeypatch) -> None:
    """The row count that picks the plan is read once per SIZE_TTL, not on every request."""
    project = f"size-{uuid.uuid4().hex[:8]}"
    assert common_module.project_rows(read_olap, "traces", project) == 0
    insert(read_olap, traces=[TraceEvent(project, "a", T0, timestamp=T0, name="x")])
    assert common_module.project_rows(read_olap, "traces", project) == 0  # remembered
    monkeypatch.setattr(common_module, "SIZE_TTL", 0.0)
    assert common_module.project_rows(read_olap, "traces", project) == 1
    assert common_module.is_small(read_olap, "traces", project)
    monkeypatch.setattr(common_module, "SMALL_ROWS", 0)
    assert not common_module.is_small(read_olap, "traces", project)


def test_large_id_sets_inlined_as_escaped_literals(read_api: ReadApi, dataset: ReadApi, monkeypatch) -> None:
    """Id sets past INLINE_OVER travel as escaped literals in the query body (bound parameters go in
    the HTTP URL): same answers, also for ids with quotes and backslashes."""
    monkeypatch.setattr(common_module, "INLINE_OVER", 0)
    assert ids(dataset.ok("/api/public/traces")) == ALL_TRACES
    assert ids(dataset.ok("/api/public/traces", userId="u3"))[:2] == ["bulk-7", "bulk-6"]
    assert ids(dataset.ok("/api/public/sessions")) == ["bulk-s3", "bulk-s2", "bulk-s1", "bulk-s0", "s1"]
    assert len(dataset.ok("/api/public/v2/observations", sessionId="s1")["data"]) == 4
    assert [x["id"] for x in dataset.ok("/api/public/v2/scores", userId="u1")["data"]] == ["sc3", "sc2", "sc1"]
    monkeypatch.setattr(common_module, "INLINE_MAX", 0)  # restrictions stay subqueries
    assert ids(dataset.ok("/api/public/traces", userId="u3", limit=2)) == ["bulk-7", "bulk-6"]
    assert ids(dataset.ok("/api/public/traces", sessionId="s1", userId="u2")) == ["t2"]
    assert len(dataset.ok("/api/public/v2/observations", sessionId="s1")["data"]) == 4
    assert len(dataset.ok("/api/public/observations", userId="u1")["data"]) == 3
    p = "proj-esc"
    weird = ["it's", "back\\slash", "brace{db}", "new\nline"]
    insert(read_api.olap, traces=[TraceEvent(p, t, T0 + s(i), timestamp=T0 + s(i), user_id="w", session_id="ws")
                                  for i, t in enumerate(weird)],
           observations=[ObservationEvent(p, f"o-{t}", t, T0, start_time=T0) for t in weird])
    body = read_api.ok("/api/public/traces", project=p)
    assert ids(body) == weird[::-1] and all(len(t["observations"]) == 1 for t in body["data"])
    assert ids(read_api.ok("/api/public/traces", project=p, userId="w")) == weird[::-1]
    assert [t["id"] for t in read_api.ok("/api/public/sessions/ws", project=p)["traces"]] == weird
    r = read_api.delete("/api/public/traces", project=p, json={"traceIds": weird[:2]})
    assert r.status_code == 200
    assert ids(read_api.ok("/api/public/traces", project=p)) == weird[:1:-1]


# ---- deletes ---------------------------------------------------------------------------------
def test_delete_trace_removes_its_observations_and_scores(read_api: ReadApi, dataset: ReadApi) -> None:
    p = "proj-del"
    for tid in ("d1", "d2", "d3"):
        insert(read_api.olap,
               traces=[TraceEvent(p, tid, T0, timestamp=T0, root_name=tid, user_id="ud")],
               observations=[ObservationEvent(p, f"{tid}-o", tid, T0, type="SPAN", start_time=T0)],
               scores=[ScoreEvent(p, f"{tid}-s", T0, T0, "q", "NUMERIC", value=1.0, trace_id=tid)])
    r = read_api.delete("/api/public/traces/d1", project=p)
    assert r.status_code == 200 and r.json() == {"message": "Trace deleted successfully"}
    assert read_api.get("/api/public/traces/d1", project=p).status_code == 404
    assert read_api.get("/api/public/observations/d1-o", project=p).status_code == 404
    assert read_api.get("/api/public/v2/scores/d1-s", project=p).status_code == 404
    assert sorted(ids(read_api.ok("/api/public/traces", project=p))) == ["d2", "d3"]

    r = read_api.delete("/api/public/traces", project=p, json={"traceIds": ["d2", "d3", "never-existed"]})
    assert r.status_code == 200 and r.json() == {"message": "Traces deleted successfully"}
    assert read_api.ok("/api/public/traces", project=p)["meta"]["totalItems"] == 0
    assert read_api.ok("/api/public/v2/observations", project=p)["data"] == []
    assert read_api.ok("/api/public/v3/scores", project=p)["data"] == []
    for bad in ({}, {"traceIds": []}, {"traceIds": "d2"}, {"traceIds": [1]}, None):
        r = read_api.delete("/api/public/traces", project=p, json=bad)
        assert r.status_code == 400, bad
        assert r.json()["error"] == "InvalidRequestError"
    assert read_api.ok("/api/public/traces/t1")["id"] == "t1"  # other projects untouched
