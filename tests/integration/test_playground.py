"""The playground in-process against the local OpenAI-compatible server: streamed runs (tokens,
usage, cost, latency), a tool call and its result, structured output, Anthropic, bad input as 4xx
JSON, the trace of every call in `langfuse-playground`, opening a prompt version or a traced
generation (span replay), and saving a prompt version or a dataset item."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_web_evals import SECRET, Team, make_team

from owlscope.app import create_app
from owlscope.datasets.items import list_items
from owlscope.datasets.store import get_dataset
from owlscope.pipeline.accept import accept_events
from owlscope.prompts import parse_create, prompt_store
from owlscope.tracing import get_trace
from support.fake_openai import FakeOpenAI

TOOLS = [{"name": "search", "description": "Search the docs",
          "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}]


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def _team(settings: Any, llm: FakeOpenAI) -> Iterator[Team]:
    app = create_app(settings, run_worker=True)
    with TestClient(app):
        t = make_team(app)
        for provider, adapter in (("local", "openai"), ("claude", "anthropic")):
            r = t.users["OWNER"].post(t.url("/settings/llm-connections"), {
                "provider": provider, "adapter": adapter, "base_url": llm.base_url, "api_key": SECRET,
                "custom_models": "gpt-4o, slow-gpt"})
            assert r.status_code == 303, r.text
        yield t


@pytest.fixture
def team(make_settings, llm: FakeOpenAI) -> Iterator[Team]:
    yield from _team(make_settings(), llm)


@pytest.fixture
def stack_team(make_settings, stack: str, llm: FakeOpenAI) -> Iterator[Team]:
    """The same on both stacks: embedded, and PostgreSQL + ClickHouse over HTTP + Redis + S3."""
    yield from _team(make_settings(stack, encryption_key="9a" * 32), llm)


def events_of(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.split("\n\n"):
        name, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        if data:
            out.append((name, json.loads(data)))
    return out


def run(team: Team, body: dict[str, Any], role: str = "MEMBER") -> Any:
    user = team.users[role]
    return user.client.post(team.url("/playground/run"), json=body, headers={"X-CSRF-Token": user.csrf()})


def chat(*messages: tuple[str, str], **extra: Any) -> dict[str, Any]:
    body = {"messages": [{"role": r, "content": c} for r, c in messages],
            "model": {"provider": "local", "model": "gpt-4o", "params": {"temperature": 0.2, "max_tokens": 64}}}
    body.update(extra)
    return body


def wait_trace(team: Team, trace_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        trace = get_trace(team.services.olap, team.project_id, trace_id)
        if trace is not None and trace["observations"] and trace["observations"][0].get("costDetails") is not None:
            return trace
        assert time.monotonic() < deadline, f"trace {trace_id} was not stored"
        time.sleep(0.1)


def test_run_streams_tokens_with_usage_cost_latency_and_is_traced(stack_team: Team, llm: FakeOpenAI) -> None:
    team = stack_team
    r = run(team, chat(("system", "You answer briefly."), ("user", "Tell me about {{city}} in {{season}}"),
                       variables={"city": "Paris", "season": "spring"}))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    events = events_of(r.text)
    deltas = [e["text"] for name, e in events if name == "delta"]
    assert len(deltas) == 7  # word by word, as the provider streamed them
    assert "".join(deltas) == "echo: Tell me about Paris in spring"
    name, done = events[-1]
    assert name == "done"
    assert done["text"] == "echo: Tell me about Paris in spring"
    assert done["usage"]["input"] > 0 and done["usage"]["output"] == 7
    assert done["cost"]["total"] > 0  # priced with the project's price book (gpt-4o)
    assert done["latency_ms"] >= done["ttft_ms"] >= 0
    sent = llm.requests[-1]["body"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 64
    assert sent["messages"][1]["content"] == "Tell me about Paris in spring"

    trace = wait_trace(team, done["trace_id"])
    assert trace["environment"] == "langfuse-playground"
    gen = trace["observations"][0]
    assert gen["id"] == done["observation_id"] and gen["type"] == "GENERATION"
    assert gen["environment"] == "langfuse-playground"
    assert gen["model"] == "gpt-4o" and gen["output"] == "echo: Tell me about Paris in spring"
    assert gen["input"][1]["content"] == "Tell me about Paris in spring"
    assert gen["usageDetails"]["output"] == 7
    assert gen["calculatedTotalCost"] == pytest.approx(done["cost"]["total"])
    assert gen["completionStartTime"] is not None
    assert gen["metadata"]["variables"] == {"city": "Paris", "season": "spring"}


def test_tool_call_and_its_result(team: Team, llm: FakeOpenAI) -> None:
    r = run(team, chat(("user", "find the docs"), tools=TOOLS))
    events = events_of(r.text)
    calls = [e for name, e in events if name == "tool_call"]
    assert calls == [{"id": "call_1", "name": "search", "arguments": json.dumps({"query": "find the docs"})}]
    done = events[-1][1]
    assert done["tool_calls"][0]["function"]["name"] == "search"
    assert done["output"]["tool_calls"][0]["id"] == "call_1"
    assert llm.requests[-1]["body"]["tools"][0]["function"]["parameters"]["required"] == ["query"]

    body = chat(("user", "find the docs"), tools=TOOLS)
    body["messages"] += [{"role": "assistant", "content": "", "tool_calls": done["tool_calls"]},
                         {"role": "tool", "tool_call_id": "call_1", "content": "42 pages found"}]
    events = events_of(run(team, body).text)
    assert events[-1][1]["text"] == "echo tool: 42 pages found"
    sent = llm.requests[-1]["body"]["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_1" and sent[2] == {
        "role": "tool", "content": "42 pages found", "tool_call_id": "call_1"}
    trace = wait_trace(team, done["trace_id"])
    assert trace["observations"][0]["input"]["tools"][0]["function"]["name"] == "search"


def test_structured_output(team: Team, llm: FakeOpenAI) -> None:
    schema = {"type": "object", "properties": {"score": {"type": "number"}, "reasoning": {"type": "string"}},
              "required": ["score", "reasoning"], "additionalProperties": False}
    events = events_of(run(team, chat(("user", "judge this"), output_schema=schema)).text)
    done = events[-1][1]
    assert done["output"] == {"score": 1, "reasoning": "The answer is supported by the provided context."}
    fmt = llm.requests[-1]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == schema


def test_anthropic_connection_streams_calls_tools_and_structures(team: Team, llm: FakeOpenAI) -> None:
    body = chat(("system", "Be brief."), ("user", "hello claude"))
    body["model"] = {"provider": "claude", "model": "claude-3-5-haiku-latest", "params": {"max_tokens": 100}}
    events = events_of(run(team, body).text)
    assert [e["text"] for name, e in events if name == "delta"] == ["echo:", " hello", " claude"]
    assert events[-1][0] == "done", events
    assert events[-1][1]["text"] == "echo: hello claude"
    assert events[-1][1]["usage"] == {"input": 2, "output": 7, "total": 9}  # the system text is not a message
    sent = llm.requests[-1]
    assert sent["path"].endswith("/messages") and sent["body"]["system"] == "Be brief."
    assert sent["body"]["max_tokens"] == 100 and sent["body"]["stream"] is True

    events = events_of(run(team, {**body, "tools": TOOLS}).text)
    calls = [e for name, e in events if name == "tool_call"]
    assert calls == [{"id": "toolu_1", "name": "search", "arguments": json.dumps({"query": "hello claude"})}]
    assert llm.requests[-1]["body"]["tools"][0]["input_schema"] == TOOLS[0]["parameters"]
    body["messages"] += [{"role": "assistant", "content": "", "tool_calls": events[-1][1]["tool_calls"]},
                         {"role": "tool", "tool_call_id": "toolu_1", "content": "found it"}]
    events = events_of(run(team, {**body, "tools": TOOLS}).text)
    assert events[-1][1]["text"] == "echo tool: found it"
    sent = llm.requests[-1]["body"]["messages"]
    assert sent[1]["content"][0] == {"type": "tool_use", "id": "toolu_1", "name": "search",
                                     "input": {"query": "hello claude"}}
    assert sent[2]["content"][0]["tool_use_id"] == "toolu_1"

    schema = {"type": "object", "properties": {"score": {"type": "number"}}}
    events = events_of(run(team, {**chat(("user", "judge")), "model": body["model"], "output_schema": schema}).text)
    assert events[-1][1]["output"] == {"score": 1, "reasoning": "The answer is supported by the provided context."}


def test_provider_errors_are_events_and_traced(team: Team) -> None:
    body = chat(("user", "hi"))
    body["model"]["model"] = "judge-auth"
    events = events_of(run(team, body).text)
    name, err = events[-1]
    assert name == "error" and err["kind"] == "auth" and "authentication failed" in err["message"]
    trace = None  # an unpriced model: wait for the trace, not for its cost
    deadline = time.monotonic() + 30
    while trace is None or not trace["observations"]:
        trace = get_trace(team.services.olap, team.project_id, err["trace_id"])
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert trace["observations"][0]["level"] == "ERROR"
    assert "authentication failed" in trace["observations"][0]["statusMessage"]


@pytest.mark.parametrize(("body", "message"), [
    (chat(("user", "about {{city}}")), "fill in the variable city"),
    (chat(("user", "x"), model={"provider": "nope", "model": "gpt-4o"}), "no LLM connection named 'nope'"),
    (chat(("user", "x"), model={"provider": "local", "model": "gpt-4o", "params": {"temperature": 5}}),
     "temperature must be between 0 and 2"),
    (chat(("user", "x"), model={"provider": "local", "model": "gpt-4o", "params": {"logit_bias": 1}}),
     "unknown model parameter"),
    ({"messages": [{"type": "placeholder", "name": "history"}],
      "model": {"provider": "local", "model": "gpt-4o"}}, "fill in the placeholder history"),
    (chat(("wizard", "x")), "role must be one of"),
    (chat(("user", "x"), tools=[{"name": "a", "parameters": {"type": "string"}}]), "type object"),
    ({"messages": []}, "messages"),
    ([1, 2], "JSON object"),
])
def test_bad_input_is_a_4xx_json_and_calls_nothing(team: Team, llm: FakeOpenAI, body: Any, message: str) -> None:
    r = run(team, body)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"] and r.json()["error"] == "InvalidRequestError"
    assert llm.requests == []


def test_viewers_and_missing_tokens_cannot_run(team: Team, llm: FakeOpenAI) -> None:
    r = run(team, chat(("user", "x")), role="VIEWER")
    assert r.status_code == 403 and r.json()["error"] == "AccessDeniedError"
    assert team.users["VIEWER"].get(team.url("/playground")).status_code == 403
    r = team.users["MEMBER"].client.post(team.url("/playground/run"), content=b"{not json",
                                         headers={"X-CSRF-Token": team.users["MEMBER"].csrf()})
    assert r.status_code == 400 and "JSON" in r.json()["message"]
    r = team.users["MEMBER"].client.post(team.url("/playground/run"), json=chat(("user", "x")))
    assert r.status_code == 403  # no CSRF token
    assert llm.requests == []


def test_placeholders_are_filled(team: Team, llm: FakeOpenAI) -> None:
    body = {"messages": [{"role": "system", "content": "Hi {{name}}"}, {"type": "placeholder", "name": "history"},
                         {"role": "user", "content": "and now?"}],
            "variables": {"name": "Ada"},
            "placeholders": {"history": json.dumps([{"role": "user", "content": "first"},
                                                    {"role": "assistant", "content": "second"}])},
            "model": {"provider": "local", "model": "gpt-4o"}}
    assert events_of(run(team, body).text)[-1][0] == "done"
    assert llm.requests[-1]["body"]["messages"] == [
        {"role": "system", "content": "Hi Ada"}, {"role": "user", "content": "first"},
        {"role": "assistant", "content": "second"}, {"role": "user", "content": "and now?"}]


def boot_state(team: Team, query: str, role: str = "MEMBER") -> dict[str, Any]:
    r = team.users[role].get(team.url(f"/playground{query}"))
    assert r.status_code == 200, r.text
    raw = r.text.split('<script type="application/json" id="pg-boot">', 1)[1].split("</script>", 1)[0]
    return json.loads(raw)


def test_page_lists_connections_and_prompt_links_to_it(team: Team) -> None:
    boot = boot_state(team, "")
    assert [c["provider"] for c in boot["connections"]] == ["claude", "local"]
    assert boot["connections"][1]["models"] == ["gpt-4o", "slow-gpt", "gpt-4o-mini"]
    assert boot["maxColumns"] == 4
    store = prompt_store(team.services)
    store.create(team.project_id, parse_create({
        "name": "support/answer", "type": "chat", "prompt": [
            {"role": "system", "content": "You help with {{product}}."}, {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{question}}"}],
        "config": {"model": "gpt-4o", "temperature": 0.4, "max_tokens": 200,
                   "tools": [{"type": "function", "function": TOOLS[0]}]}}))
    page = team.users["MEMBER"].get(team.url("/prompts/support/answer"))
    assert f'/project/{team.project_id}/playground?prompt=support/answer&version=1' in page.text
    state = boot_state(team, "?prompt=support/answer&version=1")["state"]
    assert state["messages"] == [{"role": "system", "content": "You help with {{product}}."},
                                 {"type": "placeholder", "name": "history"}, {"role": "user", "content": "{{question}}"}]
    assert state["model"] == {"model": "gpt-4o", "params": {"temperature": 0.4, "max_tokens": 200}}
    assert state["tools"] == TOOLS
    assert state["source"] == {"type": "prompt", "name": "support/answer", "version": 1, "promptType": "chat"}
    store.create(team.project_id, parse_create({"name": "plain", "type": "text", "prompt": "Summarize {{text}}"}))
    state = boot_state(team, "?prompt=plain")["state"]
    assert state["messages"] == [{"role": "user", "content": "Summarize {{text}}"}]
    assert team.users["MEMBER"].get(team.url("/playground?prompt=missing")).status_code == 404


def _ingest_generation(team: Team, project_id: str, **body: Any) -> tuple[str, str]:
    trace_id, obs_id = uuid.uuid4().hex, uuid.uuid4().hex
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    accept_events(team.services, project_id=project_id, events=[
        {"id": uuid.uuid4().hex, "type": "trace-create", "timestamp": now, "body": {"id": trace_id, "name": "app"}},
        {"id": uuid.uuid4().hex, "type": "generation-create", "timestamp": now, "body": {
            "id": obs_id, "traceId": trace_id, "name": "chat", "startTime": now, "endTime": now, **body}}])
    deadline = time.monotonic() + 30
    while get_trace(team.services.olap, project_id, trace_id) is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return trace_id, obs_id


def test_replay_a_traced_generation(team: Team, llm: FakeOpenAI) -> None:
    trace_id, obs_id = _ingest_generation(
        team, team.project_id, model="gpt-4o",
        modelParameters={"temperature": "0.3", "max_tokens": 50, "stream": True},
        input={"messages": [{"role": "system", "content": "Be nice."},
                            {"role": "user", "content": [{"type": "text", "text": "What is"},
                                                         {"type": "text", "text": "owlscope?"}]}],
               "tools": [{"type": "function", "function": TOOLS[0]}]},
        output={"role": "assistant", "content": "An LLM platform."})
    page = team.users["MEMBER"].get(team.url(f"/traces/{trace_id}?observation={obs_id}"))
    assert f"/playground?observation={obs_id}" in page.text
    state = boot_state(team, f"?observation={obs_id}")["state"]
    assert state["messages"] == [{"role": "system", "content": "Be nice."},
                                 {"role": "user", "content": "What is\nowlscope?"}]
    assert state["model"] == {"model": "gpt-4o", "params": {"temperature": 0.3, "max_tokens": 50}}
    assert state["tools"] == TOOLS
    assert state["source"]["traceId"] == trace_id
    # Run it again as it was, with the tool removed: the same messages reach the model.
    body = {"messages": state["messages"], "model": {"provider": "local", **state["model"]},
            "source": state["source"]}
    done = events_of(run(team, body).text)[-1][1]
    assert done["text"] == "echo: What is\nowlscope?"
    assert wait_trace(team, done["trace_id"])["observations"][0]["metadata"]["source"]["id"] == obs_id
    # Another project's observation is not found from this one.
    assert team.users["MEMBER"].get(team.url("/playground?observation=nope")).status_code == 404


def test_save_prompt_version_and_dataset_item(team: Team) -> None:
    member = team.users["MEMBER"]
    headers = {"X-CSRF-Token": member.csrf()}
    body = {"name": "greeter", "type": "chat", "commit_message": "from the playground",
            "labels": ["staging"], "messages": [{"role": "system", "content": "Greet {{name}}"},
                                                {"type": "placeholder", "name": "history"}],
            "model": {"provider": "local", "model": "gpt-4o", "params": {"temperature": 0.7}}, "tools": TOOLS}
    r = member.client.post(team.url("/playground/save-prompt"), json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.json()["url"].endswith("/prompts/greeter?version=1")
    saved = prompt_store(team.services).get(team.project_id, "greeter", version=1)
    assert saved["prompt"][1] == {"type": "placeholder", "name": "history"}
    assert saved["commitMessage"] == "from the playground" and set(saved["labels"]) == {"staging", "latest"}
    assert saved["config"]["model"] == "gpt-4o" and saved["config"]["temperature"] == 0.7
    assert saved["config"]["tools"][0]["function"]["name"] == "search"
    r = member.client.post(team.url("/playground/save-prompt"), json={**body, "labels": ["production"]},
                           headers=headers)
    assert r.json()["version"] == 2
    # A text prompt is one message; a chat version of a text prompt is refused with a 400.
    r = member.client.post(team.url("/playground/save-prompt"), json={**body, "type": "text"}, headers=headers)
    assert r.status_code == 400 and "one message" in r.json()["message"]
    r = member.client.post(team.url("/playground/save-prompt"), json={**body, "name": "bad|name"}, headers=headers)
    assert r.status_code == 400

    run_body = chat(("user", "Hello {{name}}"), variables={"name": "Ada"})
    r = member.client.post(team.url("/playground/save-item"), json={
        "dataset": "greetings", "run": run_body, "output": "echo: Hello Ada", "trace_id": "t1"}, headers=headers)
    assert r.status_code == 200, r.text
    ds = get_dataset(team.services.sessions, project_id=team.project_id, name="greetings")
    assert r.json()["datasetId"] == ds["id"]
    items, _meta = list_items(team.services.sessions, project_id=team.project_id, dataset_name="greetings")
    assert [(i["input"], i["expectedOutput"], i["sourceTraceId"]) for i in items] == [
        ({"name": "Ada"}, "echo: Hello Ada", "t1")]
    r = member.client.post(team.url("/playground/save-item"), json={
        "dataset": "greetings", "run": chat(("user", "plain")), "output": {"a": 1}}, headers=headers)
    items, _meta = list_items(team.services.sessions, project_id=team.project_id, dataset_name="greetings")
    assert {json.dumps(i["input"]) for i in items} >= {json.dumps([{"role": "user", "content": "plain"}])}
    r = member.client.post(team.url("/playground/save-item"), json={"dataset": "", "run": run_body}, headers=headers)
    assert r.status_code == 400
