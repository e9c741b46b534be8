"""The official langfuse SDK 4.14 against a real server: the same core flows as v5, every field
checked through the API.

SDK 4.x cannot share a venv with 5.x: it lives in its own venv whose interpreter is
OWLSCOPE_SDK4_PYTHON (with langfuse==4.14.3, openai, httpx). Each flow of
tests/support/sdk4_scripts/flows.py runs in a subprocess with that interpreter against the
`sdk_server` of this test process and prints the ids to check; the assertions run here.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import skip_or_fail
from support.fake_openai import FakeOpenAI
from support.sdk_reads import read_observations, read_trace

FLOWS = Path(__file__).resolve().parents[1] / "support" / "sdk4_scripts" / "flows.py"
OBSERVATION_TYPES = ("span", "generation", "agent", "tool", "chain", "retriever", "evaluator", "embedding",
                     "guardrail")


@pytest.fixture(scope="module")
def sdk4_python() -> str:
    path = os.environ.get("OWLSCOPE_SDK4_PYTHON")
    if not path:
        skip_or_fail("OWLSCOPE_SDK4_PYTHON is not set (the python of a venv with langfuse==4.14.3, openai, httpx)")
    if not Path(path).is_file():
        skip_or_fail(f"OWLSCOPE_SDK4_PYTHON={path} does not exist")
    return path


@pytest.fixture(scope="module")
def llm():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def run_flow(sdk_server, sdk4_python):
    def run(flow: str, tag: str, llm_url: str | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "OTEL_"))}
        env.update(LANGFUSE_PUBLIC_KEY=sdk_server.public_key, LANGFUSE_SECRET_KEY=sdk_server.secret_key,
                   LANGFUSE_BASE_URL=sdk_server.url, LANGFUSE_HOST=sdk_server.url, PYTHONPATH="")
        args = [sdk4_python, str(FLOWS), flow, tag] + ([llm_url] if llm_url else [])
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"flow {flow} failed:\n{proc.stdout}\n{proc.stderr}"
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["sdk_version"].startswith("4."), out["sdk_version"]  # really the v4 SDK
        return out

    return run


_trace, _observations = read_trace, read_observations


def test_nested_observe_functions(sdk_server, run_flow) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = run_flow("nested", tag)
    trace_id = ids["trace_id"]
    trace = _trace(sdk_server, trace_id, 3)
    assert trace["name"] == f"root-{tag}"
    obs = _observations(sdk_server, trace_id)
    assert obs[f"root-{tag}"]["id"] == ids["root_id"]
    assert obs[f"root-{tag}"]["parentObservationId"] is None
    assert obs[f"outer-{tag}"]["parentObservationId"] == ids["root_id"]
    assert obs[f"inner-{tag}"]["parentObservationId"] == obs[f"outer-{tag}"]["id"]
    assert obs[f"inner-{tag}"]["output"] == {"doubled": 42}
    assert obs[f"inner-{tag}"]["input"]["args"] == [21]
    assert obs[f"outer-{tag}"]["output"] == "done"
    assert all(o["type"] == "SPAN" for o in obs.values())
    assert {o["traceId"] for o in obs.values()} == {trace_id}
    assert trace["htmlPath"].endswith(f"/traces/{trace_id}")
    assert trace["latency"] >= 0
    # the trace's input and output fall back to its root span's
    assert trace["input"] == {"start": 21} and trace["output"] == "root-done"
    assert obs[f"root-{tag}"]["input"] == {"start": 21}


def test_every_observation_type_with_raw_metadata(sdk_server, run_flow) -> None:
    tag = uuid.uuid4().hex[:8]
    traces = run_flow("types", tag)["traces"]
    assert set(traces) == set(OBSERVATION_TYPES)
    for as_type, trace_id in traces.items():
        _trace(sdk_server, trace_id, 2)
        got = _observations(sdk_server, trace_id)
        o = got[f"{as_type}-{tag}"]
        assert o["type"] == as_type.upper()
        assert o["input"] == {"q": as_type} and o["output"] == {"a": as_type}
        assert o["level"] == "WARNING" and o["statusMessage"] == f"{as_type} warned"
        md = o["metadata"]
        # v4 sends str/int/bool values raw; as in Langfuse, a string that is JSON text reads back as
        # that JSON ("42" -> 42, '"hi"' -> "hi") and any other string as sent
        assert md["kind"] == as_type
        assert md["numeric_str"] == 42
        assert md["zero"] == 0 and md["decimal"] == 1.5 and md["json_text"] == {"k": [1, "2"]}
        assert md["quoted"] == "hi"
        assert md["plain"] == "hello world"
        assert md["count"] == 3
        assert md["flag"] is True
        assert float(md["ratio"]) == 0.5
        # ...and JSON-encodes dicts and lists, which arrive as objects and arrays
        assert md["nested"] == {"a": [1, 2], "b": {"c": "d"}}
        assert md["items"] == ["x", "y"]
        event = got[f"event-{as_type}-{tag}"]
        assert event["type"] == "EVENT" and event["parentObservationId"] == o["id"]
        assert event["input"] == "evt-in" and event["output"] == "evt-out"
        assert event["metadata"]["metadata"] == "just a string"  # non-object metadata is kept whole

    gen = _observations(sdk_server, traces["generation"])[f"generation-{tag}"]
    assert gen["providedModelName"] == "gpt-4o"
    assert gen["modelParameters"]["temperature"] == 0.2 and gen["modelParameters"]["max_tokens"] == 64
    assert gen["usageDetails"] == {"input": 10, "output": 5, "total": 15}
    assert gen["costDetails"]["input"] == pytest.approx(0.001)
    assert gen["costDetails"]["output"] == pytest.approx(0.002)
    assert gen["totalCost"] == pytest.approx(0.003)  # provided costs win over the price table
    assert gen["version"] == "gen-v1"
    assert gen["startTime"] <= gen["endTime"]
    emb = _observations(sdk_server, traces["embedding"])[f"embedding-{tag}"]
    assert emb["usageDetails"]["input"] == 10 and emb["totalCost"] == pytest.approx(0.003)

    # the same record through the v1 single-observation endpoint
    v1 = sdk_server.get(f"/api/public/observations/{gen['id']}")
    assert v1.status_code == 200, v1.text
    v1 = v1.json()
    assert v1["type"] == "GENERATION" and v1["metadata"]["numeric_str"] == 42
    assert v1["input"] == {"q": "generation"} and v1["usageDetails"]["total"] == 15


def test_propagate_attributes_become_trace_fields(sdk_server, run_flow) -> None:
    tag = uuid.uuid4().hex[:8]
    trace_ids = run_flow("propagate", tag)["trace_ids"]
    for i, trace_id in enumerate(trace_ids):
        trace = _trace(sdk_server, trace_id, 2)
        assert trace["name"] == f"checkout-{tag}"
        assert trace["sessionId"] == f"sess-{tag}" and trace["userId"] == f"user-{tag}"
        assert sorted(trace["tags"]) == ["a", "b"] and trace["version"] == "v7"
        # v4 propagates metadata values as raw strings, read as JSON where they are JSON text
        assert trace["metadata"]["tenant"] == "acme"
        assert trace["metadata"]["order"] == 1234
        assert trace["metadata"]["note"] == "q"
        assert trace["input"] == {"cart": i} and trace["output"] == f"paid-{i}"
        obs = _observations(sdk_server, trace_id)
        assert obs["step"]["output"] == {"step": i}
        assert obs["step"]["parentObservationId"] == obs[f"request-{i}"]["id"]
        # propagated metadata is part of every observation's metadata, as in Langfuse
        assert obs["step"]["metadata"]["tenant"] == "acme" and obs["step"]["metadata"]["order"] == 1234
    listed = sdk_server.get("/api/public/traces", userId=f"user-{tag}").json()
    assert sorted(t["id"] for t in listed["data"]) == sorted(trace_ids)
    assert listed["meta"]["totalItems"] == 2
    session = sdk_server.wait_for(f"/api/public/sessions/sess-{tag}").json()
    assert sorted(t["id"] for t in session["traces"]) == sorted(trace_ids)
    by_tag = sdk_server.get("/api/public/traces", tags=["a"], name=f"checkout-{tag}").json()
    assert sorted(t["id"] for t in by_tag["data"]) == sorted(trace_ids)


def test_openai_wrapper_chat_and_stream(sdk_server, run_flow, llm) -> None:
    tag = uuid.uuid4().hex[:8]
    out = run_flow("openai", tag, llm.base_url)
    assert out["chat"] == "echo: hello there"
    assert out["streamed"] == "echo: count to three"
    trace_id = out["trace_id"]
    _trace(sdk_server, trace_id, 3)
    obs = _observations(sdk_server, trace_id)
    app = obs[f"app-{tag}"]
    chat = obs["chat"]
    assert chat["type"] == "GENERATION" and chat["parentObservationId"] == app["id"]
    assert chat["providedModelName"] == "gpt-4o"
    assert chat["modelParameters"]["temperature"] == 0.3
    assert int(chat["modelParameters"]["max_tokens"]) == 50
    assert chat["input"] == [{"role": "user", "content": "hello there"}]
    assert chat["output"] == {"role": "assistant", "content": "echo: hello there"}
    # OpenAI's raw usage (fake server: words): cached tokens are part of prompt_tokens, counted once
    usage = chat["usageDetails"]
    assert usage["output"] == 3 and usage["input"] + usage["input_cached_tokens"] == 2
    assert usage["total"] == 5 == sum(v for k, v in usage.items() if k != "total")
    assert chat["costDetails"]["total"] > 0  # priced from the model table
    assert chat["totalCost"] == pytest.approx(chat["costDetails"]["total"])
    stream = obs["stream"]
    assert stream["type"] == "GENERATION" and stream["parentObservationId"] == app["id"]
    assert stream["completionStartTime"] is not None
    streamed = stream["output"]["content"] if isinstance(stream["output"], dict) else stream["output"]
    assert streamed == "echo: count to three"
    assert stream["usageDetails"]["total"] >= 1


def test_scores_of_each_data_type(sdk_server, run_flow) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = run_flow("scores", tag)
    trace_id, obs_id = ids["trace_id"], ids["observation_id"]
    names = {"accuracy", "passed", "tone", "note", "fix", "relevance", "helpful"}
    r = sdk_server.wait_for("/api/public/v2/scores",
                            lambda r: r.status_code == 200 and len(r.json()["data"]) == len(names), traceId=trace_id)
    scores = {s["name"]: s for s in r.json()["data"]}
    assert set(scores) == names
    acc = scores["accuracy"]
    assert acc["value"] == pytest.approx(0.87) and acc["dataType"] == "NUMERIC"
    assert acc["observationId"] == obs_id and acc["comment"] == "ok"
    assert acc["metadata"] == {"judge": "human", "round": 2}
    assert scores["passed"]["dataType"] == "BOOLEAN" and scores["passed"]["value"] == 1
    assert scores["passed"]["stringValue"] == "True"
    assert scores["tone"]["dataType"] == "CATEGORICAL" and scores["tone"]["stringValue"] == "friendly"
    assert scores["note"]["dataType"] == "TEXT" and scores["note"]["stringValue"] == "short and clear"
    assert scores["fix"]["dataType"] == "CORRECTION" and scores["fix"]["stringValue"] == "the corrected answer"
    assert scores["fix"]["observationId"] == obs_id
    assert scores["relevance"]["observationId"] == obs_id and scores["relevance"]["value"] == pytest.approx(0.25)
    assert scores["helpful"]["observationId"] is None and scores["helpful"]["dataType"] == "BOOLEAN"
    assert scores["helpful"]["value"] == 0
    assert all(s["source"] == "API" for s in scores.values())
    one = sdk_server.get(f"/api/public/v2/scores/{acc['id']}")
    assert one.status_code == 200 and one.json()["value"] == pytest.approx(0.87)
    trace = _trace(sdk_server, trace_id)
    assert {s["name"] for s in trace["scores"]} == names
    session_scores = sdk_server.wait_for(
        "/api/public/v2/scores", lambda r: r.status_code == 200 and len(r.json()["data"]) == 1,
        sessionId=f"sess-{tag}").json()["data"]
    assert session_scores[0]["name"] == "session-rating" and session_scores[0]["value"] == 4
    assert session_scores[0]["traceId"] is None


def test_dataset_experiment_with_sdk4(sdk_server, run_flow) -> None:
    out = run_flow("dataset", uuid.uuid4().hex[:8])
    assert out["items"] == 2
    path = f"/api/public/datasets/{out['dataset']}/runs/{out['run']}"
    run = sdk_server.wait_for(path, lambda r: r.status_code == 200 and len(r.json()["datasetRunItems"]) == 2).json()
    items = sdk_server.get("/api/public/dataset-items", datasetName=out["dataset"]).json()["data"]
    assert {ri["datasetItemId"] for ri in run["datasetRunItems"]} == {i["id"] for i in items}
    for ri in run["datasetRunItems"]:
        trace = _trace(sdk_server, ri["traceId"])
        scores = sdk_server.wait_for("/api/public/v2/scores", lambda r: len(r.json()["data"]) >= 1,
                                     traceId=ri["traceId"]).json()["data"]
        assert {s["name"]: s["value"] for s in scores} == {"exact": 1.0}
        assert str(trace["output"]).strip('"') in ("4", "6")  # the task's output
