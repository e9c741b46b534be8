"""The official langfuse SDK (v5) against a real server: every field checked through the API."""

from __future__ import annotations

import json
import uuid

import pytest
from langfuse import get_client, observe, propagate_attributes

from support.fake_openai import FakeOpenAI
from support.sdk_reads import read_observations, read_trace


@pytest.fixture(scope="module")
def llm():
    with FakeOpenAI() as server:
        yield server


_trace, _observations = read_trace, read_observations


def test_nested_observe_functions(sdk_server) -> None:
    tag = uuid.uuid4().hex[:8]

    @observe(name=f"inner-{tag}")
    def inner(x: int) -> dict:
        return {"doubled": x * 2}

    @observe(name=f"outer-{tag}")
    def outer(x: int) -> str:
        inner(x)
        return "done"

    langfuse = get_client()
    with langfuse.start_as_current_observation(name=f"root-{tag}") as root:
        trace_id = root.trace_id
        outer(21)
    langfuse.flush()
    trace = _trace(sdk_server, trace_id, 3)
    assert trace["name"] == f"root-{tag}"
    obs = _observations(sdk_server, trace_id)
    assert obs[f"outer-{tag}"]["parentObservationId"] == obs[f"root-{tag}"]["id"]
    assert obs[f"inner-{tag}"]["parentObservationId"] == obs[f"outer-{tag}"]["id"]
    assert obs[f"inner-{tag}"]["output"] == {"doubled": 42}
    assert obs[f"outer-{tag}"]["output"] == "done"
    assert obs[f"inner-{tag}"]["input"]["args"] == [21]
    assert obs[f"root-{tag}"]["parentObservationId"] is None
    assert trace["htmlPath"].endswith(f"/traces/{trace_id}")
    assert trace["latency"] >= 0


@pytest.mark.parametrize("as_type", ["span", "generation", "agent", "tool", "chain", "retriever", "evaluator",
                                     "embedding", "guardrail"])
def test_every_observation_type(sdk_server, as_type: str) -> None:
    langfuse = get_client()
    name = f"{as_type}-{uuid.uuid4().hex[:8]}"
    with langfuse.start_as_current_observation(name=name, as_type=as_type, input={"q": as_type}) as obs:
        trace_id = obs.trace_id
        obs.update(output={"a": as_type}, metadata={"kind": as_type}, level="WARNING",
                   status_message=f"{as_type} warned")
        langfuse.create_event(name=f"event-{name}", input="evt-in", output="evt-out")
    langfuse.flush()
    _trace(sdk_server, trace_id, 2)
    got = _observations(sdk_server, trace_id)
    o = got[name]
    assert o["type"] == as_type.upper()
    assert o["input"] == {"q": as_type} and o["output"] == {"a": as_type}
    assert o["metadata"]["kind"] == as_type
    assert o["level"] == "WARNING" and o["statusMessage"] == f"{as_type} warned"
    event = got[f"event-{name}"]
    assert event["type"] == "EVENT" and event["parentObservationId"] == o["id"]
    assert event["input"] == "evt-in"


def test_propagate_attributes_become_trace_fields(sdk_server) -> None:
    langfuse = get_client()
    tag = uuid.uuid4().hex[:8]
    with langfuse.start_as_current_observation(name="request") as root:
        trace_id = root.trace_id
        with propagate_attributes(session_id=f"sess-{tag}", user_id=f"user-{tag}", tags=["a", "b"],
                                  metadata={"tenant": "acme", "plan": "pro"}, version="v7",
                                  trace_name=f"checkout-{tag}"):
            with langfuse.start_as_current_observation(name="step", as_type="tool"):
                pass
    langfuse.flush()
    trace = _trace(sdk_server, trace_id, 2)
    assert trace["name"] == f"checkout-{tag}"
    assert trace["sessionId"] == f"sess-{tag}" and trace["userId"] == f"user-{tag}"
    assert sorted(trace["tags"]) == ["a", "b"] and trace["version"] == "v7"
    assert trace["metadata"]["tenant"] == "acme" and trace["metadata"]["plan"] == "pro"
    listed = sdk_server.get("/api/public/traces", userId=f"user-{tag}").json()
    assert [t["id"] for t in listed["data"]] == [trace_id]
    session = sdk_server.wait_for(f"/api/public/sessions/sess-{tag}").json()
    assert [t["id"] for t in session["traces"]] == [trace_id]


def test_openai_wrapper_chat_stream_tools_embeddings(sdk_server, llm) -> None:
    from langfuse.openai import OpenAI

    client = OpenAI(base_url=llm.base_url, api_key="test-key")
    langfuse = get_client()
    tag = uuid.uuid4().hex[:8]
    with langfuse.start_as_current_observation(name=f"app-{tag}") as root:
        trace_id = root.trace_id
        chat = client.chat.completions.create(model="gpt-4o", name="chat", messages=[
            {"role": "user", "content": "hello there"}], temperature=0.3)
        assert chat.choices[0].message.content == "echo: hello there"
        stream = client.chat.completions.create(model="gpt-4o", name="stream", stream=True,
                                                stream_options={"include_usage": True},
                                                messages=[{"role": "user", "content": "count to three"}])
        text = "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
        assert text == "echo: count to three"
        tools = [{"type": "function", "function": {"name": "search", "parameters": {
            "type": "object", "properties": {"query": {"type": "string"}}}}}]
        called = client.chat.completions.create(model="gpt-4o", name="tools", tools=tools,
                                                messages=[{"role": "user", "content": "find docs"}])
        assert called.choices[0].message.tool_calls[0].function.name == "search"
        emb = client.embeddings.create(model="text-embedding-3-small", name="embed", input="embed me")
        assert len(emb.data[0].embedding) == 8
    langfuse.flush()
    _trace(sdk_server, trace_id, 5)
    obs = _observations(sdk_server, trace_id)
    chat_obs = obs["chat"]
    assert chat_obs["type"] == "GENERATION"
    assert chat_obs["providedModelName"] == "gpt-4o"
    assert chat_obs["modelParameters"]["temperature"] == 0.3
    # OpenAI's raw usage: cached tokens are part of prompt_tokens and counted once.
    usage = chat_obs["usageDetails"]
    assert usage["input_cached_tokens"] == 1
    assert usage["input"] + usage["input_cached_tokens"] + usage["output"] == usage["total"]
    assert chat_obs["costDetails"]["total"] > 0 and chat_obs["totalCost"] == pytest.approx(
        chat_obs["costDetails"]["total"])
    assert chat_obs["output"]["content"] == "echo: hello there"
    assert obs["stream"]["completionStartTime"] is not None
    assert obs["stream"]["output"]["content"] if isinstance(obs["stream"]["output"], dict) else obs["stream"][
        "output"] == "echo: count to three"
    tool_out = json.dumps(obs["tools"]["output"])
    assert "search" in tool_out
    assert obs["embed"]["type"] in ("EMBEDDING", "GENERATION")
    assert obs["embed"]["usageDetails"]["input"] >= 1


def test_scores_of_each_data_type(sdk_server) -> None:
    langfuse = get_client()
    with langfuse.start_as_current_observation(name="scored", as_type="generation") as gen:
        trace_id, obs_id = gen.trace_id, gen.id
    langfuse.create_score(name="accuracy", value=0.87, trace_id=trace_id, observation_id=obs_id, comment="ok")
    langfuse.create_score(name="passed", value=1, data_type="BOOLEAN", trace_id=trace_id)
    langfuse.create_score(name="tone", value="friendly", data_type="CATEGORICAL", trace_id=trace_id)
    langfuse.flush()
    r = sdk_server.wait_for("/api/public/v2/scores", lambda r: r.status_code == 200 and len(r.json()["data"]) == 3,
                            traceId=trace_id)
    scores = {s["name"]: s for s in r.json()["data"]}
    assert scores["accuracy"]["value"] == pytest.approx(0.87) and scores["accuracy"]["dataType"] == "NUMERIC"
    assert scores["accuracy"]["observationId"] == obs_id and scores["accuracy"]["comment"] == "ok"
    assert scores["passed"]["dataType"] == "BOOLEAN" and scores["passed"]["value"] == 1
    assert scores["tone"]["dataType"] == "CATEGORICAL" and scores["tone"]["stringValue"] == "friendly"
    assert all(s["source"] == "API" for s in scores.values())
    trace = _trace(sdk_server, trace_id)
    assert {s["name"] for s in trace["scores"]} == {"accuracy", "passed", "tone"}
