"""GET /api/public/v2/scores, /v2/scores/{id}, /v3/scores and DELETE /api/public/scores/{id}."""

from __future__ import annotations

import json

import pytest

from owlscope.ingestion.rows import ScoreEvent, TraceEvent
from owlscope.tracing.trace_table import trace_scores
from read_fixtures import (  # noqa: F401  (fixtures)
    PA,
    PB,
    T0,
    ReadApi,
    fixture_dataset,
    fixture_read_api,
    fixture_read_olap,
    insert,
    s,
    z,
)

ALL = ["sc5", "sc4", "sc3", "sc2", "sc1"]  # newest first
V3_CORE = {"id", "projectId", "name", "source", "timestamp", "environment", "createdAt", "updatedAt", "dataType",
           "value"}


def ids(body: dict) -> list[str]:
    return [d["id"] for d in body["data"]]


# ---- v2 --------------------------------------------------------------------------------------
def test_v2_list_shapes(dataset: ReadApi) -> None:
    body = dataset.ok("/api/public/v2/scores")
    assert ids(body) == ALL
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 5, "totalPages": 1}
    by_id = {d["id"]: d for d in body["data"]}
    assert by_id["sc2"] == {
        "id": "sc2", "projectId": PA, "traceId": "t1", "name": "tone", "source": "ANNOTATION", "observationId": "o2",
        "timestamp": z(T0 + s(4)), "createdAt": z(T0 + s(4)), "updatedAt": z(T0 + s(4)), "authorUserId": "user-x",
        "comment": "nice", "metadata": {"m": 1}, "configId": "cfg1", "queueId": "q1", "executionTraceId": None,
        "environment": "production", "dataType": "CATEGORICAL", "value": 0.0, "stringValue": "good", "sessionId": None, "datasetRunId": None,
        "trace": {"userId": "u1", "tags": ["a", "b"], "environment": "production", "sessionId": "s1"},
    }
    assert by_id["sc1"]["value"] == 0.9 and by_id["sc1"]["comment"] == "v2" and by_id["sc1"]["stringValue"] is None
    assert by_id["sc3"]["value"] == 1.0 and by_id["sc3"]["stringValue"] == "True"
    assert by_id["sc5"]["traceId"] is None and by_id["sc5"]["sessionId"] == "s1" and by_id["sc5"]["trace"] is None
    page = dataset.ok("/api/public/v2/scores", page=3, limit=2)
    assert ids(page) == ["sc1"] and page["meta"] == {"page": 3, "limit": 2, "totalItems": 5, "totalPages": 3}
    assert "trace" not in dataset.ok("/api/public/v2/scores", fields="score")["data"][0]


@pytest.mark.parametrize(("params", "expected"), [
    ({"name": "quality"}, ["sc4", "sc1"]),
    ({"userId": "u1"}, ["sc3", "sc2", "sc1"]),
    ({"traceTags": "c"}, ["sc4"]),
    ({"traceTags": ["a", "b"]}, ["sc3", "sc2", "sc1"]),
    ({"dataType": "BOOLEAN"}, ["sc3"]),
    ({"source": "ANNOTATION"}, ["sc2"]),
    ({"operator": ">", "value": 0.5}, ["sc5", "sc3", "sc1"]),
    ({"operator": "<=", "value": 0.2}, ["sc4"]),
    ({"scoreIds": "sc1,sc4"}, ["sc4", "sc1"]),
    ({"traceId": "t1"}, ["sc3", "sc2", "sc1"]),
    ({"observationId": "o2"}, ["sc2"]),
    ({"sessionId": "s1"}, ["sc5"]),
    ({"configId": "cfg1"}, ["sc2"]),
    ({"queueId": "q1"}, ["sc2"]),
    ({"environment": "staging"}, ["sc4"]),
    ({"fromTimestamp": z(T0 + s(4))}, ["sc5", "sc4", "sc3", "sc2"]),
    ({"toTimestamp": z(T0 + s(4))}, ["sc1"]),
    ({"filter": json.dumps([{"type": "stringObject", "column": "metadata", "key": "m", "operator": "=",
                             "value": "1"}])}, ["sc2"]),
    ({"filter": json.dumps([{"type": "number", "column": "value", "operator": ">=", "value": 1}])}, ["sc5", "sc3"]),
])
def test_v2_filters(dataset: ReadApi, params: dict, expected: list[str]) -> None:
    body = dataset.ok("/api/public/v2/scores", **params)
    assert ids(body) == expected
    assert body["meta"]["totalItems"] == len(expected)


def test_get_score(dataset: ReadApi) -> None:
    sc = dataset.ok("/api/public/v2/scores/sc1")
    assert sc["id"] == "sc1" and sc["value"] == 0.9 and sc["dataType"] == "NUMERIC" and sc["traceId"] == "t1"
    assert sc["updatedAt"] == z(T0 + s(5)) and sc["timestamp"] == z(T0 + s(3))
    r = dataset.get("/api/public/v2/scores/nope")
    assert r.status_code == 404 and r.json()["error"] == "LangfuseNotFoundError"
    assert dataset.get("/api/public/v2/scores/sc1", project=PB).status_code == 404


@pytest.mark.parametrize("params", [
    {"limit": 101}, {"page": 0}, {"fields": "score,other"}, {"userId": "u1", "fields": "score"},
    {"operator": ">"}, {"operator": "~", "value": 1}, {"fromTimestamp": "then"}, {"dataType": "FUZZY"},
    {"filter": "[{]"}, {"filter": json.dumps([{"column": "nope", "operator": "=", "value": 1}])},
])
def test_v2_bad_params_are_400(dataset: ReadApi, params: dict) -> None:
    r = dataset.get("/api/public/v2/scores", **params)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidRequestError"


# ---- v3 --------------------------------------------------------------------------------------
def test_v3_core_and_groups(dataset: ReadApi) -> None:
    body = dataset.ok("/api/public/v3/scores")
    assert ids(body) == ALL and body["meta"] == {"limit": 50}
    by_id = {d["id"]: d for d in body["data"]}
    for d in body["data"]:
        assert set(d) == V3_CORE and d["projectId"] == PA
    assert by_id["sc1"]["value"] == 0.9
    assert by_id["sc3"]["value"] is True
    assert by_id["sc2"]["value"] == "good"
    full = {d["id"]: d for d in dataset.ok("/api/public/v3/scores", fields="details,subject,annotation")["data"]}
    assert full["sc2"] | {} == {
        **{k: by_id["sc2"][k] for k in V3_CORE}, "comment": "nice", "configId": "cfg1", "metadata": {"m": 1},
        "subject": {"kind": "observation", "id": "o2", "traceId": "t1"}, "authorUserId": "user-x",
        "queueId": "q1",
    }
    assert full["sc1"]["subject"] == {"kind": "trace", "id": "t1"}
    assert full["sc5"]["subject"] == {"kind": "session", "id": "s1"}
    assert full["sc1"]["metadata"] is None


def test_v3_cursor(dataset: ReadApi) -> None:
    seen, cursor = [], None
    for _ in range(10):
        body = dataset.ok("/api/public/v3/scores", limit=2, **({"cursor": cursor} if cursor else {}))
        assert body["meta"]["limit"] == 2
        seen += ids(body)
        cursor = body["meta"].get("cursor")
        if not cursor:
            break
    assert seen == ALL


@pytest.mark.parametrize(("params", "expected"), [
    ({"name": "quality,tone"}, ["sc4", "sc2", "sc1"]),
    ({"id": "sc1,sc3"}, ["sc3", "sc1"]),
    ({"source": "api"}, ["sc5", "sc4", "sc1"]),
    ({"dataType": "numeric"}, ["sc5", "sc4", "sc1"]),
    ({"dataType": "NUMERIC", "value": "0.9,3"}, ["sc5", "sc1"]),
    ({"dataType": "BOOLEAN", "value": "true"}, ["sc3"]),
    ({"dataType": "CATEGORICAL", "value": "good"}, ["sc2"]),
    ({"dataType": "NUMERIC", "valueMin": 0.5}, ["sc5", "sc1"]),
    ({"dataType": "NUMERIC", "valueMax": 0.5}, ["sc4"]),
    ({"traceId": "t1"}, ["sc3", "sc2", "sc1"]),
    ({"traceId": "t1", "observationId": "o2"}, ["sc2"]),
    ({"sessionId": "s1"}, ["sc5"]),
    ({"experimentId": "run-1"}, []),
    ({"environment": "staging,production"}, ALL),
    ({"configId": "cfg1"}, ["sc2"]),
    ({"queueId": "q1"}, ["sc2"]),
    ({"authorUserId": "user-x"}, ["sc2"]),
    ({"fromTimestamp": z(T0 + s(4)), "toTimestamp": z(T0 + s(5))}, ["sc2"]),
])
def test_v3_filters(dataset: ReadApi, params: dict, expected: list[str]) -> None:
    assert ids(dataset.ok("/api/public/v3/scores", **params)) == expected


@pytest.mark.parametrize("params", [
    {"limit": 101}, {"limit": 0}, {"fields": "details,bogus"}, {"value": "1"},
    {"dataType": "NUMERIC,BOOLEAN", "value": "1"}, {"dataType": "TEXT", "value": "x"},
    {"dataType": "BOOLEAN", "valueMin": 0}, {"dataType": "NUMERIC", "value": "abc"},
    {"dataType": "BOOLEAN", "value": "yes"}, {"observationId": "o2"}, {"traceId": "t1", "sessionId": "s1"},
    {"sessionId": "s1", "experimentId": "e"}, {"cursor": "%%%"}, {"dataType": "weird"}, {"source": "robot"},
    {"fromTimestamp": "later"},
])
def test_v3_bad_params_are_400(dataset: ReadApi, params: dict) -> None:
    r = dataset.get("/api/public/v3/scores", **params)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidRequestError"


def test_v3_isolation(dataset: ReadApi) -> None:
    assert ids(dataset.ok("/api/public/v3/scores", project=PB)) == ["sb1"]
    assert dataset.ok("/api/public/v3/scores", id="sb1")["data"] == []


# ---- delete ----------------------------------------------------------------------------------
def test_delete_score(read_api: ReadApi, dataset: ReadApi) -> None:
    p = "proj-sdel"
    insert(read_api.olap, scores=[ScoreEvent(p, "x1", T0, T0, "q", "NUMERIC", value=1.0, trace_id="tx"),
                                  ScoreEvent(p, "x2", T0, T0, "q", "NUMERIC", value=2.0, session_id="sx")])
    r = read_api.delete("/api/public/scores/x1", project=p)
    assert r.status_code == 204 and r.content == b""
    assert read_api.get("/api/public/v2/scores/x1", project=p).status_code == 404
    assert ids(read_api.ok("/api/public/v2/scores", project=p)) == ["x2"]
    r = read_api.delete("/api/public/scores/x1", project=p)
    assert r.status_code == 404 and r.json()["error"] == "LangfuseNotFoundError"
    assert read_api.delete("/api/public/scores/x2", project=PA).status_code == 404  # another project's
    assert read_api.ok("/api/public/v2/scores/x2", project=p)["value"] == 2.0


# ---- scores looked up by trace (the trace endpoints) -------------------------------------------
def test_trace_reads_see_only_a_scores_latest_version(read_api: ReadApi) -> None:
    """A score updated to another trace, with another value and to no observation: the trace reads
    (GET /traces, /traces/{id}, the trace table's summaries) find it by the rows of either trace and
    show only its latest version, on the trace it now belongs to; a version replayed with an older
    event time changes nothing, and one replayed with the same event time is one score."""
    p = "proj-smove"
    insert(read_api.olap, traces=[TraceEvent(p, "ta", T0, timestamp=T0, name="a"),
                                  TraceEvent(p, "tb", T0 + s(1), timestamp=T0 + s(1), name="b")],
           scores=[ScoreEvent(p, "m1", T0 + s(2), T0 + s(2), "q", "NUMERIC", value=1.0, trace_id="ta",
                              observation_id="oa"),
                   ScoreEvent(p, "keep", T0 + s(2), T0 + s(2), "q", "NUMERIC", value=0.5, trace_id="ta")])
    insert(read_api.olap, scores=[ScoreEvent(p, "m1", T0 + s(9), T0 + s(3), "q", "NUMERIC", value=2.0, trace_id="tb")])
    insert(read_api.olap, scores=[ScoreEvent(p, "m1", T0 + s(5), T0 + s(3), "q", "NUMERIC", value=3.0, trace_id="ta")])
    # a replayed version (the same event time twice) is one score
    insert(read_api.olap, scores=[ScoreEvent(p, "keep", T0 + s(2), T0 + s(2), "q", "NUMERIC", value=0.5, trace_id="ta")])
    listed = {t["id"]: t["scores"] for t in read_api.ok("/api/public/traces", project=p)["data"]}
    assert listed == {"ta": ["keep"], "tb": ["m1"]}
    assert [(x["id"], x["value"]) for x in read_api.ok("/api/public/traces/ta", project=p)["scores"]] == [("keep", 0.5)]
    assert [(x["id"], x["value"], x["observationId"]) for x in read_api.ok("/api/public/traces/tb", project=p)["scores"]] \
        == [("m1", 2.0, None)]
    summaries = trace_scores(read_api.olap, p, ["ta", "tb"])
    assert {k: [(x["name"], x["avg"], x["count"]) for x in v] for k, v in summaries.items()} == {
        "ta": [("q", 0.5, 1)], "tb": [("q", 2.0, 1)]}
