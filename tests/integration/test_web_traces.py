"""The traces table and the trace page, in-process, with data inserted straight into OLAP: filters,
search, sorting, cursor paging, time range, environment, empty states, the tree and the detail pane,
project isolation."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from web_tracing_data import Site, bulk, next_link, open_site, seed, trace_ids_in


@pytest.fixture
def site(stack: str, make_settings) -> Iterator[Site]:
    with open_site(make_settings, stack) as s:
        seed(s.olap, s.project_id)
        yield s


@pytest.fixture
def embedded_site(make_settings) -> Iterator[Site]:
    with open_site(make_settings) as s:
        seed(s.olap, s.project_id)
        yield s


def _row(page: str, trace_id: str) -> str:
    return re.search(r'<tr data-href="[^"]*/traces/%s".*?</tr>' % re.escape(trace_id), page, re.S).group(0)


def _ids(site: Site, query: str = "") -> list[str]:
    r = site.owner.get(f"{site.base}/traces{query}")
    assert r.status_code == 200, r.text[:2000]
    return trace_ids_in(r.text)


def test_table_shows_the_newest_traces_with_their_values(site: Site) -> None:
    r = site.owner.get(f"{site.base}/traces")
    assert r.status_code == 200
    assert trace_ids_in(r.text) == ["t-sum", "t-rag", "t-chat-3", "t-chat-2", "t-chat-1"]
    page = html.unescape(r.text)
    assert "5 traces" in page
    row = _row(page, "t-chat-1")
    # latency 2.40s, tokens 161, cost $0.0007, score chips, tags, environment, level
    for text in ("2.40s", ">161<", "$0.0007", "quality", "0.9", "helpful", "True", "support", "production",
                 "Warning", "alice", "sess-1"):
        assert text in row, text
    rag = _row(page, "t-rag")
    assert "Error" in rag and "staging" in rag and "30.00s" in rag and "$0.0027" in rag


@pytest.mark.parametrize("query, expected", [
    ("?level=ERROR", ["t-rag"]),
    ("?level=WARNING", ["t-chat-3", "t-chat-2", "t-chat-1"]),
    ("?level=DEFAULT", ["t-sum"]),
    ("?level=ERROR&level=WARNING", ["t-rag", "t-chat-3", "t-chat-2", "t-chat-1"]),
    ("?level=ERROR&user=alice", []),
    ("?user=alice", ["t-chat-3", "t-chat-2", "t-chat-1"]),
    ("?user=nobody", []),
    ("?session=sess-2", ["t-rag"]),
    ("?name=summarize", ["t-sum"]),
    ("?tag=support&tag=web", ["t-chat-3", "t-chat-2", "t-chat-1"]),
    ("?tag=batch", ["t-sum"]),
    ("?env=staging", ["t-rag"]),
    ("?release=2024.11", ["t-chat-3", "t-chat-2", "t-chat-1"]),
    ("?version=v3&user=alice", ["t-chat-3", "t-chat-2", "t-chat-1"]),
    ("?score_name=quality&score_op=%3E%3D&score_value=0.5", ["t-chat-1"]),
    ("?score_name=quality&score_op=%3C&score_value=0.5", ["t-chat-2"]),
    ("?q=t-rag", ["t-rag"]),
    ("?q=CHAT", ["t-chat-3", "t-chat-2", "t-chat-1"]),
    ("?q=no-such-thing", []),
])
def test_filters_and_search(embedded_site: Site, query: str, expected: list[str]) -> None:
    assert _ids(embedded_site, query) == expected


def test_filters_show_as_removable_chips_and_empty_result_explains(embedded_site: Site) -> None:
    r = embedded_site.owner.get(f"{embedded_site.base}/traces?user=nobody&tag=support")
    page = html.unescape(r.text)
    assert "No traces match" in page and "Clear all filters" in page
    assert "User: nobody" in page and "Tag: support" in page
    chip = re.search(r'href="([^"]*)"[^>]*aria-label="Remove filter User: nobody"', page).group(1)
    assert "user=" not in chip and "tag=support" in chip


def test_bad_filter_values_are_a_400_page(embedded_site: Site) -> None:
    r = embedded_site.owner.get(f"{embedded_site.base}/traces?score_name=quality&score_value=abc")
    assert r.status_code == 400 and "must be a number" in html.unescape(r.text)
    r = embedded_site.owner.get(f"{embedded_site.base}/traces?range=custom&from=2025-01-02T00:00&to=2025-01-01T00:00")
    assert r.status_code == 400
    r = embedded_site.owner.get(f"{embedded_site.base}/traces?cursor=not-a-cursor")
    assert r.status_code == 400


def test_sorting_by_name_and_user(embedded_site: Site) -> None:
    assert _ids(embedded_site, "?sort=name.asc")[:3] == ["t-chat-1", "t-chat-2", "t-chat-3"]
    assert _ids(embedded_site, "?sort=name.desc")[0] == "t-sum"
    by_user = _ids(embedded_site, "?sort=userId.desc")
    assert by_user[:3] == ["t-rag", "t-chat-3", "t-chat-2"]  # bob, then alice (ties by id, descending)
    assert _ids(embedded_site, "?sort=timestamp.asc")[0] == "t-chat-1"
    # An unknown sort falls back to newest first.
    assert _ids(embedded_site, "?sort=bogus.asc")[0] == "t-sum"


def _walk(site: Site, first: str) -> list[str]:
    seen, url, pages = [], first, 0
    while url:
        r = site.owner.get(url)
        assert r.status_code == 200, r.text[:1000]
        seen += trace_ids_in(r.text)
        url = next_link(r.text)
        pages += 1
        assert pages < 20
    return seen


def test_cursor_paging_walks_every_trace_once_including_ties(embedded_site: Site) -> None:
    site = embedded_site
    tie_start = datetime.now(UTC) - timedelta(days=3)
    ties = bulk(site.olap, site.project_id, 70, start=tie_start, same_second=True, name="tie")
    spread = bulk(site.olap, site.project_id, 45, start=tie_start - timedelta(hours=1), name="spread")
    seen = _walk(site, f"{site.base}/traces")
    expected = ["t-sum", "t-rag", "t-chat-3", "t-chat-2", "t-chat-1", *sorted(ties, reverse=True),
                *reversed(spread)]
    assert seen == expected
    # The total is kept across pages; the page range is shown.
    r = site.owner.get(f"{site.base}/traces")
    second = site.owner.get(next_link(r.text))
    assert "51–100 of 120 traces" in html.unescape(second.text)
    # Another order pages by offset, still every trace once.
    by_name = _walk(site, f"{site.base}/traces?sort=name.asc")
    assert len(by_name) == 120 and len(set(by_name)) == 120
    # Filters stay on while paging.
    tie_only = _walk(site, f"{site.base}/traces?name=tie")
    assert tie_only == sorted(ties, reverse=True)


def test_time_range_presets_and_custom(embedded_site: Site) -> None:
    site = embedded_site
    old = bulk(site.olap, site.project_id, 3, start=datetime.now(UTC) - timedelta(days=10), name="old")
    assert set(old) <= set(_ids(site))
    assert _ids(site, "?range=24h") == ["t-sum", "t-rag", "t-chat-3", "t-chat-2", "t-chat-1"]
    assert _ids(site, "?range=1h")[:2] == ["t-sum", "t-rag"]
    start = (datetime.now(UTC) - timedelta(days=11)).strftime("%Y-%m-%dT%H:%M")
    end = (datetime.now(UTC) - timedelta(days=9)).strftime("%Y-%m-%dT%H:%M")
    assert _ids(site, f"?range=custom&from={start}&to={end}") == list(reversed(old))
    r = site.owner.get(f"{site.base}/traces?range=custom&from={start}&to={end}&user=nobody")
    assert "No traces match" in r.text


def test_environment_selector_filters_the_table(embedded_site: Site) -> None:
    site = embedded_site
    r = site.owner.post(f"{site.base}/environment", {"environment": "staging", "next": f"{site.base}/traces"})
    assert r.status_code == 303
    assert _ids(site) == ["t-rag"]
    # The top bar's choice wins over the page's own environment filter.
    assert _ids(site, "?env=production") == ["t-rag"]
    site.owner.post(f"{site.base}/environment", {"environment": "", "next": site.base})
    assert len(_ids(site)) == 5


def test_empty_project_explains_how_to_send_traces(make_settings) -> None:
    with open_site(make_settings) as site:
        r = site.owner.get(f"{site.base}/traces")
        assert r.status_code == 200 and "No traces yet" in r.text and "How to send traces" in r.text


def test_htmx_refresh_returns_only_the_results(embedded_site: Site) -> None:
    r = embedded_site.owner.get(f"{embedded_site.base}/traces?user=alice",
                                headers={"HX-Request": "true", "HX-Target": "trace-results"})
    assert r.status_code == 200 and "<html" not in r.text and "<table" in r.text
    assert trace_ids_in(r.text) == ["t-chat-3", "t-chat-2", "t-chat-1"]


def test_trace_page_shows_the_tree_and_readable_input_output(site: Site) -> None:
    r = site.owner.get(f"{site.base}/traces/t-chat-2")
    assert r.status_code == 200
    page = html.unescape(r.text)
    tree = page.split('class="tree"')[1].split("</nav>")[0]
    names = re.findall(r'class="tree-name">([^<]+)<', tree)
    assert names == ["chat-turn", "handle-request", "cache-miss", "search-docs", "llm-call"]
    assert re.search(r'data-obs-id="o-gen-2"[^>]*style="--depth: 2"', tree)
    assert "width:" in tree and "left:" in tree  # timeline bars
    assert "And if I no longer have access to that email?" in page  # trace input
    assert '"tenant"' not in page or "tenant" in page
    assert "2.40s" in page and "282" in page and "$0.001" in page
    assert "alice" in page and "sess-1" in page and "2024.11" in page

    gen = html.unescape(site.owner.get(f"{site.base}/traces/t-chat-2?observation=o-gen-2").text)
    detail = gen.split('id="detail"')[1]
    assert 'class="chat"' in detail and "chat-system" in detail and "chat-assistant" in detail
    assert "You are a helpful support assistant." in detail
    assert "gpt-4o" in detail and "support-answer" in detail and "v2" in detail
    assert "temperature" in detail  # model parameters
    assert "1.85s" in detail and "450ms" in detail  # latency, time to first token

    err = html.unescape(site.owner.get(f"{site.base}/traces/t-rag?observation=o-rag-gen").text)
    assert "Timeout from provider after 30s" in err and "status-error" in err

    folded = html.unescape(site.owner.get(f"{site.base}/traces/t-sum").text)
    assert "data-fold" in folded and "Show all 3,000 characters" in folded


def test_observation_pane_loads_with_htmx_and_scores_follow_their_subject(embedded_site: Site) -> None:
    site = embedded_site
    r = site.owner.get(f"{site.base}/traces/t-chat-1/observations/o-gen-1", headers={"HX-Request": "true"})
    assert r.status_code == 200 and "<html" not in r.text
    pane = html.unescape(r.text)
    assert "llm-call" in pane and "tone" in pane and "friendly" in pane
    assert "quality" not in pane  # a trace score, not this observation's
    trace_pane = html.unescape(site.owner.get(f"{site.base}/traces/t-chat-1/overview",
                                              headers={"HX-Request": "true"}).text)
    assert "quality" in trace_pane and "helpful" in trace_pane and "friendly" not in trace_pane
    # Without htmx the partial URL leads to the page.
    r = site.owner.get(f"{site.base}/traces/t-chat-1/observations/o-gen-1")
    assert r.status_code == 303 and r.headers["location"].endswith("/traces/t-chat-1?observation=o-gen-1")
    assert site.owner.get(f"{site.base}/traces/t-chat-1?observation=nope").status_code == 404


def test_another_projects_trace_is_a_404_page(site: Site) -> None:
    from support.web import WebUser

    other = WebUser(site.app)
    other.sign_up("other@example.com")
    other_project = other.onboard("Other org", "Other project")
    seed(site.olap, other_project, prefix="x-")
    # The other project's ids do not exist in this one, and this project's data is not theirs.
    r = site.owner.get(f"{site.base}/traces/x-t-chat-1")
    assert r.status_code == 404 and "Trace not found" in r.text
    assert "x-t-" not in site.owner.get(f"{site.base}/traces").text
    # Another user cannot open this project's pages at all.
    assert other.get(f"{site.base}/traces").status_code == 404
    assert other.get(f"{site.base}/traces/t-chat-1").status_code == 404
    r = other.get(f"/project/{other_project}/traces/t-chat-1")
    assert r.status_code == 404 and "You are a helpful" not in r.text
