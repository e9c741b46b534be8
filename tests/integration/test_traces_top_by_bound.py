"""Traces sorted by total cost / tokens, highest first: the exact threshold top-K of
`traces._top_by_bound` (rank by the sum of the partial rows' own values, merge only the best
candidates) gives the same page as merging every trace, also when partial rows overcount a trace
(an overridden value, a replayed event) and when filters apply; on both engines."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from owlscope.ingestion.rows import ObservationEvent, TraceEvent
from owlscope.storage.olap.client import Olap
from owlscope.storage.olap.migrate import migrate
from owlscope.tracing import traces as traces_mod
from owlscope.tracing.trace_table import TraceFilters, list_trace_table
from read_fixtures import insert

P, OTHER = "proj-top", "proj-other"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


@pytest.fixture(params=["chdb", "http"], name="olap")
def fixture_olap(request: pytest.FixtureRequest, chdb_dir, tmp_path) -> Iterator[Olap]:
    from owlscope.config import load_settings

    url = f"chdb://{chdb_dir}" if request.param == "chdb" else request.getfixturevalue("clickhouse_http_url")
    o = Olap(load_settings(data_dir=tmp_path, clickhouse_url=url), database=f"top_{uuid.uuid4().hex[:10]}")
    migrate(o)
    yield o
    o.command("DROP DATABASE IF EXISTS {db}")
    o.close()


def _gen(project: str, trace: str, obs: str, at: datetime, cost: float, tokens: int) -> ObservationEvent:
    return ObservationEvent(project, obs, trace, at, type="GENERATION", name="llm", start_time=T0, end_time=T0 + timedelta(seconds=1),
                            usage_details={"input": tokens, "total": tokens}, cost_details={"total": cost})


def _load(olap: Olap) -> None:
    traces, obs = [], []
    for i in range(40):  # t-00 .. t-39: cost (i + 1) / 1000, tokens (i + 1) * 10, two observations each
        tid = f"t-{i:02d}"
        env = "langfuse-judge" if i == 38 else "production"
        traces.append(TraceEvent(P, tid, T0, timestamp=T0 + timedelta(seconds=i), name="chat", environment=env))
        obs.append(_gen(P, tid, f"{tid}-a", T0, (i + 1) / 2000, (i + 1) * 5))
        obs.append(_gen(P, tid, f"{tid}-b", T0, (i + 1) / 2000, (i + 1) * 5))
    traces.append(TraceEvent(P, "t-big", T0, timestamp=T0, name="chat"))
    traces.append(TraceEvent(P, "t-dup", T0, timestamp=T0, name="chat"))
    traces.append(TraceEvent(P, "t-bare", T0, timestamp=T0, name="chat"))  # no observations: counts 0
    # t-big's observation first says 100 (and 100k tokens)...
    obs.append(_gen(P, "t-big", "big-1", T0, 100.0, 100_000))
    # ... t-dup's is sent twice with the same value (a replay): two rows, counted once when merged
    obs.append(_gen(P, "t-dup", "dup-1", T0, 0.0301, 301))
    # observations of a trace of another project, and observations without a trace row
    obs.append(_gen(OTHER, "t-other", "o-1", T0, 500.0, 10**6))
    obs.append(_gen(P, "t-orphan", "orphan-1", T0, 400.0, 10**6))
    insert(olap, traces=traces, observations=obs)
    # separate inserts: separate parts, not merged with the first
    insert(olap, observations=[_gen(P, "t-big", "big-1", T0 + timedelta(seconds=5), 0.0005, 5)])
    insert(olap, observations=[_gen(P, "t-dup", "dup-1", T0, 0.0301, 301)])
    parts = olap.query("SELECT count() FROM {db}.observations WHERE project_id = {p:String} AND trace_id = 't-big'",
                       {"p": P})[0][0]
    assert parts == 2  # the overcounting rows are really there, unmerged


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[object]:
    """What each call of traces.<name> (a shortcut that answers None when it cannot) returned."""
    calls: list[object] = []
    real = getattr(traces_mod, name)

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out)
        return out

    monkeypatch.setattr(traces_mod, name, spy)
    return calls


def _page(olap: Olap, order: str, limit: int, **filters) -> list[str]:
    return [r["id"] for r in list_trace_table(olap, P, TraceFilters(**filters), order_by=order, limit=limit).rows]


@pytest.mark.parametrize(("order", "scale"), [("totalCost.desc", 1 / 1000), ("totalTokens.desc", 10)])
def test_top_by_bound_equals_merging_every_trace(olap: Olap, monkeypatch, order: str, scale: float) -> None:
    _load(olap)
    calls = _spy(monkeypatch, "_top_by_bound")
    # two candidates first: t-orphan's and t-big's bounds (400, 100) head the list, so it must widen
    monkeypatch.setattr(traces_mod, "_BOUND_FIRST", 2)
    monkeypatch.setattr(traces_mod, "_BOUND_FACTOR", 0)
    expected = [f"t-{i:02d}" for i in range(39, 29, -1)]
    got = _page(olap, order, 10)
    assert got == expected
    assert calls and calls[-1] is not None  # the shortcut answered
    # t-dup (0.0301 / 301, counted twice in its partial rows) sits between t-30 and t-29
    assert _page(olap, order, 13)[10:] == ["t-dup", "t-29", "t-28"]
    # a filter on the merged trace row applies to the candidates: the internal environment goes
    assert _page(olap, order, 3, hide_internal=True) == ["t-39", "t-37", "t-36"]
    # the same pages when every trace is merged (the shortcut off)
    monkeypatch.setattr(traces_mod, "BOUNDED", {})
    assert _page(olap, order, 10) == expected
    assert _page(olap, order, 13)[10:] == ["t-dup", "t-29", "t-28"]
    assert _page(olap, order, 3, hide_internal=True) == ["t-39", "t-37", "t-36"]


def test_top_by_bound_gives_up_when_the_page_needs_zeros(olap: Olap) -> None:
    """More rows than traces with a positive total: the page ends with the traces at 0 (t-bare), as
    merging every trace orders them."""
    _load(olap)
    page = list_trace_table(olap, P, TraceFilters(), order_by="totalCost.desc", limit=50)
    ids = [r["id"] for r in page.rows]
    assert ids[0] == "t-39" and ids[-1] == "t-bare" and len(ids) == 43 and page.total == 43
    assert "t-orphan" not in ids and "t-other" not in ids
    assert next(r for r in page.rows if r["id"] == "t-big")["totalCost"] == pytest.approx(0.0005)


def test_latency_top_by_bound_equals_merging_every_trace(olap: Olap, monkeypatch) -> None:
    """Latency (last end, else start, minus first start): the bound from the rows' own times is at
    least the merged latency also when a later event moves an end earlier; same pages as merging all."""
    traces, obs = [], []
    for i in range(30):  # l-00 .. l-29: latency i + 1 seconds, two observations each
        tid, st = f"l-{i:02d}", T0 + timedelta(seconds=i)
        traces.append(TraceEvent(P, tid, st, timestamp=st, name="chat",
                                 environment="langfuse-judge" if i == 28 else "production"))
        obs.append(ObservationEvent(P, f"{tid}-a", tid, st, type="SPAN", name="root", start_time=st,
                                    end_time=st + timedelta(seconds=i + 1)))
        obs.append(ObservationEvent(P, f"{tid}-b", tid, st, type="SPAN", name="child",
                                    start_time=st + timedelta(seconds=1), end_time=st + timedelta(seconds=2)))
    # l-long first says its span ended after 500 s; a later event (another part) says 3 s
    traces.append(TraceEvent(P, "l-long", T0, timestamp=T0, name="chat"))
    obs.append(ObservationEvent(P, "long-1", "l-long", T0, type="SPAN", start_time=T0,
                                end_time=T0 + timedelta(seconds=500)))
    traces.append(TraceEvent(P, "l-open", T0, timestamp=T0, name="chat"))  # no end: latency 0
    obs.append(ObservationEvent(P, "open-1", "l-open", T0, type="SPAN", start_time=T0))
    insert(olap, traces=traces, observations=obs)
    insert(olap, observations=[ObservationEvent(P, "long-1", "l-long", T0 + timedelta(seconds=10),
                                                end_time=T0 + timedelta(seconds=3))])
    calls = _spy(monkeypatch, "_top_by_bound")
    monkeypatch.setattr(traces_mod, "_BOUND_FIRST", 2)  # l-long's bound (500 s) heads: it must widen
    monkeypatch.setattr(traces_mod, "_BOUND_FACTOR", 0)
    expected = ["l-29", "l-28", "l-27", "l-26", "l-25"]
    assert _page(olap, "latency.desc", 5) == expected
    assert calls and calls[-1] is not None  # the shortcut answered
    rows = list_trace_table(olap, P, TraceFilters(), order_by="latency.desc", limit=30).rows
    assert next(r for r in rows if r["id"] == "l-long")["latency"] == pytest.approx(3.0)
    assert [r["id"] for r in rows].index("l-long") == 27  # tied with l-02 at 3 s, before it by id
    assert _page(olap, "latency.desc", 3, hide_internal=True) == ["l-29", "l-27", "l-26"]
    monkeypatch.setattr(traces_mod, "BOUNDED", {})
    assert _page(olap, "latency.desc", 5) == expected
    assert [r["id"] for r in list_trace_table(olap, P, TraceFilters(), order_by="latency.desc", limit=30).rows] \
        == [r["id"] for r in rows]
    assert _page(olap, "latency.desc", 3, hide_internal=True) == ["l-29", "l-27", "l-26"]


def test_newest_first_without_internal_environments_on_a_large_project(olap: Olap, monkeypatch) -> None:
    """The traces table's default (newest first, internal environments hidden) on the plan of a large
    project: the newest rows give the candidates, the merged environment is checked on them, and the
    total is every trace less the internal ones, including a trace that became internal later and
    one that stopped being internal."""
    from owlscope.tracing import common as common_module

    _load(olap)  # t-38 is internal
    insert(olap, traces=[TraceEvent(P, "t-39", T0 + timedelta(hours=1), environment="langfuse-eval")])
    insert(olap, traces=[TraceEvent(P, "t-38", T0 + timedelta(hours=1), environment="production")])
    monkeypatch.setattr(common_module, "SMALL_ROWS", -1)
    monkeypatch.setattr(traces_mod, "_FIRST_K", 2)  # widen past the hidden newest trace
    monkeypatch.setattr(traces_mod, "_K_FACTOR", 0)
    calls = _spy(monkeypatch, "_latest_ids")
    page = list_trace_table(olap, P, TraceFilters(hide_internal=True), order_by="timestamp.desc", limit=3)
    assert [r["id"] for r in page.rows] == ["t-38", "t-37", "t-36"]
    assert calls and calls[-1] is not None  # the newest rows gave the page
    assert page.total == 42  # 43 traces, t-39 internal now
    everything = list_trace_table(olap, P, TraceFilters(), order_by="timestamp.desc", limit=3)
    assert [r["id"] for r in everything.rows] == ["t-39", "t-38", "t-37"] and everything.total == 43


def test_ties_at_the_kth_value_take_every_trace_that_reaches_it(olap: Olap, monkeypatch) -> None:
    """Twenty traces at the same cost: the page is the first by id (descending), as merging every
    trace orders ties, and the shortcut settles by taking all the traces whose bound reaches the tie."""
    insert(olap, traces=[TraceEvent(P, f"tie-{i:02d}", T0, timestamp=T0, name="chat") for i in range(20)],
           observations=[_gen(P, f"tie-{i:02d}", f"tie-{i:02d}-o", T0, 0.01, 100) for i in range(20)]
           + [_gen(P, "top", "top-o", T0, 0.02, 200)])
    insert(olap, traces=[TraceEvent(P, "top", T0, timestamp=T0, name="chat")])
    calls = _spy(monkeypatch, "_top_by_bound")
    monkeypatch.setattr(traces_mod, "_BOUND_FIRST", 2)
    monkeypatch.setattr(traces_mod, "_BOUND_FACTOR", 0)
    expected = ["top", "tie-19", "tie-18", "tie-17", "tie-16"]
    assert _page(olap, "totalCost.desc", 5) == expected
    assert calls and calls[-1] is not None
    monkeypatch.setattr(traces_mod, "BOUNDED", {})
    assert _page(olap, "totalCost.desc", 5) == expected


def test_trace_bounds_follow_deletions_and_the_migration_fills_them(olap: Olap) -> None:
    """Deleting traces (and old observations without a trace) deletes their bounds; migration 0008
    run on a store that already holds observations fills the bounds from them."""
    from owlscope.tracing.traces import delete_traces, delete_untraced_before

    _load(olap)
    old = T0 - timedelta(days=10)  # observations of a trace that never arrived, ten days older
    insert(olap, observations=[ObservationEvent(P, "gone-1", "t-gone", old, type="SPAN", start_time=old,
                                                end_time=old + timedelta(seconds=1))])

    def bounded() -> dict[str, float]:
        return {r[0]: float(r[1]) for r in olap.query(
            "SELECT trace_id, cost FROM {db}.trace_bounds FINAL WHERE project_id = {p:String}", {"p": P})}

    before = bounded()
    assert before["t-big"] == pytest.approx(100.0005) and before["t-dup"] == pytest.approx(0.0602)
    delete_traces(olap, P, ["t-big", "t-05"])
    assert "t-gone" in before
    delete_untraced_before(olap, P, (T0 - timedelta(days=5)).strftime("%Y-%m-%d %H:%M:%S.000"))
    after = bounded()
    assert "t-big" not in after and "t-05" not in after and "t-gone" not in after
    assert after == {k: v for k, v in before.items() if k not in ("t-big", "t-05", "t-gone")}
    # the same store before 0008: no table, no view, the migration not recorded
    olap.command("DROP VIEW {db}.trace_bounds_mv")
    olap.command("DROP TABLE {db}.trace_bounds")
    olap.command("DELETE FROM {db}.schema_migrations WHERE version = 8")
    migrate(olap)
    assert bounded() == pytest.approx(after)
    assert _page(olap, "totalCost.desc", 3) == ["t-39", "t-38", "t-37"]


def _pages(olap: Olap, monkeypatch: pytest.MonkeyPatch, order: str) -> list[list[str]]:
    """The first pages (all traces; internal environments hidden), checked against merging every trace."""
    got = [_page(olap, order, 10), _page(olap, order, 3, hide_internal=True)]
    with monkeypatch.context() as m:
        m.setattr(traces_mod, "BOUNDED", {})
        assert got == [_page(olap, order, 10), _page(olap, order, 3, hide_internal=True)]
    return got


@pytest.mark.parametrize("order", ["totalCost.desc", "totalTokens.desc", "latency.desc"])
def test_top_from_rollup_facts_equals_merging_every_trace(olap: Olap, monkeypatch, order: str) -> None:
    """After a rollup refresh the ranking takes each trace's exact value from the stored trace facts;
    the traces whose facts are not current (touched since the refresh by an observation in another
    hour, new in a dirty hour) are ranked by their bounds, and deleted ones drop out: every page
    equals merging every trace, before and after the next refresh."""
    from owlscope.tracing.rollups import refresh_rollups
    from owlscope.tracing.traces import delete_traces

    _load(olap)
    refresh_rollups(olap, P, settle=timedelta(0))
    monkeypatch.setattr(traces_mod, "_BOUND_FIRST", 2)  # few candidates: the ranking decides
    monkeypatch.setattr(traces_mod, "_BOUND_FACTOR", 0)
    calls = _spy(monkeypatch, "fact_values")
    first = _pages(olap, monkeypatch, order)
    assert first[0][0] == ("t-dup" if order == "latency.desc" else "t-39")  # every latency is 1 s: by id
    assert calls and calls[-1] is not None  # ranked from the facts
    # t-05 gets an observation three hours later (its trace hour stays clean, its fact is stale) and
    # t-new appears in a new hour (dirty): both rank first and second by the bounds
    late = T0 + timedelta(hours=3)
    insert(olap, traces=[TraceEvent(P, "t-new", T0 + timedelta(hours=5), timestamp=T0 + timedelta(hours=5), name="chat")],
           observations=[
               ObservationEvent(P, "late-5", "t-05", late, type="GENERATION", name="llm", start_time=late,
                                end_time=late + timedelta(hours=2), usage_details={"input": 9000, "total": 9000},
                                cost_details={"total": 90.0}),
               ObservationEvent(P, "new-1", "t-new", T0 + timedelta(hours=5), type="GENERATION", name="llm",
                                start_time=T0 + timedelta(hours=5), end_time=T0 + timedelta(hours=6),
                                usage_details={"input": 6000, "total": 6000}, cost_details={"total": 60.0})])
    assert _pages(olap, monkeypatch, order)[0][:2] == ["t-05", "t-new"]
    delete_traces(olap, P, ["t-39"])
    after = _pages(olap, monkeypatch, order)
    assert "t-39" not in after[0] and after[0][:2] == ["t-05", "t-new"]
    refresh_rollups(olap, P, settle=timedelta(0))
    assert _pages(olap, monkeypatch, order) == after
    assert calls[-1] is not None


def test_ranking_from_the_facts_of_years_of_hours(olap: Olap, monkeypatch) -> None:
    """The clean hours the facts are taken from are named as ranges that run on over empty hours:
    listed one by one, about three years of hours made a statement longer than the engine takes."""
    from dataclasses import replace

    from owlscope.tracing import rollups
    from owlscope.tracing.rollups import refresh_rollups

    _load(olap)
    refresh_rollups(olap, P, settle=timedelta(0))
    real = rollups.cover

    def years_of_hours(*args, **kwargs):
        cov = real(*args, **kwargs)  # 30,000 earlier hours clean and empty (as after a long history)
        return replace(cov, clean=[cov.clean[0] - timedelta(hours=i) for i in range(30_000, 0, -1)] + cov.clean)

    monkeypatch.setattr(rollups, "cover", years_of_hours)
    monkeypatch.setattr(traces_mod, "_BOUND_FIRST", 2)
    monkeypatch.setattr(traces_mod, "_BOUND_FACTOR", 0)
    calls = _spy(monkeypatch, "fact_values")
    first = _pages(olap, monkeypatch, "totalCost.desc")  # equal to merging every trace
    assert first[0][0] == "t-39" and calls and calls[-1] is not None  # ranked from the facts
