"""Datasets and experiments with the official SDK against a real server.

- SDK v5 `run_experiment` on a dataset fetched with `get_dataset`, and on local data: runs, run
  items, traces, item scores and run-level scores appear without any run-item call;
- SDK 4.14's dataset runs (the run-item API plus its experiment spans), replayed from the wire
  capture with the ids our server handed out, as the real SDK would send them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from langfuse import Evaluation, get_client
from unit.otlp_builders import CAPTURE_V4, gzip_body, load_capture, request_from_spans

from conftest import create_project_key
from owlscope.datasets.analysis import compare_runs, runs_table
from support.fake_openai import FakeOpenAI


@pytest.fixture(scope="module")
def llm():
    with FakeOpenAI() as server:
        yield server


def _enc(name: str) -> str:
    return quote(name, safe="")


def _since() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat()


def _answer_task(llm):
    from langfuse.openai import OpenAI

    client = OpenAI(base_url=llm.base_url, api_key="test-key")

    def task(*, item, **kwargs):
        question = item["input"]["q"] if isinstance(item, dict) else item.input["q"]
        resp = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
        return resp.choices[0].message.content

    return task


def exact(*, input, output, expected_output=None, **kwargs):
    return Evaluation(name="exact", value=1.0 if output == expected_output else 0.0, comment="cmp")


def mean_exact(*, item_results, **kwargs):
    values = [e.value for r in item_results for e in r.evaluations if e.name == "exact"]
    return Evaluation(name="mean_exact", value=sum(values) / len(values))


def test_v5_run_experiment_on_a_dataset(sdk_server, llm) -> None:
    lf = get_client()
    name = f"qa/{uuid.uuid4().hex[:6]}"  # a slash in the name: URL-encoded by the SDK
    lf.create_dataset(name=name, description="questions", metadata={"team": "a"})
    lf.create_dataset_item(dataset_name=name, input={"q": "two"}, expected_output="echo: two", id=f"{name}-1")
    lf.create_dataset_item(dataset_name=name, input={"q": "three"}, expected_output="3", metadata={"k": 1})
    dataset = lf.get_dataset(name)
    assert len(dataset.items) == 2
    run_name = f"run-{uuid.uuid4().hex[:6]}"
    result = dataset.run_experiment(name="qa-exp", run_name=run_name, description="first try",
                                    task=_answer_task(llm), evaluators=[exact], run_evaluators=[mean_exact],
                                    metadata={"model": "gpt-4o-mini"})
    assert len(result.item_results) == 2
    lf.flush()

    def complete(r: httpx.Response) -> bool:
        body = r.json() if r.status_code == 200 else {}
        return len(body.get("datasetRunItems", [])) == 2 and len(body.get("scores", [])) == 1

    run = sdk_server.wait_for(f"/api/public/datasets/{_enc(name)}/runs/{_enc(run_name)}", complete, timeout=20).json()
    assert run["id"] == result.experiment_id  # the SDK's experiment id is the run id
    assert run["name"] == run_name and run["description"] == "first try"
    assert run["metadata"] == {"model": "gpt-4o-mini"}
    assert run["datasetName"] == name
    assert run["scores"][0]["name"] == "mean_exact" and run["scores"][0]["value"] == 0.5
    by_item = {ri["datasetItemId"]: ri for ri in run["datasetRunItems"]}
    assert set(by_item) == {it.id for it in dataset.items}
    traces = {r.item.id: r.trace_id for r in result.item_results}
    for item_id, ri in by_item.items():
        assert ri["traceId"] == traces[item_id]
        assert ri["observationId"]  # the task span, the item's root observation
        assert ri["datasetRunId"] == run["id"]

    runs = sdk_server.get(f"/api/public/datasets/{_enc(name)}/runs").json()
    assert [r["name"] for r in runs["data"]] == [run_name]

    # item scores, outputs, latency and cost: the comparison view's data
    services = sdk_server.services
    cmp = None
    for _ in range(100):
        cmp = compare_runs(services.sessions, services.olap, project_id=sdk_server.project_id, dataset_name=name,
                           run_names=[run_name])
        if all(i["runs"][run_name] and "exact" in i["runs"][run_name]["scores"] for i in cmp["items"]):
            break
        import time

        time.sleep(0.1)
    assert cmp is not None
    cells = {i["itemId"]: i["runs"][run_name] for i in cmp["items"]}
    assert cells[f"{name}-1"]["output"] == "echo: two" and cells[f"{name}-1"]["scores"]["exact"] == 1.0
    other = next(k for k in cells if k != f"{name}-1")
    assert cells[other]["output"] == "echo: three" and cells[other]["scores"]["exact"] == 0.0
    assert all(c["latency"] is not None and c["latency"] >= 0 for c in cells.values())
    table = runs_table(services.sessions, services.olap, project_id=sdk_server.project_id, dataset_name=name)
    assert table[0]["itemCount"] == 2 and table[0]["avgScores"] == {"exact": 0.5}
    assert table[0]["runScores"] == {"mean_exact": 0.5}

    # the experiment views
    exps = sdk_server.get("/api/public/experiments", fromStartTime=_since(), id=run["id"],
                          fields="core,metadata,scores").json()["data"]
    assert len(exps) == 1 and exps[0]["itemCount"] == 2 and exps[0]["datasetId"] == dataset.id
    assert exps[0]["scores"][0]["name"] == "mean_exact"
    items = sdk_server.get("/api/public/experiment-items", fromStartTime=_since(), experimentId=run["id"],
                           fields="core,dataset,io,itemMetadata,scores").json()["data"]
    io = {i["experimentItemId"]: i for i in items}
    assert io[f"{name}-1"]["input"] == {"q": "two"} and io[f"{name}-1"]["output"] == "echo: two"
    assert io[f"{name}-1"]["expectedOutput"] == "echo: two"
    assert io[other]["experimentItemMetadata"] == {"k": 1}
    assert io[f"{name}-1"]["environment"] == "sdk-experiment"
    assert [s["name"] for s in io[f"{name}-1"]["scores"]] == ["exact"]

    # a second run of the same name adds to the same run, replays change nothing
    again = dataset.run_experiment(name="qa-exp", run_name=run_name, task=_answer_task(llm))
    lf.flush()
    assert again.experiment_id == run["id"]
    run2 = sdk_server.wait_for(f"/api/public/datasets/{_enc(name)}/runs/{_enc(run_name)}",
                               lambda r: len(r.json()["datasetRunItems"]) == 4, timeout=20).json()
    assert run2["id"] == run["id"]


def test_v5_run_experiment_on_local_data(sdk_server, llm) -> None:
    lf = get_client()
    result = lf.run_experiment(
        name=f"local-{uuid.uuid4().hex[:6]}", data=[{"input": {"q": "hi"}, "expected_output": "echo: hi",
                                                     "metadata": {"src": "local"}}],
        task=_answer_task(llm), evaluators=[exact], run_evaluators=[mean_exact],
    )
    lf.flush()
    exp_id = result.experiment_id

    def ready(r: httpx.Response) -> bool:
        data = r.json().get("data", []) if r.status_code == 200 else []
        return len(data) == 1 and data[0]["scores"]

    exp = sdk_server.wait_for("/api/public/experiments", ready, timeout=20, fromStartTime=_since(), id=exp_id,
                              fields="core,scores").json()["data"][0]
    assert exp["name"] == result.run_name and exp["datasetId"] is None and exp["itemCount"] == 1
    assert exp["scores"][0]["name"] == "mean_exact" and exp["scores"][0]["value"] == 1.0

    def scored(r: httpx.Response) -> bool:
        data = r.json().get("data", []) if r.status_code == 200 else []
        return len(data) == 1 and data[0]["scores"]

    item = sdk_server.wait_for("/api/public/experiment-items", scored, timeout=20, fromStartTime=_since(),
                               experimentId=exp_id, fields="core,dataset,io,itemMetadata,scores").json()["data"][0]
    assert item["traceId"] == result.item_results[0].trace_id
    assert item["experimentDatasetId"] is None
    assert item["input"] == {"q": "hi"} and item["output"] == "echo: hi"
    assert item["expectedOutput"] == "echo: hi"
    assert item["experimentItemMetadata"] == {"src": "local"}
    assert item["scores"][0]["name"] == "exact" and item["scores"][0]["value"] == 1.0


def test_v4_dataset_run_replayed_from_the_capture(sdk_server) -> None:
    """SDK 4.14 creates run items through the API and exports its experiment spans; replay both
    with the ids this server hands out (dataset id, run id), as the SDK would."""
    keys = create_project_key(sdk_server.services, org_name="v4", project_name=f"v4-{uuid.uuid4().hex[:6]}")
    auth = (keys["public_key"], keys["secret_key"])
    capture = load_capture(CAPTURE_V4)
    client = httpx.Client(base_url=sdk_server.url, auth=auth, timeout=30)
    sdk_headers = {"x-langfuse-sdk-name": "python", "x-langfuse-sdk-version": "4.14.3"}
    ids: dict[str, str] = {}
    run_ids: set[str] = set()
    for req in capture:
        path = req["path"]
        if path == "/api/public/v2/datasets" and req["method"] == "POST":
            r = client.post(path, json=req["json"], headers=sdk_headers)
            assert r.status_code == 200, r.text
            ids["dataset"] = r.json()["id"]
        elif path in ("/api/public/dataset-items", "/api/public/dataset-run-items") or \
                path.startswith("/api/public/v2/datasets/"):
            if req["method"] == "POST":
                r = client.post(path, json=req["json"], headers=sdk_headers)
            else:
                r = client.get(path, params={k: v[0] for k, v in req["query"].items()}, headers=sdk_headers)
            assert r.status_code == 200, r.text
            if path == "/api/public/dataset-run-items":
                body = r.json()
                assert body["datasetItemId"] == req["json"]["datasetItemId"]
                assert body["traceId"] == req["json"]["traceId"]
                assert body["observationId"] == req["json"]["observationId"]
                run_ids.add(body["datasetRunId"])
            if path == "/api/public/dataset-items" and req["method"] == "GET":
                assert r.json()["meta"]["totalItems"] == 2
    assert len(run_ids) == 1
    run_id = run_ids.pop()

    otel = next(r for r in capture if r["path"] == "/api/public/otel/v1/traces")
    old_ds = next(s["attributes"]["langfuse.experiment.dataset.id"]["stringValue"] for s in otel["otlp_spans"]
                  if "langfuse.experiment.dataset.id" in s["attributes"])
    old_run = next(s["attributes"]["langfuse.experiment.id"]["stringValue"] for s in otel["otlp_spans"]
                   if "langfuse.experiment.id" in s["attributes"])
    for span in otel["otlp_spans"]:
        for v in span["attributes"].values():
            if isinstance(v, dict) and v.get("stringValue") in (old_ds, old_run):
                v["stringValue"] = ids["dataset"] if v["stringValue"] == old_ds else run_id
    body = gzip_body(request_from_spans(otel["otlp_spans"]))
    r = client.post("/api/public/otel/v1/traces", content=body, headers={
        **sdk_headers, "content-type": "application/x-protobuf", "content-encoding": "gzip"})
    assert r.status_code == 200, r.text
    scores = next(r for r in capture if r["path"] == "/api/public/ingestion")
    r = client.post("/api/public/ingestion", json=scores["json"], headers=sdk_headers)
    assert r.status_code == 207 and not r.json()["errors"], r.text
    # a run-level score on the run id the API returned
    r = client.post("/api/public/scores", json={"name": "run-avg", "value": 0.5, "datasetRunId": run_id})
    assert r.status_code == 200, r.text

    def settled(resp: httpx.Response) -> bool:
        return resp.status_code == 200 and resp.json()["scores"] != []

    import time

    deadline = time.monotonic() + 20
    while True:
        run = client.get("/api/public/datasets/cap-ds/runs/cap-run").json()
        if run.get("scores") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert run["id"] == run_id and run["description"] == "desc" and run["metadata"] == {"model": "x"}
    assert run["scores"][0]["name"] == "run-avg"
    # the spans recorded the same two run items: nothing duplicated, no run without a dataset
    assert sorted(ri["observationId"] for ri in run["datasetRunItems"]) == ["46ae93d6d032b3f0", "f0aac3d68bfbcbb0"]
    runs = client.get("/api/public/datasets/cap-ds/runs").json()
    assert [x["id"] for x in runs["data"]] == [run_id]
    exps = client.get("/api/public/experiments", params={"fromStartTime": "2020-01-01T00:00:00Z"}).json()["data"]
    assert [e["id"] for e in exps] == [run_id]
    items = client.get("/api/public/dataset-run-items", params={"datasetId": ids["dataset"], "runName": "cap-run"})
    assert items.status_code == 200 and items.json()["meta"]["totalItems"] == 2
    # item scores from the 4.14 batch arrive on the run items' traces
    deadline = time.monotonic() + 20
    while True:
        got = client.get("/api/public/experiment-items", params={
            "fromStartTime": "2020-01-01T00:00:00Z", "fields": "core,io,scores"}).json()["data"]
        if all(i["scores"] for i in got) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert {i["scores"][0]["value"] for i in got} == {0.0, 1.0}
    assert {i["output"] for i in got} == {4}  # the SDK sent the JSON text "4"


def test_v5_get_dataset_at_a_version(sdk_server) -> None:
    import time

    lf = get_client()
    name = f"versions/{uuid.uuid4().hex[:6]}"
    lf.create_dataset(name=name)
    lf.create_dataset_item(dataset_name=name, id=f"{name}-a", input="a1")
    time.sleep(0.02)
    version = datetime.now(UTC)
    time.sleep(0.02)
    lf.create_dataset_item(dataset_name=name, id=f"{name}-a", input="a2")
    lf.create_dataset_item(dataset_name=name, id=f"{name}-b", input="b1")
    then = lf.get_dataset(name, version=version)
    assert [(i.id, i.input) for i in then.items] == [(f"{name}-a", "a1")]
    now = lf.get_dataset(name)
    assert sorted((i.id, i.input) for i in now.items) == [(f"{name}-a", "a2"), (f"{name}-b", "b1")]
