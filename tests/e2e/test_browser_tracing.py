"""Tracing in a real browser: sign up, create a key, send traces with the official SDK, find the
trace in the table (keyboard only), open its tree and an observation, annotate and comment, read
the session as a conversation, share it and open the link with no cookies, switch sharing off, and
check that someone without membership is refused. Screenshots of each page go to
test-artifacts/screenshots/tracing-*.png."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from browser import *  # noqa: F403
from browser import onboard, shot, sign_up
from playwright.sync_api import expect

from conftest import LiveServer
from owlscope.tracing_config.score_configs import create_score_config

pytestmark = pytest.mark.browser
T = "tracing"

TURNS = [
    ("How do I reset my password?", "Open Settings → Security → Reset password. The emailed link is valid for an hour."),
    ("What if I lost access to that email?", "Contact support with your account id and we will verify you."),
    ("Can I turn on two-factor authentication?", "Yes: Settings → Security → Two-factor, then scan the QR code."),
]


@pytest.fixture
def server(make_settings) -> Iterator[LiveServer]:
    """A live server that also runs the worker (the SDK's traces must be ingested)."""
    with LiveServer(make_settings(), run_worker=True) as srv:
        yield srv


def _create_key(page, base: str, project_id: str) -> tuple[str, str]:
    page.goto(f"{base}/project/{project_id}/settings/api-keys")
    page.get_by_placeholder("Note (optional)").fill("browser test")
    page.get_by_role("button", name="Create new API key").click()
    text = page.locator("#env-lines").inner_text()
    public_key = re.search(r'LANGFUSE_PUBLIC_KEY="([^"]+)"', text).group(1)
    secret_key = re.search(r'LANGFUSE_SECRET_KEY="([^"]+)"', text).group(1)
    return public_key, secret_key


def _send_traces(base: str, public_key: str, secret_key: str, tag: str) -> dict[str, list[str]]:
    from langfuse import Langfuse, propagate_attributes

    client = Langfuse(public_key=public_key, secret_key=secret_key, base_url=base, flush_interval=0.2)
    session_id, ids = f"support-{tag}", []
    history = [{"role": "system", "content": "You are a concise support assistant."}]
    for question, answer in TURNS:
        history = [*history, {"role": "user", "content": question}]
        with client.start_as_current_observation(name="support-chat", input={"question": question}) as root:
            with propagate_attributes(session_id=session_id, user_id=f"ada-{tag}", tags=["support"]):
                with client.start_as_current_observation(name="search-docs", as_type="tool",
                                                         input={"query": question}) as tool:
                    tool.update(output=[{"doc": "security.md", "score": 0.92}])
                with client.start_as_current_observation(
                        name="answer-llm", as_type="generation", model="gpt-4o", input=history,
                        model_parameters={"temperature": 0.2}) as gen:
                    gen.update(output={"role": "assistant", "content": answer},
                               usage_details={"input": 180, "output": 42})
            root.update(output={"answer": answer})
            ids.append(root.trace_id)
        time.sleep(0.02)  # turns of a conversation do not start in the same millisecond
        history = [*history, {"role": "assistant", "content": answer}]
    with client.start_as_current_observation(name="nightly-report", input="Summarize yesterday") as root:
        with client.start_as_current_observation(name="report-llm", as_type="generation", model="gpt-4o-mini",
                                                 input="Summarize yesterday") as gen:
            gen.update(level="ERROR", status_message="Rate limited by the provider (429)")
        failing = root.trace_id
    client.flush()  # never shutdown(): the SDK's state is process-wide
    return {"chat": ids, "failing": [failing], "session": [session_id]}


def _wait_for_traces(base: str, auth: tuple[str, str], ids: list[str], observations: int) -> None:
    deadline = time.monotonic() + 30
    for trace_id in ids:
        while True:
            r = httpx.get(f"{base}/api/public/traces/{trace_id}", auth=auth, timeout=10)
            if r.status_code == 200 and len(r.json()["observations"]) >= observations:
                break
            assert time.monotonic() < deadline, f"trace {trace_id} did not arrive: {r.status_code}"
            time.sleep(0.2)


def test_traces_annotation_sharing_and_access(server, new_page) -> None:
    base = server.url
    tag = uuid.uuid4().hex[:6]
    page = new_page()
    sign_up(page, base, email="ada@example.com", name="Ada Lovelace")
    project_id = onboard(page, org="Analytical Engines", project="Support bot")
    public_key, secret_key = _create_key(page, base, project_id)
    create_score_config(server.services.sessions, project_id=project_id,
                        data={"name": "correctness", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1})
    create_score_config(server.services.sessions, project_id=project_id, data={
        "name": "tone", "dataType": "CATEGORICAL",
        "categories": [{"label": "curt", "value": 0}, {"label": "friendly", "value": 1}]})

    sent = _send_traces(base, public_key, secret_key, tag)
    _wait_for_traces(base, (public_key, secret_key), sent["chat"], 3)
    _wait_for_traces(base, (public_key, secret_key), sent["failing"], 2)
    session_id = sent["session"][0]

    # ---- the dashboard and the traces table ---------------------------------------------------
    page.goto(f"{base}/project/{project_id}")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator(".kpi").first).to_contain_text("4")
    page.wait_for_function("document.querySelectorAll('canvas[data-chart]')[0].width > 0")
    shot(page, T, "dashboard")

    page.get_by_label("Main navigation").get_by_role("link", name="Traces").click()
    rows = page.locator("table.table-traces tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.first).to_contain_text("nightly-report")
    expect(rows.first).to_contain_text("Error")
    shot(page, T, "traces")

    # Keyboard only: "/" to search, Enter to apply, ↓ to the first row, Enter to open it.
    page.keyboard.press("/")
    expect(page.get_by_label("Search traces")).to_be_focused()
    page.keyboard.type("support-chat")
    page.keyboard.press("Enter")
    expect(page.locator(".filter-chip")).to_contain_text("Search: support-chat")
    expect(rows).to_have_count(3)
    expect(page).to_have_url(re.compile(r"q=support-chat"))
    shot(page, T, "traces-search")
    page.keyboard.press("Escape")
    page.locator("table.table-traces tbody tr").first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/traces/[0-9a-f]{32}$"))
    last_turn = page.url.rsplit("/", 1)[1]
    turn = sent["chat"].index(last_turn)  # the newest first, unless two turns started in the same ms

    # ---- the trace page -----------------------------------------------------------------------
    tree = page.get_by_label("Observation tree")
    expect(tree.locator(".tree-row")).to_have_count(4)  # the trace, support-chat, search-docs, answer-llm
    expect(page.locator("#detail")).to_contain_text(TURNS[turn][0])
    shot(page, T, "trace", full_page=False)
    tree.get_by_text("answer-llm").click()
    expect(page).to_have_url(re.compile(r"observation="))
    detail = page.locator("#detail")
    expect(detail).to_contain_text("gpt-4o")
    # the system message, the earlier turns and this question
    expect(detail.locator("#io-in-pretty .chat-msg")).to_have_count(2 + 2 * turn)
    expect(detail.locator("#io-out-pretty .chat-assistant")).to_contain_text(TURNS[turn][1])
    expect(detail.locator(".chat-system")).to_contain_text("concise support assistant")
    shot(page, T, "trace-generation", full_page=False)
    detail.get_by_role("button", name="JSON").first.click()
    expect(detail.locator("#io-in-raw")).to_be_visible()
    expect(detail.locator("#io-in-raw")).to_contain_text('"role": "system"')

    # Annotate the trace (back on its root row) and comment on it.
    tree.locator(".tree-root").click()
    expect(page).to_have_url(re.compile(rf"/traces/{last_turn}$"))
    panel = page.locator(".annotate")
    correctness = panel.get_by_role("form", name="correctness")
    correctness.get_by_role("spinbutton").fill("0.8")
    correctness.get_by_role("textbox", name="Comment on correctness").fill("complete and correct")
    correctness.get_by_role("button", name="Save").click()
    expect(panel.locator(".saved-note")).to_contain_text("Saved")
    tone = panel.get_by_role("form", name="tone")
    tone.get_by_role("combobox").select_option("friendly")
    tone.get_by_role("button", name="Save").click()
    expect(panel.locator(".annotate-row.saved")).to_contain_text("tone")
    comment = page.get_by_label("Add a comment")
    comment.fill("Good answer; link the security docs next time.")
    comment.press("Control+Enter")
    expect(page.locator(".comment-list")).to_contain_text("link the security docs")
    expect(page.locator(".comment-list")).to_contain_text("Ada Lovelace")
    shot(page, T, "trace-annotated", full_page=False)

    # The annotation is a score with source ANNOTATION by Ada, visible through the public API.
    deadline = time.monotonic() + 15
    while True:
        scores = httpx.get(f"{base}/api/public/v2/scores", params={"traceId": last_turn},
                           auth=(public_key, secret_key), timeout=10).json()["data"]
        annotations = {s["name"]: s for s in scores if s["source"] == "ANNOTATION"}
        if len(annotations) == 2:
            break
        assert time.monotonic() < deadline, scores
        time.sleep(0.2)
    assert annotations["correctness"]["value"] == 0.8 and annotations["tone"]["stringValue"] == "friendly"
    assert annotations["correctness"]["authorUserId"] and annotations["correctness"]["comment"] == "complete and correct"
    page.reload()
    expect(page.locator(".table-scores")).to_contain_text("correctness")
    expect(page.locator(".table-scores")).to_contain_text("Ada Lovelace")

    # The failing trace shows its error.
    page.goto(f"{base}/project/{project_id}/traces?level=ERROR")
    expect(rows).to_have_count(1)
    rows.first.click()
    page.get_by_label("Observation tree").get_by_text("report-llm").click()
    expect(page.locator("#detail .status-error")).to_contain_text("Rate limited by the provider")
    shot(page, T, "trace-error", full_page=False)

    # ---- the session, shared ------------------------------------------------------------------
    page.get_by_label("Main navigation").get_by_role("link", name="Sessions").click()
    expect(page.locator("table tbody tr")).to_have_count(1)
    shot(page, T, "sessions")
    page.get_by_role("link", name=session_id).click()
    turns = page.locator(".conversation > li")
    expect(turns).to_have_count(3)
    for i, (question, answer) in enumerate(TURNS):
        expect(turns.nth(i)).to_contain_text(question)
        expect(turns.nth(i)).to_contain_text(answer)
    turns.nth(0).locator("summary").click()  # comment on a trace from the session
    turn_comment = turns.nth(0).get_by_label("Add a comment")
    turn_comment.fill("The first answer was the best one.")
    turns.nth(0).get_by_role("button", name="Comment").click()
    expect(turns.nth(0).locator(".comment-list")).to_contain_text("The first answer was the best one.")
    page.get_by_role("button", name="Share").click()
    share_url = page.locator("#share-url").input_value()
    assert share_url.startswith(f"{base}/public/sessions/")
    shot(page, T, "session-shared", full_page=False)
    page.keyboard.press("Escape")
    shot(page, T, "session")

    stranger = new_page()  # a fresh browser context: no cookies
    response = stranger.goto(share_url)
    assert response.status == 200
    expect(stranger.locator(".conversation > li")).to_have_count(3)
    expect(stranger.get_by_text(TURNS[1][1])).to_be_visible()
    expect(stranger.locator(".sidebar")).to_have_count(0)
    expect(stranger.get_by_text("Support bot")).to_have_count(0)
    expect(stranger.get_by_text("The first answer was the best one.")).to_have_count(0)
    shot(stranger, T, "public-session")
    stranger.locator(".conversation > li").nth(0).locator(".turn-name").click()
    expect(stranger.get_by_label("Observation tree").locator(".tree-row")).to_have_count(4)
    stranger.get_by_label("Observation tree").get_by_text("answer-llm").click()
    expect(stranger.locator("#detail")).to_contain_text("gpt-4o")
    shot(stranger, T, "public-trace", full_page=False)

    page.locator("#share-control summary").click()
    page.get_by_role("button", name="Stop sharing").click()
    expect(page.get_by_role("button", name="Share")).to_be_visible()
    assert stranger.goto(share_url).status == 404
    expect(stranger.get_by_role("heading", name="Page not found")).to_be_visible()
    shot(stranger, T, "public-revoked")

    # ---- users and scores ---------------------------------------------------------------------
    page.get_by_label("Main navigation").get_by_role("link", name="Users").click()
    expect(page.locator("table tbody tr")).to_have_count(1)
    shot(page, T, "users")
    page.get_by_role("link", name=f"ada-{tag}").click()
    expect(page.locator("table tbody tr")).to_have_count(3)
    shot(page, T, "user")
    page.get_by_label("Main navigation").get_by_role("link", name="Scores").click()
    expect(page.locator("table tbody tr")).to_have_count(2)
    page.get_by_label("Source").select_option("ANNOTATION")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table tbody tr")).to_have_count(2)
    shot(page, T, "scores")

    # ---- someone without membership is refused ------------------------------------------------
    outsider = new_page()
    sign_up(outsider, base, email="mallory@example.com", name="Mallory")
    onboard(outsider, org="Elsewhere", project="Other")
    response = outsider.goto(f"{base}/project/{project_id}/traces/{last_turn}")
    assert response.status == 404
    expect(outsider.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(outsider.get_by_text(TURNS[turn][0])).to_have_count(0)
    shot(outsider, T, "outsider-refused")

    # Dark mode, for the record.
    dark = new_page(color_scheme="dark")
    sign_in_page = dark
    sign_in_page.goto(f"{base}/auth/sign-in")
    sign_in_page.get_by_label("Email").fill("ada@example.com")
    sign_in_page.get_by_label("Password").fill("correct-horse-battery")
    sign_in_page.get_by_role("button", name="Sign in").click()
    sign_in_page.goto(f"{base}/project/{project_id}/traces/{last_turn}")
    sign_in_page.get_by_label("Observation tree").get_by_text("answer-llm").click()
    expect(sign_in_page.locator("#detail")).to_contain_text("gpt-4o")
    shot(sign_in_page, T, "trace-dark", full_page=False)
