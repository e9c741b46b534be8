"""Span replay of what the official SDK recorded: generations traced by the langfuse OpenAI
integration (v5) open in the playground with their messages, model, parameters and tools, and
run again through a project LLM connection; the new call is traced under `langfuse-playground`."""

from __future__ import annotations

import uuid

import pytest
from langfuse import get_client

from owlscope.evals.connections import upsert_connection
from owlscope.playground import from_observation, parse_run, stream_run
from support.fake_openai import FakeOpenAI
from support.sdk_reads import read_observations, read_trace

TOOLS = [{"type": "function", "function": {"name": "search", "description": "Search the docs", "parameters": {
    "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}]


@pytest.fixture(scope="module")
def llm():
    with FakeOpenAI() as server:
        yield server


def test_replay_generations_of_the_openai_integration(sdk_server, llm) -> None:
    from langfuse.openai import OpenAI

    client = OpenAI(base_url=llm.base_url, api_key="test-key")
    tag = uuid.uuid4().hex[:8]
    messages = [{"role": "system", "content": "You search."}, {"role": "user", "content": "find the setup guide"}]
    with get_client().start_as_current_observation(name=f"app-{tag}") as root:
        trace_id = root.trace_id
        client.chat.completions.create(model="gpt-4o", name="with-tools", tools=TOOLS, messages=messages,
                                       temperature=0.4, max_tokens=30)
        stream = client.chat.completions.create(model="gpt-4o-mini", name="streamed", stream=True,
                                                messages=messages[1:])
        "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
    get_client().flush()
    read_trace(sdk_server, trace_id, 3)
    obs = read_observations(sdk_server, trace_id)
    project_id = sdk_server.project_id

    state = from_observation(sdk_server.services, project_id, obs["with-tools"]["id"])
    assert state["messages"] == messages
    # The integration records the parameters' defaults too: the replay keeps them all.
    assert state["model"] == {"model": "gpt-4o", "params": {
        "temperature": 0.4, "max_tokens": 30, "top_p": 1, "frequency_penalty": 0, "presence_penalty": 0}}
    assert state["tools"] == [TOOLS[0]["function"]]
    streamed = from_observation(sdk_server.services, project_id, obs["streamed"]["id"])
    assert streamed["messages"] == messages[1:] and streamed["model"]["model"] == "gpt-4o-mini"
    assert streamed["tools"] == []

    upsert_connection(sdk_server.services.sessions, sdk_server.services.settings, project_id, {
        "provider": f"replay-{tag}", "adapter": "openai", "secretKey": "sk-replay-123456", "baseURL": llm.base_url})
    req = parse_run({"messages": state["messages"], "tools": state["tools"], "source": state["source"],
                     "model": {"provider": f"replay-{tag}", **state["model"]}})
    events = list(stream_run(sdk_server.services, project_id, req))
    calls = [e for e in events if e["event"] == "tool_call"]
    assert [(c["name"], c["arguments"]) for c in calls] == [("search", '{"query": "find the setup guide"}')]
    done = events[-1]
    assert done["event"] == "done"
    sent = llm.requests[-1]["body"]
    assert sent["messages"] == messages and sent["temperature"] == 0.4 and sent["max_tokens"] == 30
    assert sent["tools"][0]["function"]["name"] == "search"

    replayed = read_trace(sdk_server, done["trace_id"], 1)
    assert replayed["environment"] == "langfuse-playground"
    gen = replayed["observations"][0]
    assert gen["environment"] == "langfuse-playground" and gen["model"] == "gpt-4o"
    assert gen["metadata"]["source"]["id"] == obs["with-tools"]["id"]
