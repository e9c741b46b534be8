"""The playground in a real browser against the local OpenAI-compatible server: a streamed answer
seen arriving token by token, two columns side by side, a tool call answered with its result,
saving a prompt version and a dataset item, and replaying a traced generation and a prompt
version. Screenshots go to test-artifacts/screenshots/playground-*.png."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from browser import *  # noqa: F403
from browser import onboard, shot, sign_up
from playwright.sync_api import expect

from conftest import LiveServer
from owlscope.datasets.items import list_items
from owlscope.evals.connections import upsert_connection
from owlscope.pipeline.accept import accept_events
from owlscope.prompts import parse_create, prompt_store
from owlscope.tracing import get_trace
from support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.browser
T = "playground"
TOOL_SCHEMA = '{"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}'

# Every text the first column's answer showed, recorded in the page as it changes.
WATCH = """() => {
  window.pgSeen = [];
  const out = document.querySelector('[data-pg-column] [data-pg-output]');
  new MutationObserver(() => window.pgSeen.push(out.textContent))
    .observe(out, {childList: true, characterData: true, subtree: true});
}"""


@pytest.fixture
def server(make_settings) -> Iterator[LiveServer]:
    with LiveServer(make_settings(), run_worker=True) as srv:
        yield srv


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def _start(server: LiveServer, llm: FakeOpenAI, page, email: str) -> str:
    sign_up(page, server.url, email=email)
    project_id = onboard(page, org="Lab", project="Bot")
    upsert_connection(server.services.sessions, server.services.settings, project_id, {
        "provider": "local", "adapter": "openai", "secretKey": "sk-test-0123456789", "baseURL": llm.base_url,
        "customModels": ["slow-gpt", "gpt-4o"]})
    return project_id


def _wait_trace(server: LiveServer, project_id: str, trace_id: str) -> dict:
    deadline = time.monotonic() + 30
    while (trace := get_trace(server.services.olap, project_id, trace_id)) is None or not trace["observations"]:
        assert time.monotonic() < deadline, f"trace {trace_id} was not stored"
        time.sleep(0.1)
    return trace


def test_stream_side_by_side_tool_call_and_save(server: LiveServer, llm: FakeOpenAI, new_page) -> None:
    page = new_page()
    project_id = _start(server, llm, page, "play@example.com")
    page.get_by_role("link", name="Playground").click()
    expect(page.get_by_role("heading", name="Playground")).to_be_visible()
    expect(page.get_by_label("Column 1 model")).to_have_value("slow-gpt")

    page.get_by_label("Message 2 content").fill("Tell me about {{city}} today")
    page.get_by_label("Variable city").fill("Paris")
    page.get_by_role("button", name="Compare").click()
    page.get_by_label("Column 2 model").fill("gpt-4o")
    page.get_by_label("Column 2 temperature").fill("0.5")
    page.evaluate(WATCH)
    page.get_by_role("button", name="Run", exact=True).first.click()

    first, second = page.locator("[data-pg-column]").nth(0), page.locator("[data-pg-column]").nth(1)
    expect(first.locator("[data-pg-output]")).to_have_text("echo: Tell me about Paris today", timeout=15_000)
    expect(second.locator("[data-pg-output]")).to_have_text("echo: Tell me about Paris today")
    expect(first).to_have_attribute("data-state", "done")
    seen = page.evaluate("window.pgSeen")
    partial = [s for s in seen if s.startswith("echo:") and s != "echo: Tell me about Paris today"]
    assert len(set(partial)) >= 3, seen  # the answer grew word by word while it streamed
    stats = first.locator("[data-pg-stats]")
    expect(stats).to_contain_text("Latency")
    expect(stats).to_contain_text("Tokens")
    expect(second.locator("[data-pg-stats]")).to_contain_text(re.compile(r"Cost\$\d"))
    sent = {r["body"]["model"]: r["body"] for r in llm.requests}
    assert set(sent) == {"slow-gpt", "gpt-4o"} and sent["gpt-4o"]["temperature"] == 0.5
    shot(page, T, "side-by-side")
    href = first.get_by_role("link", name="View trace").get_attribute("href")
    trace = _wait_trace(server, project_id, href.rsplit("/", 1)[1])
    assert trace["environment"] == "langfuse-playground"

    # A tool: the model calls it, the result goes back as a tool message, the model answers.
    page.get_by_role("button", name="Remove column").nth(1).click()
    page.get_by_role("button", name="Tool", exact=True).click()
    page.get_by_label("Tool 1 name").fill("search")
    page.get_by_label("Tool 1 parameters (JSON schema)").fill(TOOL_SCHEMA)
    page.get_by_role("button", name="Run", exact=True).first.click()
    call = first.locator("[data-pg-call]")
    expect(call).to_contain_text("search")
    expect(call.locator("[data-pg-call-args]")).to_contain_text('"query": "Tell me about Paris today"')
    shot(page, T, "tool-call")
    call.get_by_label("Result of search").fill("3 museums found")
    call.get_by_role("button", name="Add result to messages").click()
    expect(page.get_by_label("Message 4 content")).to_have_value("3 museums found")
    expect(page.get_by_label("Message 4 tool call id")).to_have_value("call_1")
    page.keyboard.press("Control+Enter")
    expect(first.locator("[data-pg-output]")).to_have_text("echo tool: 3 museums found", timeout=15_000)
    assert llm.requests[-1]["body"]["messages"][-1] == {"role": "tool", "content": "3 museums found",
                                                        "tool_call_id": "call_1"}

    # Keep it: a prompt version and a dataset item.
    page.get_by_role("button", name="Save as prompt").click()
    dialog = page.locator("#pg-save-prompt")
    dialog.get_by_label("Prompt name").fill("city/guide")
    dialog.get_by_label("Commit message").fill("tried in the playground")
    dialog.get_by_label("Labels").fill("staging")
    dialog.get_by_role("button", name="Save version").click()
    expect(dialog.get_by_role("link", name="Saved city/guide version 1")).to_be_visible()
    shot(page, T, "saved-prompt")
    saved = prompt_store(server.services).get(project_id, "city/guide", version=1)
    assert saved["prompt"][1]["content"] == "Tell me about {{city}} today"
    assert saved["commitMessage"] == "tried in the playground" and "staging" in saved["labels"]
    assert saved["config"]["model"] == "slow-gpt" and saved["config"]["tools"][0]["function"]["name"] == "search"
    dialog.get_by_role("button", name="Close").click()
    first.get_by_role("button", name="Save as dataset item").click()
    item_dialog = page.locator("#pg-save-item")
    item_dialog.get_by_label("Dataset").fill("city-answers")
    item_dialog.get_by_role("button", name="Save item").click()
    expect(item_dialog.get_by_role("link", name="Saved to city-answers")).to_be_visible()
    items, _ = list_items(server.services.sessions, project_id=project_id, dataset_name="city-answers")
    assert items[0]["input"] == {"city": "Paris"} and items[0]["expectedOutput"] == "echo tool: 3 museums found"


def test_replay_a_generation_and_open_a_prompt(server: LiveServer, llm: FakeOpenAI, new_page) -> None:
    page = new_page()
    project_id = _start(server, llm, page, "replay@example.com")
    trace_id, obs_id = uuid.uuid4().hex, uuid.uuid4().hex
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    accept_events(server.services, project_id=project_id, events=[
        {"id": uuid.uuid4().hex, "type": "trace-create", "timestamp": now, "body": {"id": trace_id, "name": "support"}},
        {"id": uuid.uuid4().hex, "type": "generation-create", "timestamp": now, "body": {
            "id": obs_id, "traceId": trace_id, "name": "answer-llm", "startTime": now, "endTime": now,
            "model": "gpt-4o", "modelParameters": {"temperature": "0.3", "max_tokens": 80},
            "input": {"messages": [{"role": "system", "content": "You are support."},
                                   {"role": "user", "content": "My order is late"}],
                      "tools": [{"type": "function", "function": {"name": "lookup_order", "parameters": {
                          "type": "object", "properties": {"id": {"type": "string"}}}}}]},
            "output": {"role": "assistant", "content": "Sorry to hear that."}}}])
    _wait_trace(server, project_id, trace_id)

    page.goto(f"{server.url}/project/{project_id}/traces/{trace_id}?observation={obs_id}")
    page.get_by_role("link", name="Open in playground").click()
    page.wait_for_url(re.compile(r".*/playground\?observation=.*"))
    expect(page.locator("#pg-source")).to_contain_text("Replaying generation answer-llm")
    expect(page.get_by_label("Message 1 content")).to_have_value("You are support.")
    expect(page.get_by_label("Message 2 content")).to_have_value("My order is late")
    expect(page.get_by_label("Column 1 model")).to_have_value("gpt-4o")
    expect(page.get_by_label("Column 1 temperature")).to_have_value("0.3")
    expect(page.get_by_label("Column 1 max tokens")).to_have_value("80")
    expect(page.get_by_label("Tool 1 name")).to_have_value("lookup_order")
    shot(page, T, "replay")
    page.get_by_label("Column 1 temperature").fill("0.9")  # replay with another parameter
    page.get_by_label("Tool 1 name").locator("xpath=..").get_by_role("button", name="Remove tool").click()
    page.get_by_role("button", name="Run", exact=True).first.click()
    first = page.locator("[data-pg-column]").first
    expect(first.locator("[data-pg-output]")).to_have_text("echo: My order is late", timeout=15_000)
    body = llm.requests[-1]["body"]
    assert body["model"] == "gpt-4o" and body["temperature"] == 0.9 and body["max_tokens"] == 80
    assert "tools" not in body
    href = first.get_by_role("link", name="View trace").get_attribute("href")
    trace = _wait_trace(server, project_id, href.rsplit("/", 1)[1])
    assert trace["observations"][0]["metadata"]["source"]["id"] == obs_id

    # A text prompt version opens as one user message with its variable to fill.
    prompt_store(server.services).create(project_id, parse_create({
        "name": "summarize", "type": "text", "prompt": "Summarize: {{text}}", "config": {"model": "gpt-4o"}}))
    page.goto(f"{server.url}/project/{project_id}/prompts/summarize")
    page.get_by_role("link", name="Open in playground").click()
    expect(page.locator("#pg-source")).to_contain_text("From prompt summarize v1 (text)")
    expect(page.get_by_label("Message 1 content")).to_have_value("Summarize: {{text}}")
    page.get_by_role("button", name="Run", exact=True).first.click()
    expect(first.locator("[data-pg-error]")).to_contain_text("fill in the variable text")
    page.get_by_label("Variable text").fill("a long story")
    page.get_by_role("button", name="Run", exact=True).first.click()
    expect(first.locator("[data-pg-output]")).to_have_text("echo: Summarize: a long story", timeout=15_000)
    shot(page, T, "from-prompt")
