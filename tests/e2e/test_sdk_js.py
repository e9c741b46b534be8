"""The official Langfuse JS SDK (@langfuse/tracing, @langfuse/otel, @langfuse/client 5.11) against a
real server: tests/js/flows.mjs traces every observation type with propagated attributes,
generations with usage and cost, scores, prompts, datasets and an experiment; every field is read
back here through the public API.

The packages are pinned in tests/js/package-lock.json; `.ci/run` installs them with `npm ci`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import skip_or_fail
from support.sdk_reads import read_observations, read_trace

JS_DIR = Path(__file__).resolve().parents[1] / "js"
TYPES = ("span", "generation", "agent", "tool", "chain", "retriever", "evaluator", "embedding", "guardrail", "event")


@pytest.fixture(scope="module")
def js_run(sdk_server) -> dict:
    node = shutil.which("node")
    if node is None:
        skip_or_fail("node is not installed (the JS SDK tests need Node.js 20+)")
    if not (JS_DIR / "node_modules" / "@langfuse" / "client").is_dir():
        skip_or_fail("the JS SDK is not installed: run `npm ci` in tests/js")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "OTEL_"))}
    env.update(LANGFUSE_PUBLIC_KEY=sdk_server.public_key, LANGFUSE_SECRET_KEY=sdk_server.secret_key,
               LANGFUSE_BASE_URL=sdk_server.url)
    tag = uuid.uuid4().hex[:8]
    proc = subprocess.run([node, "flows.mjs", tag], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"node flows.mjs failed:\n{proc.stdout}\n{proc.stderr}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["sdk_version"].startswith("5.11."), out["sdk_version"]
    return out


def test_trace_with_every_observation_type_and_propagated_attributes(sdk_server, js_run) -> None:
    tag = js_run["tag"]
    trace = read_trace(sdk_server, js_run["trace_id"], len(TYPES) + 3)
    assert trace["name"] == f"js-trace-{tag}"
    assert trace["userId"] == f"user-{tag}" and trace["sessionId"] == f"session-{tag}"
    assert set(trace["tags"]) == {"js", "e2e"} and trace["version"] == "js-v1"
    assert trace["metadata"]["tenant"] == "acme"
    # the JS SDK sends a string output as it is ("4"); the v1 read parses stored JSON text, so it reads
    # back as the number 4, as Langfuse's does
    assert trace["input"] == {"question": "what is 2+2?"} and trace["output"] == 4
    obs = read_observations(sdk_server, js_run["trace_id"])
    root_id = js_run["observations"]["root"]
    assert obs[f"js-root-{tag}"]["id"] == root_id and obs[f"js-root-{tag}"]["isRootObservation"] is True
    for as_type in TYPES:
        o = obs[f"{as_type}-{tag}"]
        assert o["id"] == js_run["observations"][as_type]
        assert o["type"] == as_type.upper(), (as_type, o["type"])
        assert o["parentObservationId"] == root_id and o["isRootObservation"] is False
        assert o["input"] == {"q": as_type} and o["output"] == {"a": as_type}
        assert o["metadata"]["kind"] == as_type and o["metadata"]["tenant"] == "acme"
        assert o["level"] == "WARNING" and o["statusMessage"] == f"{as_type} warned"
        assert o["userId"] == f"user-{tag}" and o["sessionId"] == f"session-{tag}"
        assert o["version"] == "js-v1" and o["environment"] == "default"
        assert o["startTime"] <= o["endTime"]
    session = sdk_server.get(f"/api/public/sessions/session-{tag}").json()
    assert [t["id"] for t in session["traces"]] == [js_run["trace_id"]]


def test_generations_with_usage_and_cost(sdk_server, js_run) -> None:
    tag = js_run["tag"]
    read_trace(sdk_server, js_run["trace_id"], len(TYPES) + 3)
    obs = read_observations(sdk_server, js_run["trace_id"])
    priced = obs[f"priced-{tag}"]
    assert priced["type"] == "GENERATION" and priced["providedModelName"] == "gpt-4o-mini"
    assert priced["modelParameters"] == {"temperature": 0.2, "max_tokens": 64}
    assert priced["input"] == [{"role": "user", "content": "2+2?"}]
    assert priced["output"] == {"role": "assistant", "content": "4"}
    assert priced["usageDetails"] == {"input": 1000, "output": 100, "total": 1100}
    # priced from the model table: gpt-4o-mini at $0.15 / $0.60 per million tokens
    assert priced["costDetails"]["input"] == pytest.approx(1000 * 0.15e-6)
    assert priced["costDetails"]["output"] == pytest.approx(100 * 0.6e-6)
    assert priced["totalCost"] == pytest.approx(1000 * 0.15e-6 + 100 * 0.6e-6)
    provided = obs[f"provided-{tag}"]
    assert provided["usageDetails"] == {"input": 10, "output": 5, "total": 15}
    assert provided["costDetails"] == pytest.approx({"input": 0.001, "output": 0.002, "total": 0.003})
    trace = read_trace(sdk_server, js_run["trace_id"])
    assert trace["totalCost"] == pytest.approx(priced["totalCost"] + 0.003)
    v1 = sdk_server.get(f"/api/public/observations/{js_run['observations']['priced']}").json()
    assert v1["usage"]["input"] == 1000 and v1["calculatedTotalCost"] == pytest.approx(priced["totalCost"])


def test_scores(sdk_server, js_run) -> None:
    r = sdk_server.wait_for("/api/public/v2/scores", lambda r: r.status_code == 200 and len(r.json()["data"]) == 3,
                            traceId=js_run["trace_id"], timeout=30)
    scores = {s["name"]: s for s in r.json()["data"]}
    assert scores["accuracy"]["value"] == pytest.approx(0.9) and scores["accuracy"]["comment"] == "js"
    assert scores["accuracy"]["dataType"] == "NUMERIC" and scores["accuracy"]["source"] == "API"
    assert scores["tone"]["dataType"] == "CATEGORICAL" and scores["tone"]["stringValue"] == "friendly"
    assert scores["tone"]["observationId"] == js_run["observations"]["priced"]
    assert scores["passed"]["dataType"] == "BOOLEAN" and scores["passed"]["value"] == 1
    assert scores["passed"]["stringValue"] == "True"


def test_prompts_by_label_and_version(sdk_server, js_run) -> None:
    p = js_run["prompts"]
    assert p["production"] == {"version": 1, "compiled": "Hello Ada!", "config": {"temperature": 0.1},
                               "labels": ["production"]}
    assert p["staging"] == {"version": 2, "compiled": "Hi Ada, welcome."}
    assert p["v1"] == {"version": 1, "prompt": "Hello {{name}}!"}
    assert p["chat"] == [{"role": "system", "content": "You are a tutor."}, {"role": "user", "content": "2+2?"}]
    name = quote(p["name"], safe="")
    latest = sdk_server.get(f"/api/public/v2/prompts/{name}", label="latest").json()
    assert latest["version"] == 2 and set(latest["labels"]) == {"staging", "latest"}
    assert latest["type"] == "text" and latest["tags"] == ["js"]
    listed = sdk_server.get("/api/public/v2/prompts", name=p["name"]).json()["data"]
    assert [(m["name"], sorted(m["versions"])) for m in listed] == [(p["name"], [1, 2])]


def test_dataset_and_experiment(sdk_server, js_run) -> None:
    ds = js_run["dataset"]
    got = sdk_server.get(f"/api/public/v2/datasets/{quote(ds['name'], safe='')}").json()
    assert got["id"] == ds["id"] and got["description"] == "from js" and got["metadata"] == {"source": "js"}
    items = sdk_server.get("/api/public/dataset-items", datasetName=ds["name"]).json()["data"]
    assert {i["id"] for i in items} == set(ds["items"])
    assert {(i["input"]["q"], i["expectedOutput"]) for i in items} == {("2+2", "4"), ("3+3", "6")}

    exp = js_run["experiment"]
    assert sorted(exp["outputs"]) == ["4", "6"]
    run_path = f"/api/public/datasets/{quote(ds['name'], safe='')}/runs/{quote(exp['runName'], safe='')}"
    run = sdk_server.wait_for(run_path, lambda r: r.status_code == 200 and len(r.json()["datasetRunItems"]) == 2,
                              timeout=30).json()
    assert run["id"] == exp["datasetRunId"] and run["datasetId"] == ds["id"]
    assert {ri["traceId"] for ri in run["datasetRunItems"]} == set(exp["traceIds"])
    assert {ri["datasetItemId"] for ri in run["datasetRunItems"]} == set(ds["items"])
    for trace_id in exp["traceIds"]:
        trace = read_trace(sdk_server, trace_id, 1)
        assert trace["output"] in (4, 6)
    exact = sdk_server.wait_for(
        "/api/public/v2/scores",
        lambda r: r.status_code == 200 and len([s for s in r.json()["data"] if s["traceId"] in exp["traceIds"]]) == 2,
        name="exact", limit=100, timeout=30).json()["data"]
    assert {s["value"] for s in exact if s["traceId"] in exp["traceIds"]} == {1.0}
    run_scores = sdk_server.wait_for(
        "/api/public/v2/scores", lambda r: r.status_code == 200 and len(r.json()["data"]) == 1,
        datasetRunId=exp["datasetRunId"], timeout=30).json()["data"]
    assert run_scores[0]["name"] == "mean_exact" and run_scores[0]["value"] == 1.0
