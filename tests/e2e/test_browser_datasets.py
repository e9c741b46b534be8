"""Datasets in a real browser: create with a schema, add and edit items, CSV upload with the column
mapping, archive; the "add to dataset" dialog as the trace pages open it; and a prompt experiment
run end to end from the UI against the local OpenAI-compatible model: progress, then the outputs
in the comparison of two runs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from browser import *  # noqa: F403
from browser import onboard, shot, sign_up
from playwright.sync_api import expect

from conftest import LiveServer
from owlscope.datasets.items import list_items
from owlscope.ingestion.rows import ObservationEvent, TraceEvent, observations_table, traces_table
from support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.browser


def test_dataset_items_and_upload(live_server, new_page) -> None:
    t = "datasets"
    base = live_server.url
    page = new_page()
    sign_up(page, base, email="dee@example.com")
    onboard(page, org="Acme", project="Chatbot")

    page.get_by_label("Main navigation").get_by_role("link", name="Datasets").click()
    expect(page.get_by_text("No datasets yet")).to_be_visible()
    page.get_by_role("link", name="New dataset").first.click()
    page.get_by_label("Name").fill("capitals")
    page.get_by_label("Description (optional)").fill("Capital cities")
    page.get_by_label("Input schema (JSON Schema, optional)").fill('{"type": "object", "required": ["question"]}')
    shot(page, t, "new")
    page.get_by_role("button", name="Create dataset").click()
    expect(page.get_by_role("heading", name="capitals")).to_be_visible()
    expect(page.get_by_text("No items yet")).to_be_visible()

    # one item by hand: the schema refuses a plain string, then accepts an object
    page.get_by_role("link", name="Add item").first.click()
    page.get_by_label("Input").fill("What is the capital of France?")
    page.get_by_label("Expected output").fill("Paris")
    page.get_by_role("button", name="Add item").click()
    expect(page.get_by_role("alert")).to_contain_text("does not match the JSON Schema")
    shot(page, t, "item-error")
    page.get_by_label("Input").fill('{"question": "What is the capital of France?"}')
    page.get_by_role("button", name="Add item").click()
    expect(page.locator("#dataset-items tbody tr")).to_have_count(1)

    # a CSV: choose the file, map the columns, import
    page.get_by_role("link", name="Upload CSV/JSON").click()
    page.get_by_label("File").set_input_files(files=[{
        "name": "capitals.csv", "mimeType": "text/csv",
        "buffer": b"question,answer,region\nCapital of Peru?,Lima,americas\nCapital of Japan?,Tokyo,asia\n"}])
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("has 2 rows and 3 columns")).to_be_visible()
    page.get_by_label("question").select_option("input")
    page.get_by_label("answer").select_option("expectedOutput")
    page.get_by_label("region").select_option("input")
    shot(page, t, "mapping")
    page.get_by_role("button", name="Add 2 items").click()
    expect(page.get_by_role("status")).to_contain_text("Added 2 items from capitals.csv")
    rows = page.locator("#dataset-items tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#dataset-items")).to_contain_text('"region": "asia"')
    shot(page, t, "items")

    # edit one, archive one
    rows.filter(has_text="Capital of Japan?").get_by_role("link", name=re.compile("^Edit item")).click()
    page.get_by_label("Expected output").fill("Tōkyō")
    page.get_by_role("button", name="Save item").click()
    expect(page.locator("#dataset-items")).to_contain_text("Tōkyō")
    rows.filter(has_text="Capital of Peru?").get_by_role("button", name=re.compile("^Archive item")).click()
    expect(page.get_by_role("status")).to_contain_text("archived")
    expect(rows).to_have_count(2)
    page.get_by_label("Show").select_option("archived")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Capital of Peru?")
    shot(page, t, "archived")


def test_add_to_dataset_dialog(live_server, new_page) -> None:
    t = "datasets-dialog"
    base = live_server.url
    page = new_page(bypass_csp=True)
    sign_up(page, base, email="ann@example.com")
    project_id = onboard(page, org="Acme", project="Chatbot")
    now = datetime.now(UTC)
    olap = live_server.services.olap
    olap.insert_arrow("trace_events", traces_table([TraceEvent(
        project_id, "trace-1", now, timestamp=now, name="chat", input=json.dumps({"question": "2+2?"}),
        output=json.dumps("4"))]))
    olap.insert_arrow("observation_events", observations_table([ObservationEvent(
        project_id, "gen-1", "trace-1", now, type="GENERATION", name="llm", start_time=now,
        input=json.dumps({"question": "2+2?"}), output=json.dumps({"role": "assistant", "content": "4"}))]))

    # the button the trace page shows: hx-get the dialog and append it to <body>
    page.goto(f"{base}/project/{project_id}/datasets")
    page.evaluate("""(url) => {
        const b = document.createElement('button');
        b.textContent = 'Add to dataset'; b.className = 'btn btn-secondary';
        b.setAttribute('hx-get', url); b.setAttribute('hx-target', 'body'); b.setAttribute('hx-swap', 'beforeend');
        document.querySelector('main').prepend(b); htmx.process(b);
    }""", f"/project/{project_id}/datasets/add-from-trace?trace_id=trace-1&observation_id=gen-1")
    page.get_by_role("button", name="Add to dataset").click()
    dialog = page.get_by_role("dialog", name="Add to dataset")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Expected output (the output, editable)")).to_have_value(
        '{\n  "role": "assistant",\n  "content": "4"\n}')
    dialog.get_by_role("button", name="Add to dataset").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Choose a dataset, or name a new one")
    dialog.get_by_label("or a new dataset").fill("arithmetic")
    dialog.get_by_label("Expected output (the output, editable)").fill("4")
    shot(page, t, "open")
    dialog.get_by_role("button", name="Add to dataset").click()
    done = page.get_by_role("dialog", name="Add to dataset")
    expect(done.get_by_role("status")).to_contain_text("Added 1 item to dataset arithmetic")
    shot(page, t, "added")
    done.get_by_role("button", name="Done").click()
    expect(page.get_by_role("dialog")).to_have_count(0)

    items, _ = list_items(live_server.services.sessions, project_id=project_id, dataset_name="arithmetic")
    assert [(i["input"], i["expectedOutput"], i["sourceTraceId"], i["sourceObservationId"]) for i in items] == [
        ({"question": "2+2?"}, 4, "trace-1", "gen-1")]
    page.goto(f"{base}/project/{project_id}/datasets")
    page.get_by_role("link", name="arithmetic").click()
    expect(page.get_by_role("link", name="Observation")).to_have_attribute(
        "href", f"/project/{project_id}/traces/trace-1?observation=gen-1")


def wait_for_scores(page, n: int) -> None:
    """Reload the comparison until the evaluator's `n` scores are shown (they arrive after the outputs)."""
    for _ in range(60):
        if page.locator("#compare-table tbody .ds-score").count() >= n:
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator("#compare-table tbody .ds-score")).to_have_count(n)


@pytest.fixture
def worker_server(make_settings) -> Iterator[LiveServer]:
    """A server with its worker: experiments run as queue jobs and their calls are ingested."""
    with LiveServer(make_settings()) as server:
        yield server


def test_ui_experiment_end_to_end(worker_server, new_page) -> None:
    from owlscope.evals.connections import set_default_model, upsert_connection
    from owlscope.evals.evaluators import create_evaluator

    t = "experiment"
    base = worker_server.url
    page = new_page()
    sign_up(page, base, email="eve@example.com")
    project_id = onboard(page, org="Acme", project="Chatbot")

    # a dataset with items
    page.goto(f"{base}/project/{project_id}/datasets/new")
    page.get_by_label("Name").fill("capitals")
    page.get_by_role("button", name="Create dataset").click()
    for question, answer in (("France", "Paris"), ("Peru", "Lima"), ("Japan", "Tokyo")):
        page.get_by_role("link", name="Add item").first.click()
        page.get_by_label("Input").fill(json.dumps({"country": question}))
        page.get_by_label("Expected output").fill(answer)
        page.get_by_role("button", name="Add item").click()
    expect(page.locator("#dataset-items tbody tr")).to_have_count(3)
    dataset_url = page.url.split("?")[0]

    # a prompt with two versions
    for text in ("Capital of {{country}}?", "Name the capital city of {{country}}."):
        page.goto(f"{base}/project/{project_id}/prompts/new?name=geo/capital")
        page.get_by_label("Prompt text").fill(text)
        page.get_by_role("button", name=re.compile("^(Create prompt|Save version)")).click()
        expect(page.get_by_role("status")).to_contain_text("geo/capital")

    with FakeOpenAI() as llm:
        upsert_connection(worker_server.services.sessions, worker_server.services.settings, project_id, {
            "provider": "local-llm", "adapter": "openai", "secretKey": "sk-local", "baseURL": llm.base_url,
            "customModels": ["fake-gpt"]})
        set_default_model(worker_server.services.sessions, project_id, provider="local-llm", model="fake-gpt")
        # an evaluator that only judges what an experiment chooses it for (its filter matches nothing else)
        create_evaluator(worker_server.services, project_id, {
            "name": "concise", "template": "conciseness", "delay_seconds": 1, "score_name": "concise",
            "filter": [{"type": "string", "column": "name", "operator": "=", "value": "not-these"}]})

        def run_experiment(version: str, run_name: str) -> None:
            page.goto(dataset_url)
            page.get_by_role("link", name="Run experiment").click()
            page.get_by_label("Prompt version").select_option(f"geo/capital|{version}")
            expect(page.locator("#variables-check")).to_contain_text("3 of 3")
            expect(page.get_by_label("LLM connection")).to_have_value(re.compile(".+"))  # the only one
            expect(page.get_by_label("Model", exact=True)).to_have_value("fake-gpt")
            page.get_by_label("Run name").fill(run_name)
            page.get_by_label("Concurrent calls").fill("2")
            page.get_by_role("checkbox", name=re.compile("concise")).check()
            if version == "1":
                shot(page, t, "form")
            page.get_by_role("button", name="Start experiment").click()
            expect(page.get_by_role("heading", name=f"Experiment {run_name}")).to_be_visible()
            if version == "1":
                shot(page, t, "progress")
            expect(page.locator("#experiment-state")).to_have_text("Completed", timeout=30_000)
            expect(page.locator("#experiment-progress")).to_contain_text("3 / 3")

        run_experiment("1", "short-question")
        shot(page, t, "completed")
        page.get_by_role("link", name="View results").click()
        table = page.locator("#compare-table")
        expect(table).to_contain_text("echo: Capital of Peru?", timeout=15_000)  # outputs traced and ingested
        wait_for_scores(page, 3)
        expect(page.locator("#compare-table tbody .ds-score").first).to_contain_text("concise")
        shot(page, t, "results")

        run_experiment("2", "full-sentence")
        judged = [r for r in llm.requests if r["body"].get("response_format")]
        assert len(llm.requests) - len(judged) == 6
        assert {r["body"]["model"] for r in llm.requests} == {"fake-gpt"}

        # the runs table, then both runs side by side
        page.goto(dataset_url + "/runs")
        runs = page.locator("#runs-table tbody tr")
        expect(runs).to_have_count(2)
        expect(runs.first).to_contain_text("geo/capital v2")
        page.get_by_label("Select all runs").check()
        page.get_by_role("button", name="Compare selected (2)").click()
        table = page.locator("#compare-table")
        expect(table).to_contain_text("echo: Name the capital city of Japan.", timeout=15_000)
        expect(table).to_contain_text("echo: Capital of Japan?")
        expect(page.locator("td.ds-differs")).to_have_count(6)
        expect(page.get_by_text("outputs differ on 3")).to_be_visible()
        wait_for_scores(page, 6)
        expect(page.locator("#compare-table thead .ds-score")).to_have_count(2)  # each run's average
        shot(page, t, "compare")
