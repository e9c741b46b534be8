"""Annotation queues in a real browser: a reviewer creates a queue, adds five traces from the traces
table (checkboxes and the toolbar), and works through them with the keyboard only (Ctrl+Enter to
complete and go on, `s` to skip, `p` to go back); the scores are then read through
/api/public/v2/scores as ANNOTATION scores by the reviewer. Also: saving an annotation on a trace
page updates its scores table without a reload.

Prints what one item of the review loop costs: keystrokes, and the milliseconds of the requests the
browser makes (the POST that saves and completes, and the next item's page). Screenshots go to
test-artifacts/screenshots/queues-*.png."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from browser import *  # noqa: F403
from browser import onboard, shot, sign_up
from playwright.sync_api import expect

from conftest import LiveServer
from owlscope.auth.keys import create_api_key
from owlscope.ingestion.rows import ObservationEvent, TraceEvent, observations_table, traces_table
from owlscope.storage.oltp.models import User
from owlscope.tracing_config.score_configs import create_score_config

pytestmark = pytest.mark.browser
T = "queues"
QUESTIONS = ["Reset my password?", "Change my email?", "Enable two-factor?", "Delete my account?",
             "Export my data?", "Cancel my plan?"]


@pytest.fixture
def server(make_settings) -> Iterator[LiveServer]:
    with LiveServer(make_settings(), run_worker=True) as srv:
        yield srv


def _seed(srv: LiveServer, project_id: str) -> list[str]:
    now = datetime.now(UTC) - timedelta(minutes=5)
    traces, obs, ids = [], [], []
    for i, q in enumerate(QUESTIONS):
        ts = now + timedelta(seconds=i)
        tid = f"chat-{i + 1}"
        ids.append(tid)
        traces.append(TraceEvent(project_id, tid, ts, timestamp=ts, name="support-chat", input=f'"{q}"',
                                 output='"Here is how."', environment="production"))
        obs.append(ObservationEvent(project_id, f"{tid}-llm", tid, ts, type="GENERATION", name="answer-llm",
                                    start_time=ts, end_time=ts + timedelta(milliseconds=800), model="gpt-4o",
                                    input=f'"{q}"', output='"Here is how."', environment="production"))
    srv.services.olap.insert_arrow("trace_events", traces_table(traces))
    srv.services.olap.insert_arrow("observation_events", observations_table(obs))
    return ids


def _api_key(srv: LiveServer, project_id: str) -> tuple[str, str]:
    with srv.services.sessions() as s, s.begin():
        key, secret = create_api_key(s, project_id=project_id, salt=srv.services.settings.salt or "", note="test")
        return key.public_key, secret


def test_reviewer_works_through_a_queue_with_the_keyboard(server: LiveServer, new_page) -> None:
    base = server.url
    page = new_page()
    sign_up(page, base, email="rita@example.com", name="Rita Reviewer")
    project_id = onboard(page, org="Acme", project="Support")
    project = f"{base}/project/{project_id}"
    trace_ids = _seed(server, project_id)
    sessions = server.services.sessions
    create_score_config(sessions, project_id=project_id,
                        data={"name": "correctness", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1})
    create_score_config(sessions, project_id=project_id, data={
        "name": "manner", "dataType": "CATEGORICAL",
        "categories": [{"label": "rude", "value": 0}, {"label": "neutral", "value": 1},
                       {"label": "friendly", "value": 2}]})
    with sessions() as s:
        reviewer_id = s.query(User).filter_by(email="rita@example.com").one().id

    # a queue with both configs and Rita as reviewer
    page.goto(f"{project}/annotation-queues")
    page.get_by_role("link", name="New queue").first.click()
    page.get_by_label("Name").fill("Support answers")
    page.get_by_label("correctness").check()
    page.get_by_label("manner").check()
    page.get_by_role("button", name="Create queue").click()
    expect(page.locator("h1")).to_have_text("Support answers")
    shot(page, T, "queue-empty")

    # five traces from the traces table
    page.goto(f"{project}/traces")
    for tid in trace_ids[:5]:
        page.locator(f"input[name=trace_id][value='{tid}']").check()
    page.locator("#bulk-add").click()
    expect(page.locator("#trace-bulk-status")).to_contain_text("Added 5 items to Support answers")
    shot(page, T, "traces-bulk-added")

    page.goto(f"{project}/annotation-queues")
    row = page.locator("tr[data-queue='Support answers']")
    expect(row.locator("[data-pending]")).to_have_text("5")
    row.get_by_role("link", name="Support answers").click()
    page.get_by_role("link", name="Start reviewing").click()
    page.wait_for_url(re.compile(r".*/review/[^/]+$"))

    timings: dict[str, list[float]] = {"complete": [], "page": []}

    def timed(request) -> None:
        t = request.timing
        took = t["responseEnd"] if t["responseEnd"] > 0 else 0
        if request.method == "POST" and request.url.endswith("/complete"):
            timings["complete"].append(took)
        elif request.method == "GET" and "/review/" in request.url and request.resource_type == "document":
            timings["page"].append(took)

    page.on("requestfinished", timed)
    loop_ms: list[float] = []
    keys_per_item: list[int] = []

    def score_and_complete(keys_to_complete: tuple[str, ...] = ("Control+Enter",)) -> None:
        keys = 0
        expect(page.locator("[data-review-first]")).to_be_focused()
        page.keyboard.type("0.8")
        keys += 3
        page.keyboard.press("Tab")  # the comment on correctness
        page.keyboard.press("Tab")  # manner
        page.keyboard.type("f")     # "friendly"
        keys += 3
        expect(page.locator("select[name=value]")).to_have_value("friendly")
        position = page.locator("#review-position").inner_text()
        started = time.perf_counter()
        with page.expect_navigation():
            for key in keys_to_complete:
                page.keyboard.press(key)
        keys += len(keys_to_complete)
        page.wait_for_load_state("domcontentloaded")
        loop_ms.append((time.perf_counter() - started) * 1000)
        keys_per_item.append(keys)
        assert page.locator("#review-position").count() == 0 or page.locator("#review-position").inner_text() \
            != position or "Nothing left" in page.content()

    score_and_complete()                      # item 1
    shot(page, T, "review-item-2")
    first_of_two = page.url
    page.keyboard.press("Escape")             # leave the score field, then skip
    with page.expect_navigation():
        page.keyboard.press("s")
    assert page.url != first_of_two
    with page.expect_navigation():            # and back again
        page.keyboard.press("Escape")
        page.keyboard.press("p")
    assert page.url == first_of_two
    for _ in range(3):                        # items 2..4
        score_and_complete()
    score_and_complete(("Escape", "c"))       # item 5: leave the field, then `c`
    expect(page.locator("body")).to_contain_text("Nothing left to review in this queue.")
    expect(page.locator("#count-completed")).to_have_text("5")
    expect(page.locator("#reviewers")).to_contain_text("Rita Reviewer")
    shot(page, T, "queue-done")

    # the scores, through the public API
    auth = _api_key(server, project_id)
    deadline = time.monotonic() + 20
    while True:
        scores = httpx.get(f"{base}/api/public/v2/scores", auth=auth, params={"source": "ANNOTATION", "limit": 50},
                           timeout=10).json()["data"]
        if len(scores) == 10 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(scores) == 10, scores
    assert {s["traceId"] for s in scores} == set(trace_ids[:5])
    assert {s["source"] for s in scores} == {"ANNOTATION"} and {s["authorUserId"] for s in scores} == {reviewer_id}
    assert {(s["value"], s["stringValue"]) for s in scores if s["name"] == "manner"} == {(2, "friendly")}
    assert {s["value"] for s in scores if s["name"] == "correctness"} == {0.8}

    # saving an annotation on a trace page shows up in its scores table at once
    page.goto(f"{project}/traces/{trace_ids[5]}")
    scores_box = page.locator("section[id^='scores-trace-']")
    expect(scores_box).to_contain_text("No scores yet.")
    panel = page.locator("section.annotate")
    panel.locator("form[aria-label='correctness'] input[name=value]").fill("0.3")
    panel.locator("form[aria-label='correctness']").get_by_role("button", name="Save").click()
    expect(scores_box).to_contain_text("correctness")
    expect(scores_box).to_contain_text("0.3")
    expect(scores_box).to_contain_text("Rita Reviewer")

    pages = timings["page"]
    completes = timings["complete"]
    print(f"\nreview loop, {len(loop_ms)} items: {min(keys_per_item)} keystrokes and 0 clicks an item "
          f"(type the number, Tab Tab, a letter for the category, Ctrl+Enter; {max(keys_per_item)} with Esc, c)")
    print(f"  keypress to next item loaded: median {statistics.median(loop_ms):.0f} ms, max {max(loop_ms):.0f} ms")
    if completes:
        print(f"  POST complete (save scores, complete, pick and lock the next): median "
              f"{statistics.median(completes):.0f} ms, max {max(completes):.0f} ms")
    if pages:
        print(f"  GET review page: median {statistics.median(pages):.0f} ms, max {max(pages):.0f} ms")
