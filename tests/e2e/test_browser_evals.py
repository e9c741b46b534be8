"""LLM-as-a-judge in a real browser: add an LLM connection to the local OpenAI-compatible judge and
test it, set the default evaluation model, create a hallucination evaluator after previewing its
filled prompt on a real trace, send a new trace, and see the completed execution with its score.
Screenshots go to test-artifacts/screenshots/evals-*.png."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from browser import *  # noqa: F403
from browser import onboard, project_id_from_url, shot, sign_up
from playwright.sync_api import expect

from conftest import LiveServer
from owlscope.pipeline.accept import accept_events
from support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.browser
T = "evals"
CONTEXT = "Paris is the capital of France. It lies on the Seine."


@pytest.fixture
def server(make_settings) -> Iterator[LiveServer]:
    """A live server that also runs the worker (traces are ingested and judged)."""
    with LiveServer(make_settings(), run_worker=True) as srv:
        yield srv


def _send_trace(srv: LiveServer, project_id: str, *, question: str, answer: str) -> str:
    trace_id = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    accept_events(srv.services, project_id=project_id, events=[{
        "id": str(uuid.uuid4()), "type": "trace-create", "timestamp": now,
        "body": {"id": trace_id, "name": "rag-answer", "tags": ["rag"], "input": question, "output": answer,
                 "metadata": {"context": CONTEXT}}}])
    return trace_id


def _wait_visible(srv: LiveServer, project_id: str, trace_id: str) -> None:
    deadline = time.monotonic() + 30
    while not srv.services.olap.query(
            "SELECT count() FROM {db}.traces WHERE project_id = {p:String} AND id = {t:String}",
            {"p": project_id, "t": trace_id})[0][0]:
        assert time.monotonic() < deadline, "the trace was not stored"
        time.sleep(0.1)


def test_llm_judge_end_to_end(server: LiveServer, new_page) -> None:
    base = server.url
    page = new_page()
    sign_up(page, base, email="judge@example.com")
    project_id = onboard(page, org="Judges", project="RAG bot")
    assert project_id == project_id_from_url(page.url)

    with FakeOpenAI() as llm:
        # A connection to the local judge, tested from the list.
        page.goto(f"{base}/project/{project_id}/settings")
        page.get_by_role("link", name="LLM connections").click()
        page.get_by_role("link", name="New connection").first.click()
        page.get_by_label("Provider name").fill("local-judge")
        page.get_by_label("Base URL").fill(llm.base_url)
        page.get_by_label("API key").fill("sk-browser-test-0123456789")
        page.get_by_label("Custom model names").fill("gpt-4o-mini")
        shot(page, T, "connection-form")
        page.get_by_role("button", name="Create connection").click()
        expect(page.locator("#llm-connections")).to_contain_text("sk-...6789")
        expect(page.locator("body")).not_to_contain_text("sk-browser-test-0123456789")
        page.get_by_role("button", name="Test connection").click()
        expect(page.locator(".ev-test-result")).to_contain_text("Connection OK")
        shot(page, T, "connection-tested")
        page.get_by_label("Model").fill("gpt-4o-mini")
        page.get_by_role("button", name="Save default model").click()
        expect(page.locator("#default-model")).to_contain_text("local-judge / gpt-4o-mini")
        shot(page, T, "connections")

        # A trace to preview the evaluator on.
        first = _send_trace(server, project_id, question="What is the capital of France?",
                            answer="Paris is the capital of France.")
        _wait_visible(server, project_id, first)

        page.get_by_role("link", name="Evaluators").first.click()
        expect(page.get_by_role("heading", name="Evaluators", exact=True)).to_be_visible()
        shot(page, T, "empty-list")
        page.get_by_role("link", name="New evaluator").first.click()
        page.get_by_label("Name", exact=True).fill("faithfulness")
        expect(page.get_by_label("Template")).to_have_value("hallucination")
        page.get_by_label("Trace name").fill("rag-answer")
        page.get_by_label("Delay (seconds)").fill("0")
        page.get_by_label("Score name").fill("faithful")
        page.get_by_label("JSONPath for context").fill("$.context")
        page.get_by_role("button", name="Preview").click()
        expect(page.locator("#preview-prompt")).to_contain_text("QUESTION:\nWhat is the capital of France?")
        expect(page.locator("#preview-prompt")).to_contain_text(f"CONTEXT:\n{CONTEXT}")
        expect(page.locator("#preview")).to_contain_text(first)
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, T, "form-preview")
        page.get_by_role("button", name="Create evaluator").click()
        page.wait_for_url(re.compile(r".*/evals/[^/]+$"))
        expect(page.get_by_role("heading", name="faithfulness")).to_be_visible()

        # A new trace is judged: a completed execution with its score.
        second = _send_trace(server, project_id, question="Where is Paris?", answer="Paris lies on the Seine.")
        deadline = time.monotonic() + 60
        while True:
            page.reload()
            done = page.locator('#executions tr[data-status="completed"]')
            # The score is readable after the worker's next flush, a moment after completion.
            if done.count() and done.first.get_by_role("link", name="faithful: 1").count():
                break
            assert time.monotonic() < deadline, page.locator("body").inner_text()
            time.sleep(0.5)
        row = page.locator('#executions tr[data-status="completed"]').first
        expect(row).to_contain_text(second[:12])
        expect(row.get_by_role("link", name="faithful: 1")).to_be_visible()  # the judge found it supported
        expect(page.locator("#eval-progress")).to_contain_text("1 completed")
        shot(page, T, "evaluator-executions")

        page.goto(f"{base}/project/{project_id}/evals")
        expect(page.locator("#evaluators")).to_contain_text("faithfulness")
        expect(page.locator("#evaluators")).to_contain_text("1 completed")
        shot(page, T, "list")

        page.get_by_role("link", name="Templates").click()
        shot(page, T, "templates")
        page.get_by_role("link", name="hallucination").first.click()
        expect(page.locator("#template-prompt")).to_contain_text("{{context}}")
        shot(page, T, "template")

        # Observations as the target show their own filter fields.
        page.goto(f"{base}/project/{project_id}/evals/new")
        expect(page.get_by_label("Observation type")).to_be_hidden()
        page.get_by_label("Evaluate").select_option("observation")
        expect(page.get_by_label("Observation type")).to_be_visible()
        expect(page.get_by_label("Object for input")).to_have_value("observation")  # the mapping follows
        expect(page.get_by_label("Model", exact=True)).to_be_visible()  # observation filters: model, level
        expect(page.get_by_label("Level")).to_be_visible()

        # The score name's placeholder follows the chosen template (the value typed stays).
        expect(page.get_by_label("Score name")).to_have_attribute("placeholder", "hallucination")
        page.get_by_label("Template").select_option("relevance")
        expect(page.get_by_label("Score name")).to_have_attribute("placeholder", "relevance")
        page.get_by_label("Score name").fill("on-topic")
        page.get_by_label("Template").select_option("toxicity")
        expect(page.get_by_label("Score name")).to_have_attribute("placeholder", "toxicity")
        expect(page.get_by_label("Score name")).to_have_value("on-topic")

        # Experiment items: datasets instead of trace filters, the item's expected output in the mapping.
        page.get_by_label("Template").select_option("correctness")
        page.get_by_label("Evaluate").select_option("experiment")
        expect(page.get_by_label("Datasets")).to_be_visible()
        expect(page.get_by_label("Trace name")).to_be_hidden()
        expect(page.get_by_label("Object for expected_output")).to_have_value("experiment")
        expect(page.get_by_label("Field for expected_output")).to_have_value("expected_output")
        shot(page, T, "form-experiment")

        # Editing: a change applies from now on; "also run on existing traces" re-scores.
        page.goto(f"{base}/project/{project_id}/evals")
        page.get_by_role("link", name="faithfulness").click()
        page.get_by_role("link", name="Edit").click()
        expect(page.get_by_label("Name", exact=True)).to_have_value("faithfulness")
        expect(page.get_by_label("Trace name")).to_have_value("rag-answer")
        expect(page.get_by_label("JSONPath for context")).to_have_value("$.context")
        page.get_by_label("Sampling rate").fill("0.5")
        page.get_by_label("Also run on existing traces").check()
        shot(page, T, "edit")
        page.get_by_role("button", name="Save changes").click()
        page.wait_for_url(re.compile(r".*/evals/[^/]+$"))
        expect(page.locator("body")).to_contain_text("Running on existing traces again")
        expect(page.locator(".meta-list")).to_contain_text("50%")
        expect(page.locator(".meta-list")).to_contain_text("new and existing traces")
