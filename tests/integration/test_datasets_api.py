"""/api/public datasets, items, runs and run items on both stacks: shapes, upserts, item versions,
JSON Schema validation, names with slashes, deletes and project isolation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from conftest import create_project_key
from owlscope.app import create_app

DATASET_KEYS = {"id", "name", "description", "metadata", "inputSchema", "expectedOutputSchema", "projectId",
                "createdAt", "updatedAt"}
ITEM_KEYS = {"id", "status", "input", "expectedOutput", "metadata", "sourceTraceId", "sourceObservationId",
             "datasetId", "datasetName", "createdAt", "updatedAt", "mediaReferences"}
RUN_ITEM_KEYS = {"id", "datasetRunId", "datasetRunName", "datasetItemId", "traceId", "observationId", "createdAt",
                 "updatedAt"}


@dataclass
class Api:
    client: TestClient
    services: Any
    a: tuple[str, str]
    b: tuple[str, str]

    def post(self, path: str, body: Any, auth: tuple[str, str] | None = None):
        return self.client.post(path, json=body, auth=auth or self.a)

    def get(self, path: str, auth: tuple[str, str] | None = None, **params):
        return self.client.get(path, params=params, auth=auth or self.a)

    def delete(self, path: str, auth: tuple[str, str] | None = None):
        return self.client.delete(path, auth=auth or self.a)


@pytest.fixture
def api(stack: str, make_settings) -> Iterator[Api]:
    app = create_app(make_settings(stack), run_worker=False)
    with TestClient(app) as client:
        a = create_project_key(app.state.services, project_name="a")
        b = create_project_key(app.state.services, project_name="b")
        yield Api(client, app.state.services, (a["public_key"], a["secret_key"]), (b["public_key"], b["secret_key"]))


def _enc(name: str) -> str:
    return quote(name, safe="")


def test_datasets_create_get_list_and_upsert(api: Api) -> None:
    r = api.post("/api/public/v2/datasets", {"name": "team/qa", "description": "d", "metadata": {"m": 1}})
    assert r.status_code == 200, r.text
    ds = r.json()
    assert set(ds) == DATASET_KEYS and ds["name"] == "team/qa" and ds["metadata"] == {"m": 1}
    got = api.get(f"/api/public/v2/datasets/{_enc('team/qa')}")
    assert got.status_code == 200 and got.json() == ds
    # posting the name again updates what is given and keeps the rest
    r = api.post("/api/public/v2/datasets", {"name": "team/qa", "description": "new", "metadata": None})
    assert r.json()["id"] == ds["id"] and r.json()["description"] == "new" and r.json()["metadata"] == {"m": 1}
    api.post("/api/public/v2/datasets", {"name": "other"})
    listed = api.get("/api/public/v2/datasets", limit=1)
    assert listed.json()["meta"] == {"page": 1, "limit": 1, "totalItems": 2, "totalPages": 2}
    assert listed.json()["data"][0]["name"] == "other"  # newest first
    missing = api.get("/api/public/v2/datasets/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "LangfuseNotFoundError"
    assert api.post("/api/public/v2/datasets", {"description": "no name"}).status_code == 400
    assert api.post("/api/public/v2/datasets", {"name": ""}).status_code == 400
    assert api.get("/api/public/v2/datasets", page=0).status_code == 400


def test_items_upsert_status_get_and_delete(api: Api) -> None:
    api.post("/api/public/v2/datasets", {"name": "ds"})
    r = api.post("/api/public/dataset-items", {"datasetName": "ds", "input": {"q": 1}, "expectedOutput": "a",
                                               "metadata": {"k": "v"}, "sourceTraceId": "t-1"})
    assert r.status_code == 200, r.text
    item = r.json()
    assert set(item) == ITEM_KEYS and item["status"] == "ACTIVE" and item["datasetName"] == "ds"
    assert item["mediaReferences"] == [] and item["sourceTraceId"] == "t-1"
    # upsert by id: given fields change, the rest stay
    r = api.post("/api/public/dataset-items", {"datasetName": "ds", "id": item["id"], "expectedOutput": "b",
                                               "status": "ARCHIVED"})
    up = r.json()
    assert up["id"] == item["id"] and up["expectedOutput"] == "b" and up["input"] == {"q": 1}
    assert up["status"] == "ARCHIVED" and up["createdAt"] == item["createdAt"]
    assert api.get(f"/api/public/dataset-items/{item['id']}").json()["expectedOutput"] == "b"
    # archived: out of the item list (as in Langfuse), still readable by id
    assert api.get("/api/public/dataset-items", sourceTraceId="t-1").json()["meta"]["totalItems"] == 0
    # ids are unique per project: not reusable in another dataset
    api.post("/api/public/v2/datasets", {"name": "ds2"})
    moved = api.post("/api/public/dataset-items", {"datasetName": "ds2", "id": item["id"], "input": 1})
    assert moved.status_code == 400 and "another dataset" in moved.json()["message"]
    bad = api.post("/api/public/dataset-items", {"datasetName": "ds", "input": 1, "status": "GONE"})
    assert bad.status_code == 400 and "status" in bad.json()["message"]
    assert api.post("/api/public/dataset-items", {"datasetName": "nope", "input": 1}).status_code == 404
    deleted = api.delete(f"/api/public/dataset-items/{item['id']}")
    assert deleted.status_code == 200 and deleted.json() == {"message": "Dataset item successfully deleted"}
    assert api.get(f"/api/public/dataset-items/{item['id']}").status_code == 404
    assert api.delete(f"/api/public/dataset-items/{item['id']}").status_code == 404


def test_items_paging(api: Api) -> None:
    api.post("/api/public/v2/datasets", {"name": "ds"})
    for i in range(5):
        api.post("/api/public/dataset-items", {"datasetName": "ds", "input": i, "id": f"i{i}"})
    page2 = api.get("/api/public/dataset-items", datasetName="ds", page=2, limit=2).json()
    assert page2["meta"] == {"page": 2, "limit": 2, "totalItems": 5, "totalPages": 3}
    assert [i["id"] for i in page2["data"]] == ["i2", "i1"]  # newest first


def _now() -> str:
    time.sleep(0.01)
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    time.sleep(0.01)
    return stamp


def test_item_versions(api: Api) -> None:
    api.post("/api/public/v2/datasets", {"name": "v/ds"})
    api.post("/api/public/dataset-items", {"datasetName": "v/ds", "id": "a", "input": "a1", "expectedOutput": "x"})
    api.post("/api/public/dataset-items", {"datasetName": "v/ds", "id": "gone", "input": "g1"})
    t1 = _now()
    api.post("/api/public/dataset-items", {"datasetName": "v/ds", "id": "a", "input": "a2"})
    api.post("/api/public/dataset-items", {"datasetName": "v/ds", "id": "b", "input": "b1"})
    api.delete("/api/public/dataset-items/gone")
    t2 = _now()
    api.post("/api/public/dataset-items", {"datasetName": "v/ds", "id": "b", "status": "ARCHIVED"})

    def at(version: str) -> dict[str, Any]:
        r = api.get("/api/public/dataset-items", datasetName="v/ds", version=version)
        assert r.status_code == 200, r.text
        return {i["id"]: i for i in r.json()["data"]}

    old = at(t1)
    assert set(old) == {"a", "gone"}  # b did not exist yet; gone was not deleted yet
    assert old["a"]["input"] == "a1" and old["a"]["expectedOutput"] == "x"
    mid = at(t2)
    assert set(mid) == {"a", "b"} and mid["a"]["input"] == "a2" and mid["b"]["status"] == "ACTIVE"
    assert mid["a"]["expectedOutput"] == "x"  # kept by the upsert
    now = {i["id"]: i for i in api.get("/api/public/dataset-items", datasetName="v/ds").json()["data"]}
    assert set(now) == {"a"}  # b is archived: out of the list, as in Langfuse
    assert api.get("/api/public/dataset-items/b").json()["status"] == "ARCHIVED"
    assert at("2000-01-01T00:00:00Z") == {}
    assert api.get("/api/public/dataset-items", version=t1).status_code == 400  # needs datasetName
    bad = api.get("/api/public/dataset-items", datasetName="v/ds", version="yesterday")
    assert bad.status_code == 400 and "version" in bad.json()["message"]


SCHEMA = {"type": "object", "properties": {"question": {"type": "string"}, "n": {"type": "integer"}},
          "required": ["question"]}


def test_schema_validation(api: Api) -> None:
    r = api.post("/api/public/v2/datasets", {"name": "s", "inputSchema": SCHEMA,
                                             "expectedOutputSchema": {"type": "string"}})
    assert r.status_code == 200 and r.json()["inputSchema"] == SCHEMA
    ok = api.post("/api/public/dataset-items", {"datasetName": "s", "input": {"question": "q"}, "expectedOutput": "a"})
    assert ok.status_code == 200
    r = api.post("/api/public/dataset-items", {"datasetName": "s", "input": {"question": "q", "n": "three"}})
    assert r.status_code == 400 and r.json()["error"] == "InvalidRequestError"
    assert "input.n: 'three' is not of type 'integer'" in r.json()["message"]
    r = api.post("/api/public/dataset-items", {"datasetName": "s", "input": {"n": 1}})
    assert "'question' is a required property" in r.json()["message"]
    r = api.post("/api/public/dataset-items", {"datasetName": "s", "input": {"question": "q"}, "expectedOutput": 5})
    assert r.status_code == 400 and "expectedOutput: 5 is not of type 'string'" in r.json()["message"]
    # an update is checked against the merged item
    r = api.post("/api/public/dataset-items", {"datasetName": "s", "id": ok.json()["id"], "expectedOutput": [1]})
    assert r.status_code == 400
    assert api.get("/api/public/dataset-items", datasetName="s").json()["meta"]["totalItems"] == 1
    # an invalid schema, and a schema the existing items break, are refused; nothing changes
    r = api.post("/api/public/v2/datasets", {"name": "s", "inputSchema": {"type": "no-such-type"}})
    assert r.status_code == 400 and "not a valid JSON Schema" in r.json()["message"]
    r = api.post("/api/public/v2/datasets", {"name": "s", "inputSchema": {"type": "object", "required": ["other"]}})
    assert r.status_code == 400 and "'other' is a required property" in r.json()["message"]
    assert api.get("/api/public/v2/datasets/s").json()["inputSchema"] == SCHEMA


def test_run_items_runs_and_deletes(api: Api) -> None:
    ds = api.post("/api/public/v2/datasets", {"name": "r/ds"}).json()
    for i in ("i1", "i2"):
        api.post("/api/public/dataset-items", {"datasetName": "r/ds", "id": i, "input": i})
    first = api.post("/api/public/dataset-run-items", {"runName": "run/1", "datasetItemId": "i1", "traceId": "t1",
                                                       "observationId": "o1", "runDescription": "d",
                                                       "metadata": {"m": 1}})
    assert first.status_code == 200, first.text
    ri = first.json()
    assert set(ri) == RUN_ITEM_KEYS and ri["datasetRunName"] == "run/1" and ri["observationId"] == "o1"
    again = api.post("/api/public/dataset-run-items", {"runName": "run/1", "datasetItemId": "i1", "traceId": "t1"})
    assert again.json()["id"] == ri["id"]  # the same (run, item, trace): idempotent
    api.post("/api/public/dataset-run-items", {"runName": "run/1", "datasetItemId": "i2", "traceId": "t2",
                                               "runDescription": "d2"})
    run = api.get(f"/api/public/datasets/{_enc('r/ds')}/runs/{_enc('run/1')}").json()
    assert run["id"] == ri["datasetRunId"] and run["description"] == "d2" and run["metadata"] == {"m": 1}
    assert run["datasetId"] == ds["id"] and run["scores"] == []
    assert [x["datasetItemId"] for x in run["datasetRunItems"]] == ["i1", "i2"]
    listed = api.get("/api/public/dataset-run-items", datasetId=ds["id"], runName="run/1").json()
    assert listed["meta"]["totalItems"] == 2
    runs = api.get(f"/api/public/datasets/{_enc('r/ds')}/runs").json()
    assert [r["name"] for r in runs["data"]] == ["run/1"]
    # errors
    assert api.post("/api/public/dataset-run-items", {"runName": "x", "datasetItemId": "nope",
                                                      "traceId": "t"}).status_code == 404
    r = api.post("/api/public/dataset-run-items", {"runName": "x", "datasetItemId": "i1"})
    assert r.status_code == 400 and "traceId" in r.json()["message"]
    assert api.get(f"/api/public/datasets/{_enc('r/ds')}/runs/nope").status_code == 404
    # over-long names and ids are a 400, not a database error
    long = api.post("/api/public/dataset-run-items", {"runName": "x", "datasetItemId": "i1", "traceId": "t" * 300})
    assert long.status_code == 400 and "traceId" in long.json()["message"]
    long = api.post("/api/public/dataset-run-items", {"runName": "r" * 2000, "datasetItemId": "i1", "traceId": "t"})
    assert long.status_code == 400 and "runName" in long.json()["message"]
    long = api.post("/api/public/dataset-items", {"datasetName": "r/ds", "input": 1, "sourceTraceId": "s" * 300})
    assert long.status_code == 400 and "sourceTraceId" in long.json()["message"]
    assert api.post("/api/public/dataset-items", {"datasetName": "r/ds", "id": "i" * 300}).status_code == 400
    # deleting an item deletes its run items; deleting the run deletes the rest
    api.delete("/api/public/dataset-items/i1")
    run = api.get(f"/api/public/datasets/{_enc('r/ds')}/runs/{_enc('run/1')}").json()
    assert [x["datasetItemId"] for x in run["datasetRunItems"]] == ["i2"]
    d = api.delete(f"/api/public/datasets/{_enc('r/ds')}/runs/{_enc('run/1')}")
    assert d.status_code == 200 and d.json() == {"message": "Dataset run successfully deleted"}
    assert api.get(f"/api/public/datasets/{_enc('r/ds')}/runs/{_enc('run/1')}").status_code == 404
    assert api.get("/api/public/dataset-run-items", datasetId=ds["id"], runName="run/1").status_code == 404


def test_project_isolation(api: Api) -> None:
    ds = api.post("/api/public/v2/datasets", {"name": "private"}).json()
    api.post("/api/public/dataset-items", {"datasetName": "private", "id": "shared-id", "input": "a"})
    api.post("/api/public/dataset-run-items", {"runName": "r", "datasetItemId": "shared-id", "traceId": "t"})
    b = api.b
    assert api.get("/api/public/v2/datasets/private", auth=b).status_code == 404
    assert api.get("/api/public/v2/datasets", auth=b).json()["data"] == []
    assert api.get("/api/public/dataset-items/shared-id", auth=b).status_code == 404
    assert api.get("/api/public/dataset-items", auth=b).json()["data"] == []
    assert api.delete("/api/public/dataset-items/shared-id", auth=b).status_code == 404
    assert api.get("/api/public/datasets/private/runs", auth=b).status_code == 404
    assert api.get("/api/public/dataset-run-items", auth=b, datasetId=ds["id"], runName="r").status_code == 404
    assert api.post("/api/public/dataset-run-items", {"runName": "r", "datasetItemId": "shared-id",
                                                      "traceId": "t"}, auth=b).status_code == 404
    assert api.get("/api/public/experiments", auth=b, fromStartTime="2000-01-01T00:00:00Z").json()["data"] == []
    # the same names and item ids are free in project b
    api.post("/api/public/v2/datasets", {"name": "private"}, auth=b)
    r = api.post("/api/public/dataset-items", {"datasetName": "private", "id": "shared-id", "input": "b"}, auth=b)
    assert r.status_code == 200 and r.json()["input"] == "b"
    assert api.get("/api/public/dataset-items/shared-id").json()["input"] == "a"
    assert api.get("/api/public/v2/datasets/private").status_code == 200
    assert api.get("/api/public/v2/datasets").json()["meta"]["totalItems"] == 1
    unauth = api.client.get("/api/public/v2/datasets")
    assert unauth.status_code == 401


def test_experiments_paging_and_filters(api: Api) -> None:
    api.post("/api/public/v2/datasets", {"name": "e"})
    api.post("/api/public/dataset-items", {"datasetName": "e", "id": "x", "input": 1})
    for n in range(3):
        api.post("/api/public/dataset-run-items", {"runName": f"run-{n}", "datasetItemId": "x", "traceId": f"t{n}"})
    since = "2000-01-01T00:00:00Z"
    page = api.get("/api/public/experiments", fromStartTime=since, limit=2).json()
    assert [e["name"] for e in page["data"]] == ["run-2", "run-1"] and page["meta"]["cursor"]
    rest = api.get("/api/public/experiments", fromStartTime=since, limit=2, cursor=page["meta"]["cursor"]).json()
    assert [e["name"] for e in rest["data"]] == ["run-0"] and "cursor" not in rest["meta"]
    flt = '[{"column": "name", "operator": "any of", "value": ["run-0", "run-2"]}]'
    assert {e["name"] for e in api.get("/api/public/experiments", fromStartTime=since, filter=flt).json()["data"]} \
        == {"run-0", "run-2"}
    assert api.get("/api/public/experiments", fromStartTime="2999-01-01T00:00:00Z").json()["data"] == []
    assert api.get("/api/public/experiments").status_code == 400  # fromStartTime is required
    assert api.get("/api/public/experiments", fromStartTime=since, cursor="junk").status_code == 400
    assert api.get("/api/public/experiments", fromStartTime=since, fields="bogus").status_code == 400
    items = api.get("/api/public/experiment-items", fromStartTime=since, experimentName="run-1").json()["data"]
    assert [(i["experimentName"], i["traceId"], i["experimentItemId"]) for i in items] == [("run-1", "t1", "x")]
