"""GET /api/public/observations (v1), /observations/{id} and /api/public/v2/observations."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from owlscope.ingestion.pricing import load_default_models
from owlscope.tracing import common as common_module
from owlscope.tracing import obs_select
from read_fixtures import (  # noqa: F401  (fixtures)
    PA,
    PB,
    T0,
    ReadApi,
    bulk_ts,
    fixture_dataset,
    fixture_read_api,
    fixture_read_olap,
    s,
    z,
)

# Newest first by (start, traceId, id): the two tie events share bulk-7's span's start.
ALL_OBS = ["tie-b", "tie-a", "bo-7", "bo-6", "bo-5", "bo-4", "bo-3", "bo-2", "bo-1", "bo-0", "o4", "o3", "o2", "o1"]
CORE = {"id", "traceId", "startTime", "endTime", "projectId", "parentObservationId", "type", "modelId",
        "inputPrice", "outputPrice", "totalPrice"}
BASIC = {"name", "level", "statusMessage", "version", "environment", "bookmarked", "public", "userId", "sessionId",
         "isRootObservation"}

GPT_4O = next(m for m in load_default_models() if m.model_name == "gpt-4o")  # the model the fixture stores


def ids(body: dict) -> list[str]:
    return [d["id"] for d in body["data"]]


def walk(api: ReadApi, limit: int, **params) -> tuple[list[str], int]:
    seen, pages, cursor = [], 0, None
    while True:
        body = api.ok("/api/public/v2/observations", limit=limit, **params, **({"cursor": cursor} if cursor else {}))
        pages += 1
        seen += ids(body)
        cursor = body["meta"].get("cursor")
        if not cursor:
            return seen, pages
        assert len(body["data"]) == limit
        assert pages < 50


# ---- v1 --------------------------------------------------------------------------------------
def test_v1_list_pages_and_meta(dataset: ReadApi) -> None:
    body = dataset.ok("/api/public/observations", limit=5)
    assert ids(body) == ALL_OBS[:5]
    assert body["meta"] == {"page": 1, "limit": 5, "totalItems": 14, "totalPages": 3}
    last = dataset.ok("/api/public/observations", limit=5, page=3)
    assert ids(last) == ALL_OBS[10:]
    o2 = next(o for o in last["data"] if o["id"] == "o2")
    assert o2["usage"]["total"] == 30 and o2["calculatedTotalCost"] == 0.3 and o2["latency"] == 1.0


@pytest.mark.parametrize(("params", "expected"), [
    ({"traceId": "t1"}, ["o3", "o2", "o1"]),
    ({"type": "GENERATION"}, ["o4", "o2"]),
    ({"name": "llm"}, ["o4", "o2"]),
    ({"level": "WARNING"}, ["o3"]),
    ({"level": "DEFAULT", "traceId": "t1"}, ["o2", "o1"]),
    ({"userId": "u1"}, ["o3", "o2", "o1"]),
    ({"parentObservationId": "o1"}, ["o3", "o2"]),
    ({"version": "ov1"}, ["o3"]),
    ({"environment": "staging"}, ["o4"]),
    ({"fromStartTime": z(T0 + s(0.5)), "toStartTime": z(T0 + s(1.8))}, ["o2"]),
    ({"fromStartTime": z(bulk_ts(7))}, ["tie-b", "tie-a", "bo-7"]),
    ({"filter": json.dumps([{"type": "number", "column": "latency", "operator": ">=", "value": 2}])}, ["o4", "o1"]),
])
def test_v1_filters(dataset: ReadApi, params: dict, expected: list[str]) -> None:
    body = dataset.ok("/api/public/observations", **params)
    assert ids(body) == expected
    assert body["meta"]["totalItems"] == len(expected)


def test_v1_get_by_id(dataset: ReadApi) -> None:
    o1 = dataset.ok("/api/public/observations/o1")  # inserted twice (a replay): still one record
    assert (o1["id"], o1["traceId"], o1["type"], o1["name"]) == ("o1", "t1", "SPAN", "root-span")
    assert (o1["input"], o1["output"], o1["latency"]) == ("hi", "bye", 2.0)
    assert o1["parentObservationId"] is None and o1["startTime"] == z(T0) and o1["endTime"] == z(T0 + s(2))
    r = dataset.get("/api/public/observations/missing")
    assert r.status_code == 404 and r.json()["error"] == "LangfuseNotFoundError"


# ---- v2 --------------------------------------------------------------------------------------
def test_v2_default_fields_and_order(dataset: ReadApi) -> None:
    body = dataset.ok("/api/public/v2/observations")
    assert ids(body) == ALL_OBS and "cursor" not in body["meta"]
    for o in body["data"]:
        assert set(o) == CORE | BASIC
    o2 = next(o for o in body["data"] if o["id"] == "o2")
    assert o2 == {
        "id": "o2", "traceId": "t1", "startTime": z(T0 + s(0.5)), "endTime": z(T0 + s(1.5)), "projectId": PA,
        "parentObservationId": "o1", "type": "GENERATION", "modelId": GPT_4O.id, "inputPrice": "0.0000025",
        "outputPrice": "0.00001", "totalPrice": None, "name": "llm", "level": "DEFAULT", "statusMessage": None,
        "version": None, "environment": "production", "bookmarked": False, "public": False, "userId": "u1",
        "sessionId": "s1", "isRootObservation": False,
    }
    assert next(o for o in body["data"] if o["id"] == "o1")["isRootObservation"] is True
    # the core fields carry the stored model's id and prices; a span has none
    assert next(o for o in body["data"] if o["id"] == "o1")["modelId"] is None


def test_v2_field_groups(dataset: ReadApi) -> None:
    body = dataset.ok("/api/public/v2/observations", traceId="t1",
                      fields="io,metadata,model,usage,prompt,metrics,trace_context,time")
    o2 = next(o for o in body["data"] if o["id"] == "o2")
    assert "name" not in o2  # basic not asked for
    # raw text as sent: a plain string stays plain
    assert o2["input"] == '[{"role": "user", "content": "hi"}]' and o2["output"] == "hello"
    assert (o2["providedModelName"], o2["modelParameters"]) == ("gpt-4o", {"temperature": 0.1})
    assert o2["internalModelId"] == o2["modelId"] and o2["modelId"]  # the matched model
    assert o2["usageDetails"] == {"input": 10, "output": 20, "total": 30}
    assert o2["costDetails"] == {"input": 0.1, "output": 0.2, "total": 0.3} and o2["totalCost"] == 0.3
    assert o2["usagePricingTierName"] is None
    assert (o2["promptId"], o2["promptName"], o2["promptVersion"]) == ("pid1", "p", 2)
    assert (o2["latency"], o2["timeToFirstToken"]) == (1.0, 0.2)
    assert (o2["tags"], o2["release"], o2["traceName"]) == (["a", "b"], "r1", "root-1")
    assert o2["completionStartTime"] == z(T0 + s(0.7)) and o2["createdAt"] and o2["updatedAt"]
    o1 = next(o for o in body["data"] if o["id"] == "o1")
    assert o1["metadata"]["step"] == "root" and len(o1["metadata"]["long"]) == 200  # truncated preview
    full = dataset.ok("/api/public/v2/observations", traceId="t1", fields="metadata", expandMetadata="long")
    assert len(next(o for o in full["data"] if o["id"] == "o1")["metadata"]["long"]) == 300


@pytest.mark.parametrize("limit", [1, 3, 5, 14, 50])
def test_v2_cursor_returns_each_observation_once(dataset: ReadApi, limit: int) -> None:
    seen, pages = walk(dataset, limit)
    assert seen == ALL_OBS
    assert pages == max(1, -(-len(ALL_OBS) // limit))


@pytest.mark.parametrize("windows", [None, (timedelta(milliseconds=1), timedelta(minutes=1), timedelta(hours=1))])
def test_v2_cursor_with_tiny_candidate_sets(dataset: ReadApi, monkeypatch, windows) -> None:
    """Starting from one candidate row (so candidate sets must grow, and ties and a replayed piece
    straddle the bounds) the pages are those of the plain GROUP BY; also when the bound first tries
    windows back from the newest row (a large project), here too short, so widened."""
    if windows is not None:
        monkeypatch.setattr(common_module, "SMALL_ROWS", -1)
        monkeypatch.setattr(common_module, "NEWEST_WINDOWS", windows)
    monkeypatch.setattr(obs_select, "_FIRST_K", 1)
    monkeypatch.setattr(obs_select, "_K_FACTOR", 1)
    for limit in (1, 2, 4):
        assert walk(dataset, limit)[0] == ALL_OBS
    assert walk(dataset, 2, type="EVENT")[0] == ["tie-b", "tie-a", "o3"]
    assert walk(dataset, 1, toStartTime=z(T0 + s(1)))[0] == ["o2", "o1"]
    monkeypatch.setattr(obs_select, "_GROWTH", 2)
    for limit in (1, 3):
        assert walk(dataset, limit)[0] == ALL_OBS
        assert walk(dataset, limit, fromStartTime=z(bulk_ts(5)))[0] == ["tie-b", "tie-a", "bo-7", "bo-6", "bo-5"]
        assert walk(dataset, limit, type="SPAN", fromStartTime=z(T0 + s(0.1)))[0] == [f"bo-{i}" for i in range(7, -1, -1)]


@pytest.mark.parametrize(("params", "expected"), [
    ({"traceId": "bulk-7"}, ["tie-b", "tie-a", "bo-7"]),
    ({"type": "GENERATION"}, ["o4", "o2"]),
    ({"userId": "u2"}, ["o4"]),
    ({"sessionId": "s1"}, ["o4", "o3", "o2", "o1"]),
    ({"sessionId": "s1", "type": "SPAN"}, ["o1"]),
    ({"parentObservationId": ""}, [o for o in ALL_OBS if o not in ("o2", "o3")]),
    ({"isRootObservation": "false"}, ["o3", "o2"]),
    ({"level": "ERROR"}, ["o4"]),
    ({"environment": ["staging"]}, ["o4"]),
    ({"name": "tie"}, ["tie-b", "tie-a"]),
    ({"fromStartTime": z(T0 + s(1)), "toStartTime": z(bulk_ts(1))}, ["bo-0", "o4", "o3"]),
    ({"filter": json.dumps([{"type": "stringObject", "column": "metadata", "key": "step", "operator": "=",
                             "value": "root"}])}, ["o1"]),
    ({"filter": json.dumps([{"type": "number", "column": "totalCost", "operator": ">", "value": 0}])}, ["o4", "o2"]),
    ({"filter": json.dumps([{"type": "number", "column": "timeToFirstToken", "operator": "<", "value": 1}])},
     ["o2"]),
    ({"filter": json.dumps([{"type": "string", "column": "traceName", "operator": "=", "value": "named-2"}])},
     ["o4"]),
    ({"filter": json.dumps([{"type": "arrayOptions", "column": "traceTags", "operator": "all of",
                             "value": ["a", "b"]}])}, ["o3", "o2", "o1"]),
    ({"filter": json.dumps([{"type": "string", "column": "output", "operator": "matches", "value": "HELLO"}])},
     ["o2"]),
    ({"filter": json.dumps([{"type": "string", "column": "model", "operator": "=", "value": "claude-3"}]),
      "type": "SPAN"}, ["o4"]),  # filter wins over the query parameters
])
def test_v2_filters(dataset: ReadApi, params: dict, expected: list[str]) -> None:
    assert walk(dataset, 2, **params)[0] == expected


def test_v2_project_isolation(dataset: ReadApi) -> None:
    assert "ob1" not in walk(dataset, 50)[0]
    assert ids(dataset.ok("/api/public/v2/observations", project=PB)) == ["ob1"]
    assert dataset.ok("/api/public/v2/observations", traceId="tb1")["data"] == []


@pytest.mark.parametrize("params", [
    {"cursor": "not-a-cursor"}, {"cursor": "WzFd"}, {"limit": 0}, {"limit": 1001}, {"parseIoAsJson": "true"},
    {"fields": "core,nope"}, {"fromStartTime": "soon"}, {"filter": "[{"},
    {"filter": json.dumps([{"type": "string", "column": "input", "operator": "contains", "value": "x"}])},
    {"filter": json.dumps([{"type": "number", "column": "latency", "operator": ">", "value": "fast"}])},
    {"level": "LOUD"}, {"isRootObservation": "maybe"},
])
def test_v2_bad_params_are_400(dataset: ReadApi, params: dict) -> None:
    r = dataset.get("/api/public/v2/observations", **params)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidRequestError"


def test_v1_bad_params_are_400(dataset: ReadApi) -> None:
    for params in ({"page": 0}, {"fromStartTime": "x"}, {"filter": "{}"}, {"limit": "many"}):
        r = dataset.get("/api/public/observations", **params)
        assert r.status_code == 400, (params, r.text)
