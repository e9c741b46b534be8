"""Users in the UI: the list (first and last seen, traces, tokens, cost), search, sorting, paging,
environment, and a user's page with their traces and sessions."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from web_tracing_data import Site, bulk, open_site, seed, trace_ids_in


@pytest.fixture
def site(make_settings) -> Iterator[Site]:
    with open_site(make_settings) as s:
        seed(s.olap, s.project_id)
        yield s


def _users(page: str) -> list[str]:
    return re.findall(r'<tr data-href="/project/[^/"]+/users/([^"]+)"', page)


def _row(page: str, user_id: str) -> str:
    return re.search(r'<tr data-href="[^"]*/users/%s".*?</tr>' % re.escape(user_id), page, re.S).group(0)


def test_list_shows_each_user_with_usage(site: Site) -> None:
    r = site.owner.get(f"{site.base}/users")
    assert r.status_code == 200
    page = html.unescape(r.text)
    assert _users(page) == ["bob", "alice"]  # last seen first
    alice = _row(page, "alice")
    assert '<td class="num">3</td>' in alice and "846" in alice and "$0.003" in alice
    bob = _row(page, "bob")
    assert '<td class="num">1</td>' in bob and "900" in bob and "$0.0027" in bob
    assert "2 users" in page


def test_search_sort_and_paging(site: Site) -> None:
    bulk(site.olap, site.project_id, 140)  # users user-0 .. user-6, 20 traces each
    assert _users(site.owner.get(f"{site.base}/users?q=ALI").text) == ["alice"]
    by_traces = _users(site.owner.get(f"{site.base}/users?sort=traces").text)
    assert by_traces[:7] == sorted(by_traces[:7]) and by_traces[-2:] == ["alice", "bob"]
    assert _users(site.owner.get(f"{site.base}/users?sort=userId").text)[:2] == ["alice", "bob"]
    assert _users(site.owner.get(f"{site.base}/users?sort=firstSeen").text)[0] == "bob"
    r = site.owner.get(f"{site.base}/users?q=nobody")
    assert "No users match" in r.text


def test_environment_filters_users(site: Site) -> None:
    site.owner.post(f"{site.base}/environment", {"environment": "staging", "next": site.base})
    assert _users(site.owner.get(f"{site.base}/users").text) == ["bob"]
    assert site.owner.get(f"{site.base}/users/alice").status_code == 404
    site.owner.post(f"{site.base}/environment", {"environment": "production", "next": site.base})
    assert _users(site.owner.get(f"{site.base}/users").text) == ["alice"]


def test_user_page_lists_traces_and_sessions(site: Site) -> None:
    r = site.owner.get(f"{site.base}/users/alice")
    assert r.status_code == 200
    page = html.unescape(r.text)
    assert trace_ids_in(page) == ["t-chat-3", "t-chat-2", "t-chat-1"]
    assert "/sessions/sess-1" in page and "3 traces" in page
    assert "846" in page and "$0.003" in page
    assert "traces?user=alice" in page  # a link to the filtered table


def test_empty_and_unknown(make_settings) -> None:
    with open_site(make_settings) as site:
        r = site.owner.get(f"{site.base}/users")
        assert r.status_code == 200 and "No users yet" in r.text
        assert site.owner.get(f"{site.base}/users/ghost").status_code == 404
