"""Sessions in the UI: the list (traces, duration, users, cost, tokens, scores), the session page as
a conversation, commenting on a trace from it, environment, time range, empty states, isolation."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from web_tracing_data import QUESTIONS, Site, insert, open_site, seed


@pytest.fixture
def site(make_settings) -> Iterator[Site]:
    with open_site(make_settings) as s:
        seed(s.olap, s.project_id)
        yield s


def _session_ids(page: str) -> list[str]:
    return re.findall(r'<tr data-href="/project/[^/"]+/sessions/([^"]+)"', page)


def _row(page: str, session_id: str) -> str:
    return re.search(r'<tr data-href="[^"]*/sessions/%s".*?</tr>' % re.escape(session_id), page, re.S).group(0)


def test_list_shows_sessions_with_their_totals(site: Site) -> None:
    r = site.owner.get(f"{site.base}/sessions")
    assert r.status_code == 200
    page = html.unescape(r.text)
    assert _session_ids(page) == ["sess-2", "sess-1"]
    row = _row(page, "sess-1")
    # 3 traces over 4m 2s (first start to the last trace's end), alice, 846 tokens, $0.003, a session score
    for text in ('<td class="num">3</td>', "4m 2s", "alice", "846", "$0.003", "resolved", "production"):
        assert text in row, text
    assert "2 sessions" in page


def test_list_follows_environment_and_time_range(site: Site) -> None:
    site.owner.post(f"{site.base}/environment", {"environment": "staging", "next": site.base})
    assert _session_ids(site.owner.get(f"{site.base}/sessions").text) == ["sess-2"]
    site.owner.post(f"{site.base}/environment", {"environment": "", "next": site.base})
    old = datetime.now(UTC) - timedelta(days=20)
    from owlscope.ingestion.rows import TraceEvent

    insert(site.olap, traces=[TraceEvent(site.project_id, "t-old", old, timestamp=old, session_id="sess-old")])
    assert _session_ids(site.owner.get(f"{site.base}/sessions").text) == ["sess-2", "sess-1", "sess-old"]
    assert _session_ids(site.owner.get(f"{site.base}/sessions?range=7d").text) == ["sess-2", "sess-1"]
    r = site.owner.get(f"{site.base}/sessions?range=1h")
    assert "sess-old" not in r.text


def test_empty_states(make_settings) -> None:
    with open_site(make_settings) as site:
        r = site.owner.get(f"{site.base}/sessions")
        assert r.status_code == 200 and "No sessions yet" in r.text and "propagate_attributes" in r.text
        r = site.owner.get(f"{site.base}/sessions?range=24h")
        assert "No sessions match" in r.text


def test_session_page_reads_as_the_conversation(site: Site) -> None:
    r = site.owner.get(f"{site.base}/sessions/sess-1")
    assert r.status_code == 200
    page = html.unescape(r.text)
    conversation = page.split('class="conversation"')[1].split("</ol>\n")[0]
    positions = [conversation.index(q) for q, _ in QUESTIONS]
    assert positions == sorted(positions)  # the turns in order, oldest first
    for _, answer in QUESTIONS:
        assert answer in conversation
    assert conversation.count('class="turn card"') == 3
    assert "$0.003" in page and "4m 2s" in page and "846" in page  # totals
    assert "/traces/t-chat-1" in conversation  # each turn links to its trace
    # Each turn can be commented on and annotated: the panels load lazily for that trace.
    assert "/annotate?kind=trace&id=t-chat-2" in page and "/comments?kind=trace&id=t-chat-2" in page
    # The session itself can be annotated and commented on, and shared.
    aside = page.split('class="session-aside')[1]
    assert "Annotate" in aside and "Comments" in aside and 'name="kind" value="session"' in aside
    assert 'name="kind" value="SESSION"' in page  # the share switch


def test_commenting_on_a_trace_from_the_session_page(site: Site) -> None:
    panel = site.owner.get(f"{site.base}/comments?kind=trace&id=t-chat-2", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and "Add a comment" in panel.text and "<html" not in panel.text
    r = site.owner.post(f"{site.base}/comments", {"kind": "trace", "id": "t-chat-2",
                                                   "content": "The answer should mention support hours."},
                        htmx=True)
    assert r.status_code == 200 and "The answer should mention support hours." in html.unescape(r.text)
    assert "Olive Owner" in r.text
    again = site.owner.get(f"{site.base}/traces/t-chat-2")
    assert "The answer should mention support hours." in html.unescape(again.text)
    # Comment on the session itself (non-htmx form: redirect back with a flash).
    r = site.owner.post(f"{site.base}/comments", {"kind": "session", "id": "sess-1", "content": "Resolved fast.",
                                                   "next": f"{site.base}/sessions/sess-1"})
    assert r.status_code == 303 and r.headers["location"] == f"{site.base}/sessions/sess-1"
    assert "Resolved fast." in site.owner.get(f"{site.base}/sessions/sess-1").text
    # An empty comment is refused inline.
    r = site.owner.post(f"{site.base}/comments", {"kind": "trace", "id": "t-chat-2", "content": "  "}, htmx=True)
    assert r.status_code == 400 and "must not be empty" in r.text


def test_unknown_and_foreign_sessions_are_404(site: Site) -> None:
    from support.web import WebUser

    assert site.owner.get(f"{site.base}/sessions/no-such-session").status_code == 404
    other = WebUser(site.app)
    other.sign_up("other@example.com")
    other_project = other.onboard("Other", "Other")
    seed(site.olap, other_project, prefix="x-")  # also has a "sess-1"
    page = html.unescape(site.owner.get(f"{site.base}/sessions/sess-1").text)
    assert page.count('class="turn card"') == 3 and "x-t-chat" not in page
    assert other.get(f"{site.base}/sessions/sess-1").status_code == 404
    assert site.owner.get(f"{site.base}/comments?kind=session&id=nope").status_code == 404
