"""The traces table at scale: server-side sorts by latency, cost and tokens; full-text search over
input and output (answered with the `idx_fts` text index); the column chooser remembered in a
cookie; saved views; search and sorts of the sessions list. Sorts and search run on both stacks
(chDB, and ClickHouse over HTTP)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from web_tracing_data import Site, insert, open_site, seed, trace_ids_in

from owlscope.ingestion.rows import ObservationEvent, TraceEvent
from owlscope.tracing.model import TRACE_TEXT
from owlscope.tracing.trace_table import TraceFilters, list_trace_table


@pytest.fixture
def site(make_settings) -> Iterator[Site]:
    with open_site(make_settings) as s:
        seed(s.olap, s.project_id)
        yield s


@pytest.fixture
def any_site(make_settings, stack: str) -> Iterator[Site]:
    with open_site(make_settings, stack) as s:
        seed(s.olap, s.project_id)
        yield s


# Seeded: latency t-rag 30s, t-chat-1..3 2.4s each, t-sum 1.1s; cost t-rag 0.0027, t-chat-i 0.0003i+0.0004,
# t-sum 0.00016; tokens t-rag 900, t-sum 860, t-chat-i 121i+40.
@pytest.mark.parametrize(("sort", "expected"), [
    ("latency.desc", ["t-rag", "t-chat-3", "t-chat-2", "t-chat-1", "t-sum"]),
    ("latency.asc", ["t-sum", "t-chat-1", "t-chat-2", "t-chat-3", "t-rag"]),
    ("totalCost.desc", ["t-rag", "t-chat-3", "t-chat-2", "t-chat-1", "t-sum"]),
    ("totalCost.asc", ["t-sum", "t-chat-1", "t-chat-2", "t-chat-3", "t-rag"]),
    ("totalTokens.desc", ["t-rag", "t-sum", "t-chat-3", "t-chat-2", "t-chat-1"]),
    ("totalTokens.asc", ["t-chat-1", "t-chat-2", "t-chat-3", "t-sum", "t-rag"]),
])
def test_sort_by_latency_cost_tokens(any_site: Site, sort: str, expected: list[str]) -> None:
    r = any_site.owner.get(f"{any_site.base}/traces?sort={sort}")
    assert r.status_code == 200
    assert trace_ids_in(r.text) == expected
    assert "5 traces" in r.text


def test_aggregate_sort_pages_with_filters_and_counts_traces_without_observations(site: Site) -> None:
    now = datetime.now(UTC)
    insert(site.olap, traces=[TraceEvent(site.project_id, "t-bare", now, timestamp=now, name="chat-turn")])
    # A filter applies before the order; a trace without observations counts as 0.
    r = site.owner.get(f"{site.base}/traces?sort=totalCost.desc&name=chat-turn")
    assert trace_ids_in(r.text) == ["t-chat-3", "t-chat-2", "t-chat-1", "t-bare"]
    page = list_trace_table(site.olap, site.project_id, TraceFilters(), order_by="latency.desc", limit=2)
    assert [t["id"] for t in page.rows] == ["t-rag", "t-chat-3"] and page.total == 6
    rest = list_trace_table(site.olap, site.project_id, TraceFilters(), order_by="latency.desc", limit=10,
                            cursor=page.next_cursor)
    assert [t["id"] for t in rest.rows] == ["t-chat-2", "t-chat-1", "t-sum", "t-bare"]
    # The header links sort by these columns, most first (the filters kept).
    links = html.unescape(r.text)
    for key in ("latency", "totalTokens"):
        assert f'href="{site.base}/traces?name=chat-turn&sort={key}.desc"' in links
    assert f'href="{site.base}/traces?name=chat-turn&sort=totalCost.asc"' in links  # sorted: flips


def test_full_text_search_over_input_and_output(any_site: Site) -> None:
    base = f"{any_site.base}/traces?search=text&q="
    assert trace_ids_in(any_site.owner.get(base + quote("refund policy")).text) == ["t-rag"]  # an input
    assert trace_ids_in(any_site.owner.get(base + "AUTHENTICATOR").text) == ["t-chat-3"]  # an output, any case
    r = any_site.owner.get(base + "password")
    assert trace_ids_in(r.text) == ["t-chat-1"] and "Full text: password" in r.text
    # The whole phrase must appear, not just its words.
    assert trace_ids_in(any_site.owner.get(base + quote("policy refund")).text) == []
    # Combined with a sort and a filter.
    r = any_site.owner.get(base + "support&sort=totalCost.asc")
    assert r.status_code == 200
    # Ids and names (the default) still search names, not the text.
    assert trace_ids_in(any_site.owner.get(f"{any_site.base}/traces?q=refund").text) == []
    assert trace_ids_in(any_site.owner.get(f"{any_site.base}/traces?q=rag-ans").text) == ["t-rag"]


def test_full_text_search_bad_input_is_4xx(site: Site) -> None:
    r = site.owner.get(f"{site.base}/traces?search=text&q=%E2%80%94%21")
    assert r.status_code == 400 and "at least one word" in html.unescape(r.text)
    assert site.owner.get(f"{site.base}/traces?search=regex&q=x").status_code == 400


def test_search_uses_the_text_index(site: Site) -> None:
    """EXPLAIN indexes=1 on chDB: the search's hasAllTokens condition is answered by `idx_fts`, which
    skips most granules of 20k traces."""
    t0 = datetime.now(UTC) - timedelta(days=1)
    traces = [TraceEvent(site.project_id, f"big-{i:05d}", t0, timestamp=t0 + timedelta(milliseconds=i),
                         name="big", input=json.dumps({"q": f"request number {i} marker{i}"}))
              for i in range(20_000)]
    insert(site.olap, traces=traces)
    site.olap.command("OPTIMIZE TABLE {db}.traces FINAL")
    plan = "\n".join(r[0] for r in site.olap.query(
        "EXPLAIN indexes = 1 SELECT id FROM {db}.traces WHERE project_id = {p:String}"
        f" AND hasAllTokens({TRACE_TEXT}, {{w:Array(String)}})", {"p": site.project_id, "w": ["marker12345"]}))
    skip = plan.split("Name: idx_fts", 1)[1]
    read, total = map(int, re.search(r"Granules: (\d+)/(\d+)", skip).groups())
    assert total >= 3 and read < total, plan
    assert trace_ids_in(site.owner.get(f"{site.base}/traces?search=text&q=marker12345").text) == ["big-12345"]


def _headers(page: str) -> list[str]:
    head = page.split("<thead>", 1)[1].split("</thead>", 1)[0]
    return [re.sub(r"<[^>]+>|[↑↓↕]", "", h).strip() for h in re.findall(r"<th\b.*?</th>", head, re.S)]


def test_column_chooser_is_remembered(site: Site) -> None:
    default = _headers(site.owner.get(f"{site.base}/traces").text)
    assert "Scores" in default and "Level" in default and "Input" not in default
    r = site.owner.get(f"{site.base}/traces?cols=input&cols=output&cols=release&cols=tags")
    assert "owlscope_trace_columns" in r.headers.get("set-cookie", "")
    heads = _headers(r.text)
    assert [h for h in heads if h in ("Input", "Output", "Release", "Tags", "Scores", "Level")] == \
        ["Input", "Output", "Tags", "Release"]
    page = html.unescape(r.text)
    assert "What is our refund policy?" in page and "2024.11" in page
    # Remembered: the next visit without `cols` shows the same columns.
    again = site.owner.get(f"{site.base}/traces?sort=name.asc")
    assert _headers(again.text) == heads
    # An empty choice is a choice too.
    site.owner.get(f"{site.base}/traces?cols=")
    bare = _headers(site.owner.get(f"{site.base}/traces").text)
    assert not {"Scores", "Env", "Level", "Input"} & set(bare) and "Latency" in bare
    # The input preview is cut, not the whole 3000-character input.
    r = site.owner.get(f"{site.base}/traces?cols=input")
    assert "x" * 190 in r.text and "x" * 400 not in r.text


def test_saved_views(site: Site) -> None:
    url = f"{site.base}/traces?sort=totalCost.desc&level=ERROR&cols=input"
    r = site.owner.post(f"{site.base}/traces/views", {"name": "Costly errors", "url": url})
    assert r.status_code == 303 and r.headers["location"] == url
    page = html.unescape(site.owner.get(f"{site.base}/traces").text)
    assert "Costly errors" in page and f'href="{url}"' in page
    # The view is its URL: opening it gives the filters, columns and sort.
    opened = site.owner.get(url)
    assert trace_ids_in(opened.text) == ["t-rag"] and "Input" in _headers(opened.text)
    # The same name replaces; another name adds; both listed.
    site.owner.post(f"{site.base}/traces/views", {"name": "Costly errors", "url": f"{site.base}/traces?sort=latency.desc"})
    site.owner.post(f"{site.base}/traces/views", {"name": "All", "url": f"{site.base}/traces"})
    page = html.unescape(site.owner.get(f"{site.base}/traces").text)
    assert page.count("Costly errors") >= 1 and "sort=latency.desc" in page and url not in page
    # Deleting removes it.
    r = site.owner.post(f"{site.base}/traces/views/delete", {"name": "Costly errors"})
    assert r.status_code == 303
    page = html.unescape(site.owner.get(f"{site.base}/traces").text)
    assert "Costly errors" not in page and ">All<" in page
    # Bad input: another page, no name.
    bad = site.owner.post(f"{site.base}/traces/views", {"name": "x", "url": "https://evil.example/"})
    assert bad.status_code == 400
    assert site.owner.post(f"{site.base}/traces/views", {"name": " ", "url": url}).status_code == 400


def _session_ids(page: str) -> list[str]:
    return re.findall(r'<tr data-href="/project/[^/"]+/sessions/([^"]+)"', page)


def test_sessions_search_and_sorts(any_site: Site) -> None:
    site = any_site
    t = datetime.now(UTC) - timedelta(hours=2)
    insert(site.olap, traces=[TraceEvent(site.project_id, "t-x", t, timestamp=t, session_id="sess-3")],
           observations=[ObservationEvent(site.project_id, "o-x", "t-x", t, type="GENERATION", start_time=t,
                                          end_time=t + timedelta(seconds=10), cost_details={"total": 1.0})])
    b = f"{site.base}/sessions"
    assert _session_ids(site.owner.get(b).text) == ["sess-2", "sess-1", "sess-3"]
    assert _session_ids(site.owner.get(f"{b}?sort=cost.desc").text) == ["sess-3", "sess-1", "sess-2"]
    assert _session_ids(site.owner.get(f"{b}?sort=cost.asc").text) == ["sess-2", "sess-1", "sess-3"]
    assert _session_ids(site.owner.get(f"{b}?sort=duration.desc").text) == ["sess-1", "sess-2", "sess-3"]
    assert _session_ids(site.owner.get(f"{b}?sort=traces.desc").text) == ["sess-1", "sess-3", "sess-2"]
    assert _session_ids(site.owner.get(f"{b}?q=SS-2").text) == ["sess-2"]
    r = site.owner.get(f"{b}?q=sess&sort=cost.desc")
    assert _session_ids(r.text) == ["sess-3", "sess-1", "sess-2"] and "3 sessions" in r.text
    r = site.owner.get(f"{b}?q=nothing-like-it")
    assert r.status_code == 200 and "No session id contains" in html.unescape(r.text)


@pytest.mark.parametrize("version", [4, 11])
def test_text_index_migration_indexes_rows_already_stored_and_runs_again(make_settings, stack, tmp_path,
                                                                         version) -> None:
    """Rows written before 0004 (the token bloom filter) or 0011 (the text index that replaces it)
    are found by the full-text search after it (the index is built for them); the migration's
    statements can run again; on both engines."""
    from owlscope.storage.olap.client import Olap
    from owlscope.storage.olap.migrate import _render, list_migrations, migrate
    from owlscope.tracing.model import search_trace_text

    before = tmp_path / "migrations"
    before.mkdir()
    for m in list_migrations():
        if m.version < version:
            (before / m.path.name).write_text(m.path.read_text())
    o = Olap(make_settings(stack))
    try:
        migrate(o, before)
        t0 = datetime.now(UTC)
        insert(o, traces=[TraceEvent("p-0004", "old", t0, timestamp=t0, input=json.dumps("Kraken sighted")),
                          TraceEvent("p-0004", "other", t0, timestamp=t0, output=json.dumps("calm sea"))])
        assert [m.version for m in migrate(o)][0] == version  # (and the later ones)
        (mv,) = [m for m in list_migrations() if m.version == version]
        for statement in mv.statements():  # idempotent
            o.command(_render(o, statement))
        assert search_trace_text(o, "p-0004", "KRAKEN") == ["old"]
        assert search_trace_text(o, "p-0004", "calm sea") == ["other"]
        assert search_trace_text(o, "p-0004", "kraken sea") == []
        indexes = o.query("SELECT name, type FROM system.data_skipping_indices WHERE database = {d:String}"
                          " AND table = 'traces'", {"d": o.database})
        assert ("idx_fts", "text") in [tuple(r) for r in indexes]
        if version == 11:  # (0004 run again above adds its bloom filter back)
            assert "idx_text" not in [r[0] for r in indexes]
    finally:
        o.command("DROP DATABASE IF EXISTS {db}")
        o.close()
