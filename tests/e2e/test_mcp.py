"""The MCP server at /api/public/mcp, driven by the official `mcp` client (streamable HTTP) against
a real server on a loopback port: tools listed, traces/observations/sessions/scores read, prompt
versions created and relabelled, datasets listed and items added; auth failures and the scoping of
every tool to the key's project."""

from __future__ import annotations

import base64
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client

from conftest import LiveServer, create_project_key
from support.ingest_http import Api


@pytest.fixture
def two_projects(make_settings):
    srv = LiveServer(make_settings("embedded"), run_worker=True).__enter__()
    try:
        a = Api(srv, create_project_key(srv.services, org_name="o-a", project_name="a"))
        b = Api(srv, create_project_key(srv.services, org_name="o-b", project_name="b"))
        yield a, b
    finally:
        srv.__exit__(None, None, None)


def _basic(api: Api) -> str:
    return "Basic " + base64.b64encode(f"{api.auth[0]}:{api.auth[1]}".encode()).decode()


async def _session_calls(api: Api, calls: list[tuple[str, dict]], *, auth: str | None = None) -> list:
    """Open one MCP session with the key and run the tool calls; returns (isError, value) per call."""
    out = []
    async with streamablehttp_client(f"{api.url}/api/public/mcp", headers={"Authorization": auth or _basic(api)}
                                     ) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            out.append(sorted(t.name for t in tools.tools))
            for name, args in calls:
                result = await session.call_tool(name, args)
                text = result.content[0].text if result.content else ""
                out.append((result.isError, text if result.isError else json.loads(text)))
    return out


def _anyio_run(fn):  # noqa: ANN001, ANN202
    """anyio.run on a thread of its own: an event loop another test left running on this thread
    (the browser tests' Playwright, under xdist) cannot be nested into."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, fn).result()


def _run(api: Api, calls: list[tuple[str, dict]], **kw) -> list:
    return _anyio_run(lambda: _session_calls(api, calls, **kw))


def _seed(api: Api) -> str:
    trace_id = f"mcp-{uuid.uuid4().hex[:8]}"
    ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    api.ingest([
        {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": ts,
         "body": {"id": trace_id, "name": "support-chat", "sessionId": "sess-1", "userId": "u-1", "tags": ["vip"]}},
        {"id": str(uuid.uuid4()), "type": "generation-create", "timestamp": ts,
         "body": {"id": f"{trace_id}-g", "traceId": trace_id, "name": "llm", "startTime": ts, "model": "gpt-4o"}},
        {"id": str(uuid.uuid4()), "type": "score-create", "timestamp": ts,
         "body": {"id": f"{trace_id}-s", "traceId": trace_id, "name": "helpful", "value": 0.9}},
    ])
    api.trace(trace_id, 1)
    api.wait_for("/api/public/v2/scores", lambda r: r.json()["data"], traceId=trace_id)
    return trace_id


def test_mcp_tools_end_to_end(two_projects) -> None:
    a, b = two_projects
    trace_id = _seed(a)
    r = a.post("/api/public/v2/datasets", json={"name": "golden"})
    assert r.status_code == 200, r.text

    results = _run(a, [
        ("search_traces", {"name": "support-chat"}),
        ("get_trace", {"trace_id": trace_id}),
        ("search_observations", {"trace_id": trace_id}),
        ("get_observation", {"observation_id": f"{trace_id}-g"}),
        ("list_sessions", {}),
        ("get_session", {"session_id": "sess-1"}),
        ("search_scores", {"trace_id": trace_id}),
        ("create_prompt_version", {"name": "greet", "prompt": "Hello {{name}}", "labels": ["staging"]}),
        ("create_prompt_version", {"name": "greet", "prompt": "Hi {{name}}"}),
        ("set_prompt_labels", {"name": "greet", "version": 1, "labels": ["production"]}),
        ("get_prompt", {"name": "greet"}),
        ("list_prompts", {}),
        ("list_datasets", {}),
        ("add_dataset_item", {"dataset_name": "golden", "input": {"q": "2+2"}, "expected_output": "4",
                              "source_trace_id": trace_id}),
        ("get_trace", {"trace_id": "no-such-trace"}),
        ("create_prompt_version", {"name": "bad", "prompt": "x", "type": "nonsense"}),
    ])
    tools, calls = results[0], results[1:]
    assert {"search_traces", "get_trace", "search_observations", "get_observation", "list_sessions",
            "get_session", "search_scores", "list_prompts", "get_prompt", "create_prompt_version",
            "set_prompt_labels", "list_datasets", "add_dataset_item"} <= set(tools)
    assert not any(err for err, _ in calls[:-2]), calls
    (_, traces), (_, trace), (_, obs), (_, one_obs), (_, sessions), (_, session), (_, scores) = calls[:7]
    assert [t["id"] for t in traces["data"]] == [trace_id] and traces["data"][0]["tags"] == ["vip"]
    assert trace["id"] == trace_id and trace["observations"][0]["model"] == "gpt-4o"
    assert [o["id"] for o in obs["data"]] == [f"{trace_id}-g"] and one_obs["name"] == "llm"
    assert [s["id"] for s in sessions["data"]] == ["sess-1"] and session["traces"][0]["id"] == trace_id
    assert [s["name"] for s in scores["data"]] == ["helpful"]
    (_, v1), (_, v2), (_, moved), (_, prod), (_, listed), (_, datasets), (_, item) = calls[7:14]
    assert (v1["version"], v2["version"]) == (1, 2) and "production" in moved["labels"]
    assert prod["version"] == 1 and prod["prompt"] == "Hello {{name}}"
    assert [p["name"] for p in listed["data"]] == ["greet"]
    assert [d["name"] for d in datasets["data"]] == ["golden"]
    assert item["input"] == {"q": "2+2"} and item["sourceTraceId"] == trace_id
    assert calls[-2][0] and "not found" in calls[-2][1]
    assert calls[-1][0] and "type" in calls[-1][1]

    # What MCP wrote is what the REST API reads.
    rest = a.get("/api/public/v2/prompts/greet", label="production").json()
    assert rest["version"] == 1 and rest["labels"] == ["staging", "production"]
    assert a.get("/api/public/dataset-items", datasetName="golden").json()["meta"]["totalItems"] == 1

    # Project B's key sees none of A's data and cannot touch A's prompts.
    other = _run(b, [("search_traces", {}), ("get_trace", {"trace_id": trace_id}), ("list_prompts", {}),
                     ("get_prompt", {"name": "greet"}), ("search_scores", {}), ("list_datasets", {}),
                     ("add_dataset_item", {"dataset_name": "golden", "input": "x"})])[1:]
    assert other[0] == (False, other[0][1]) and other[0][1]["data"] == []
    assert other[1][0] and other[2][1]["data"] == [] and other[3][0]
    assert other[4][1]["data"] == [] and other[5][1]["data"] == [] and other[6][0]


def test_mcp_rejects_bad_credentials(two_projects) -> None:
    a, _ = two_projects
    url = f"{a.url}/api/public/mcp"
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"accept": "application/json, text/event-stream"}
    for auth in (None, ("pk-lf-nope", "sk-lf-nope"), (a.auth[0], "wrong")):
        r = httpx.post(url, json=init, auth=auth, headers=headers, timeout=10)
        assert r.status_code == 401, r.text
        assert r.json()["error"] and r.json()["message"]
    assert httpx.post(url, json=init, auth=a.auth, headers=headers, timeout=10).status_code == 200

    async def with_bad_key() -> None:
        with anyio.fail_after(20):
            await _session_calls(a, [], auth="Basic " + base64.b64encode(b"pk-lf-x:sk-lf-y").decode())

    with pytest.raises(BaseException) as info:  # the client surfaces the 401 (inside task group errors)
        _anyio_run(with_bad_key)

    def leaves(exc: BaseException) -> list[BaseException]:
        inner = getattr(exc, "exceptions", None)
        return [x for e in inner for x in leaves(e)] if inner else [exc]

    assert any("401" in str(e) for e in leaves(info.value)), leaves(info.value)
