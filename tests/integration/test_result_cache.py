"""Embedded reads kept until the next write (storage/olap/results.py): a repeated read does not go to
the engine, and no write, of any kind or through any `Olap` on the store, is ever hidden by it."""

from __future__ import annotations

import re
import time
import weakref
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from conftest import LiveServer, create_project_key
from owlscope.config import load_settings
from owlscope.ingestion.rows import ObservationEvent, observations_table
from owlscope.storage.olap import results
from owlscope.storage.olap.client import Olap
from owlscope.storage.olap.migrate import migrate
from support.ingest_http import Api

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MERGED = ("SELECT id, argMaxIfMerge(name) AS name, argMaxIfMerge(usage_details) AS usage "
          "FROM {db}.observations WHERE project_id = {p:String} GROUP BY id ORDER BY id")


@pytest.fixture
def olap(make_settings):
    o = Olap(make_settings("embedded"))
    migrate(o)
    yield o
    o.command("DROP DATABASE IF EXISTS {db}")
    o.close()


def put(olap: Olap, oid: str, name: str, *, at: timedelta = timedelta(0), project: str = "p1",
        named: bool = False, trace: str | None = None) -> None:
    """An observation inserted (`named`: the insert names its project and its trace, as ingestion
    does; `trace`: its trace id, default `t-<oid>`)."""
    trace = trace or f"t-{oid}"
    olap.insert_arrow("observation_events", observations_table([
        ObservationEvent(project, oid, trace, T0 + at, type="SPAN", name=name, start_time=T0,
                         usage_details={"input": 3})]), projects=[project] if named else None,
        keys=[trace] if named else None)


@pytest.fixture
def engine_reads(olap: Olap, monkeypatch) -> list[str]:
    """The statements that reached the engine (every other read was answered from memory)."""
    sent: list[str] = []
    run = olap._run

    def counted(sql, params, **kw):
        sent.append(sql)
        return run(sql, params, **kw)

    monkeypatch.setattr(olap, "_run", counted)
    return sent


def test_a_repeated_read_is_answered_from_memory_until_any_write(olap: Olap, engine_reads: list[str]) -> None:
    put(olap, "o1", "first")
    p = {"p": "p1"}
    first = olap.query_dicts(MERGED, p)
    assert [(r["id"], r["name"]) for r in first] == [("o1", "first")]
    assert olap.query_dicts(MERGED, p) == first and olap.query(MERGED, p) == [("o1", "first", {"input": 3})]
    assert len(engine_reads) == 1  # the same statement and parameters again: not sent
    olap.query_dicts(MERGED, {"p": "p2"})  # other parameters are another read
    assert len(engine_reads) == 2

    put(olap, "o1", "second", at=timedelta(seconds=1))  # an insert
    assert [r["name"] for r in olap.query_dicts(MERGED, p)] == ["second"]
    olap.command("DELETE FROM {db}.observations WHERE project_id = 'p1' AND id = 'o1'")  # a statement
    assert olap.query_dicts(MERGED, p) == []
    # a write sent as a query
    olap.query("INSERT INTO {db}.observation_events (project_id, id, trace_id, event_ts, name) "
               "VALUES ('p1', 'o2', 't1', now64(3), 'third')")
    assert [r["name"] for r in olap.query_dicts(MERGED, p)] == ["third"]
    assert len(engine_reads) == 6


def test_every_olap_on_the_store_sees_the_writes_of_the_others(olap: Olap, make_settings) -> None:
    other = Olap(load_settings(data_dir=olap._settings.data_dir, clickhouse_url=olap.url,
                               clickhouse_db=olap.database))
    try:
        put(olap, "o1", "first")
        assert [r[1] for r in olap.query(MERGED, {"p": "p1"})] == ["first"]
        assert [r[1] for r in other.query(MERGED, {"p": "p1"})] == ["first"]
        put(other, "o1", "second", at=timedelta(seconds=1))
        assert [r[1] for r in olap.query(MERGED, {"p": "p1"})] == ["second"]
        other.command("DELETE FROM {db}.observations WHERE project_id = 'p1'")
        assert olap.query(MERGED, {"p": "p1"}) == []
    finally:
        other.close()


def test_what_changes_without_a_write_goes_to_the_engine_every_time(olap: Olap, engine_reads: list[str],
                                                                   tmp_path) -> None:
    clock = "SELECT now64(6)"
    first = olap.query(clock)[0][0]
    time.sleep(0.01)
    assert olap.query(clock)[0][0] > first
    parts = "SELECT count() FROM system.parts WHERE database = {d:String}"
    olap.query(parts, {"d": olap.database})
    olap.query(parts, {"d": olap.database})
    big = "SELECT number FROM numbers(%d)" % (results.MAX_ROWS + 1)
    assert len(olap.query(big)) == results.MAX_ROWS + 1
    olap.query(big)
    assert len(engine_reads) == 6
    # data outside the store, read through a table function, changes without a write to it
    outside = tmp_path / "outside.csv"
    read_outside = "SELECT * FROM file({f:String}, 'CSV', 'n UInt8')"
    outside.write_text("1\n")
    assert olap.query(read_outside, {"f": str(outside)}) == [(1,)]
    outside.write_text("2\n")
    assert olap.query(read_outside, {"f": str(outside)}) == [(2,)]


def test_callers_cannot_change_what_the_next_caller_gets(olap: Olap) -> None:
    put(olap, "o1", "first")
    p = {"p": "p1"}
    mine = olap.query_dicts(MERGED, p)  # the read that filled the cache
    mine[0]["usage"]["input"] = 999
    theirs = olap.query(MERGED, p)  # from memory
    assert theirs == [("o1", "first", {"input": 3})]
    theirs[0][2]["output"] = 1
    assert olap.query_dicts(MERGED, p)[0]["usage"] == {"input": 3}


def test_a_result_read_while_a_write_finished_is_not_kept() -> None:
    cache = results.ResultCache(1 << 20)
    p1 = results.Scope("p1", frozenset({"t", "u"}))
    cases = ((None, None, None), (None, ["p2"], None), (None, ["p2"], ["v"]), (p1, None, None), (p1, ["p1"], None),
             (p1, ["p1"], ["u"]), (p1, ["p1"], ["v", "t"]))
    for scope, projects, tables in cases:
        read_under = cache.generation(scope)
        cache.written(projects, tables)  # a write that can change the read finished while it ran
        cache.put(("q", "{}"), scope, read_under, ("x",), [(1,)], ())
        assert cache.get(("q", "{}")) is None, (scope, projects, tables)
        cache.put(("q", "{}"), scope, cache.generation(scope), ("x",), [(1,)], ())
        assert cache.get(("q", "{}")).rows == [(1,)]
        cache.written()
    # a write of another project, or of other tables of p1, does not keep a read of p1 out
    for projects, tables in ((["p2"], None), (["p2"], ["t"]), (["p1"], ["v"])):
        read_under = cache.generation(p1)
        cache.written(projects, tables)
        cache.put(("q", "{}"), p1, read_under, ("x",), [(1,)], ())
        assert cache.get(("q", "{}")).rows == [(1,)], (projects, tables)
        cache.written()
    small = results.ResultCache(1000)  # the budget: a result larger than it is never kept
    small.put(("q", "{}"), None, small.generation(None), ("x",), [("y" * 2000,)], ())
    assert small.get(("q", "{}")) is None and small.bytes_held == 0


def test_a_write_drops_the_kept_reads_of_its_tables_only_and_leaves_no_key_behind() -> None:
    cache = results.ResultCache(1 << 20)
    scopes = {"t": results.Scope("p1", frozenset({"t"})), "tu": results.Scope("p1", frozenset({"t", "u"})),
              "v": results.Scope("p1", frozenset({"v"})), "p2t": results.Scope("p2", frozenset({"t"})), "none": None}

    def fill() -> None:
        for name, scope in scopes.items():
            cache.put((name, "{}"), scope, cache.generation(scope), ("x",), [(name,)], ())

    def kept() -> set[str]:
        return {name for name in scopes if (name, "{}") in cache._results}

    fill()
    cache.written(["p1"], ["u"])
    assert kept() == {"t", "v", "p2t"}
    fill()
    cache.written(["p1"], ["t", "w"])
    assert kept() == {"v", "p2t"}
    fill()
    cache.written(["p1"])  # a write of p1 in tables not known
    assert kept() == {"p2t"}
    fill()
    cache.written()
    assert kept() == set()
    # what is indexed is exactly what is kept
    fill()
    cache.written(["p2"], ["t"])
    indexed = {key for keys in cache._index.values() for key in keys}
    assert indexed == set(cache._results) == {("t", "{}"), ("tu", "{}"), ("v", "{}")}
    assert cache._index[("p1", "t")] == {("t", "{}"), ("tu", "{}")}


def test_results_pushed_out_by_the_budget_leave_no_key_behind() -> None:
    cache = results.ResultCache(20_000)
    scope = results.Scope("p1", frozenset({"t", "u"}))
    for i in range(500):
        cache.put((f"q{i}", "{}"), scope, cache.generation(scope), ("x",), [("y" * 100,)], ())
    assert 0 < len(cache._index[("p1", "t")]) == len(cache._index[("p1", "u")]) == len(cache._results) < 500


def test_a_read_of_one_project_has_that_scope_only_when_every_table_is_filtered_by_it() -> None:
    p = {"p": "p1", "q": "p2"}
    assert results.read_scope(MERGED, p) == results.Scope("p1", frozenset({"observations"}))
    joined = ("SELECT t.id FROM {db}.traces t JOIN {db}.`observations` o ON o.trace_id = t.id "
              "WHERE t.project_id = {p:String} AND o.project_id = {p:String}")
    assert results.read_scope(joined, p) == results.Scope("p1", frozenset({"traces", "observations"}))
    assert results.read_scope(joined.replace("o.project_id = {p:String}", "1"), p) is None  # a table unfiltered
    assert results.read_scope(joined.replace("o.project_id = {p:String}", "o.project_id = {q:String}"), p) is None
    assert results.read_scope("SELECT count() FROM {db}.traces", p) is None
    assert results.read_scope("SELECT 1 WHERE 'x' IN (SELECT id FROM {db}.traces WHERE project_id = {p:String}) "
                              "AND 1 IN {db}.scores", p) is None  # a table named without FROM or JOIN
    assert results.read_scope(MERGED, {"p": 7}) is None and results.read_scope(MERGED, None) is None


def test_the_tables_a_write_reaches_are_read_from_the_views_with_certainty() -> None:
    creates = [
        "CREATE MATERIALIZED VIEW d.a_mv TO d.a (`x` String) AS SELECT x FROM d.events AS e GROUP BY x",
        "CREATE MATERIALIZED VIEW d.b_mv TO d.`b` (`x` String) AS SELECT x, k FROM d.a ARRAY JOIN ['1', '2'] AS k",
        "CREATE MATERIALIZED VIEW d.c_mv TO d.c (`x` String) AS SELECT x FROM (SELECT x FROM d.events) "
        "LEFT ARRAY JOIN [1] AS k JOIN d.dims AS m ON m.x = x",
    ]
    edges = results.view_edges(creates)
    assert results.reached("events", edges) == {"events", "a", "b", "c"}
    assert results.reached("dims", edges) == {"dims", "c"}
    assert results.reached("a", edges) == {"a", "b"} and results.reached("b", edges) == {"b"}
    # a view whose target or source is not named with its database: nothing is certain
    assert results.view_edges(["CREATE MATERIALIZED VIEW d.x_mv (`x` String) AS SELECT x FROM d.events"]) is None
    assert results.view_edges(["CREATE MATERIALIZED VIEW d.x_mv TO d.x (`x` String) AS SELECT x FROM events"]) is None
    assert results.written_table("INSERT INTO {db}.rollup_hours (a) SELECT 1 FROM {db}.traces") == "rollup_hours"
    assert results.written_table("DELETE FROM {db}.`scores` WHERE 1") == "scores"
    assert results.written_table("OPTIMIZE TABLE {db}.scores") is None


def test_an_insert_drops_the_kept_reads_of_the_tables_its_views_reach(olap: Olap, engine_reads: list[str]) -> None:
    put(olap, "o1", "first")
    p = {"p": "p1"}
    reads = {
        "observations": MERGED,
        "trace_bounds": "SELECT count() FROM {db}.trace_bounds WHERE project_id = {p:String}",  # a view of a view
        "rollup_marks": "SELECT count() FROM {db}.rollup_marks WHERE project_id = {p:String}",
        "scores": "SELECT count() FROM {db}.scores WHERE project_id = {p:String}",
        "rollup_hours": "SELECT count() FROM {db}.rollup_hours WHERE project_id = {p:String}",
        "traces": "SELECT count() FROM {db}.traces WHERE project_id = {p:String}",
    }

    def read_all() -> dict[str, list]:
        engine_reads.clear()
        return {name: olap.query(sql, p) for name, sql in reads.items()}

    before = read_all()
    assert read_all() == before and engine_reads == []
    put(olap, "o2", "second", named=True)  # into observation_events, naming p1
    after = read_all()
    sent = {name for name, sql in reads.items() if olap.sql(sql) in engine_reads}
    assert sent == {"observations", "trace_bounds", "rollup_marks"}
    assert [r[0] for r in after["observations"]] == ["o1", "o2"]
    assert after["trace_bounds"] != before["trace_bounds"] and after["rollup_marks"] != before["rollup_marks"]
    # a statement of p1 that names the table it writes drops the reads of that table only
    olap.command("INSERT INTO {db}.scores (project_id, id, timestamp, event_ts, name, data_type, source, value)"
                 " VALUES ({p:String}, 's1', now64(3), now64(3), 'q', 'NUMERIC', 'API', 1)", p, project="p1")
    read_all()
    assert engine_reads == [olap.sql(reads["scores"])]
    # one that names no table that way drops every kept read of p1
    olap.command("OPTIMIZE TABLE {db}.scores", project="p1")
    read_all()
    assert len(engine_reads) == len(reads)


def test_an_insert_drops_the_reads_of_its_projects_only(olap: Olap, engine_reads: list[str]) -> None:
    put(olap, "o1", "first")
    mine, theirs = {"p": "p1"}, {"p": "p2"}
    unscoped = "SELECT count() FROM {db}.observations"  # every project: no scope
    for _ in range(2):
        olap.query(MERGED, mine), olap.query(MERGED, theirs), olap.query(unscoped)
    assert len(engine_reads) == 3
    put(olap, "o9", "theirs", project="p2", named=True)
    assert olap.query(MERGED, mine) == [("o1", "first", {"input": 3})]  # from memory: p1 was not written
    assert [r[1] for r in olap.query(MERGED, theirs)] == ["theirs"]
    assert olap.query(unscoped) == [(2,)]
    assert len(engine_reads) == 5
    put(olap, "o8", "again", project="p2")  # an insert that does not name its projects drops everything
    assert olap.query(MERGED, mine) == [("o1", "first", {"input": 3})]
    assert len(engine_reads) == 6
    # a statement may write any project: it drops every kept read
    olap.command("DELETE FROM {db}.observations WHERE project_id = 'p1'")
    assert olap.query(MERGED, mine) == []
    assert len(engine_reads) == 7


def test_only_embedded_stores_with_a_budget_keep_reads(olap: Olap, make_settings, monkeypatch) -> None:
    assert Olap(load_settings(clickhouse_url="http://127.0.0.1:1"))._results is None
    off = Olap(make_settings("embedded", chdb_result_cache_mb=0))
    assert off._results is None
    # a client handed out sends what the cache cannot see: the store's cache is off from then on
    # (an `Olap` made on a registry of its own: the other tests' `Olap`s keep their cache)
    monkeypatch.setattr(results, "_caches", weakref.WeakValueDictionary())
    own = Olap(load_settings(data_dir=olap._settings.data_dir, clickhouse_url=olap.url, clickhouse_db=olap.database))
    assert own.result_cache is not olap.result_cache
    sent: list[str] = []
    run = own._run
    monkeypatch.setattr(own, "_run", lambda sql, params: sent.append(sql) or run(sql, params))
    put(own, "o1", "first")
    own.query(MERGED, {"p": "p1"})
    own.query(MERGED, {"p": "p1"})
    assert len(sent) == 1
    own.client  # noqa: B018 - the handing out is the point
    own.query(MERGED, {"p": "p1"})
    own.query(MERGED, {"p": "p1"})
    assert len(sent) == 3
    own.close()


def test_the_api_shows_each_update_of_a_trace_read_before(make_settings) -> None:
    with LiveServer(make_settings("embedded")) as srv:
        api = Api(srv, create_project_key(srv.services))
        ts = "2026-01-01T00:00:00.000Z"
        api.ingest([{"id": "e1", "type": "trace-create", "timestamp": ts, "body": {"id": "t1", "name": "first"}}])
        api.wait_for("/api/public/traces/t1")
        assert api.get("/api/public/traces/t1").json()["name"] == "first"
        assert api.get("/api/public/traces/t1").json()["name"] == "first"  # read again, unchanged
        api.ingest([{"id": "e2", "type": "trace-create", "timestamp": "2026-01-01T00:00:01.000Z",
                     "body": {"id": "t1", "name": "second"}}])
        r = api.wait_for("/api/public/traces/t1", lambda r: r.json().get("name") == "second", timeout=10)
        assert r.json()["name"] == "second"
        assert api.get("/api/public/traces", limit=10).json()["data"][0]["name"] == "second"
        hits = srv.services.olap.result_cache.hits
        assert hits > 0  # the reads in between were answered from memory
        metrics = httpx.get(f"{api.url}/metrics", timeout=30).text
        reported = re.search(r"^owlscope_olap_result_cache_hits_total (\S+)$", metrics, re.M)
        assert reported and float(reported.group(1)) >= hits, metrics[-1500:]
        assert httpx.delete(f"{api.url}/api/public/traces/t1", auth=api.auth, timeout=30).status_code == 200
        assert api.get("/api/public/traces/t1").status_code == 404


def test_ingestion_into_one_project_keeps_the_kept_reads_of_another(make_settings, monkeypatch) -> None:
    with LiveServer(make_settings("embedded")) as srv:
        busy_key = create_project_key(srv.services, org_name="a", project_name="busy")
        busy = Api(srv, busy_key)
        idle_key = create_project_key(srv.services, org_name="b", project_name="idle")
        idle = Api(srv, idle_key)
        ts = "2026-01-01T00:00:00.000Z"
        for api, name in ((busy, "b0"), (idle, "i0")):
            api.ingest([{"id": f"e-{name}", "type": "trace-create", "timestamp": ts, "body": {"id": name, "name": name}}])
            api.wait_for(f"/api/public/traces/{name}")
        olap = srv.services.olap
        sent: list[dict] = []  # the parameters of every statement that reached the engine
        run = olap._run
        monkeypatch.setattr(olap, "_run", lambda sql, params: sent.append(params or {}) or run(sql, params))
        reads = ("/api/public/traces/i0", "/api/public/traces", "/api/public/sessions")
        first = [idle.get(path).json() for path in reads]
        assert any(idle_key["project_id"] in p.values() for p in sent)

        def idle_sent() -> list[dict]:
            return [p for p in sent if idle_key["project_id"] in p.values()]

        for _ in range(50):  # kept once no write of the idle project ends while they are read
            sent.clear()
            assert [idle.get(path).json() for path in reads] == first
            if not idle_sent():
                break
        assert not idle_sent()
        # the busy project is written three times, and its rollups refreshed each time; the idle
        # one's reads stay kept (the minute's scheduled refresh refreshes the busy project only here:
        # a refresh of the idle one would rightly drop them)
        from owlscope.tracing import rollups

        refresh = rollups.refresh_rollups
        busy_id = busy_key["project_id"]
        monkeypatch.setattr(rollups, "refresh_rollups", lambda o, *a, **kw: refresh(o, busy_id))
        for n in range(1, 4):
            busy.ingest([{"id": f"e-b{n}", "type": "trace-create", "timestamp": ts, "body": {"id": f"b{n}"}}])
            busy.wait_for(f"/api/public/traces/b{n}")
            assert refresh(olap, busy_id, settle=timedelta(0))[0].trace_hours == 1
            assert [idle.get(path).json() for path in reads] == first
        assert [t["id"] for t in busy.get("/api/public/traces").json()["data"]] == ["b3", "b2", "b1", "b0"]
        # a trace of the busy project deleted: gone there at once, the idle one's reads still kept
        assert httpx.delete(f"{busy.url}/api/public/traces/b3", auth=busy.auth, timeout=30).status_code == 200
        assert [t["id"] for t in busy.get("/api/public/traces").json()["data"]] == ["b2", "b1", "b0"]
        assert [idle.get(path).json() for path in reads] == first
        assert sent and not idle_sent()
        # a write to the idle project shows at once
        idle.ingest([{"id": "e-i1", "type": "trace-create", "timestamp": "2026-01-01T00:00:01.000Z",
                      "body": {"id": "i0", "name": "renamed"}}])
        r = idle.wait_for("/api/public/traces/i0", lambda r: r.json().get("name") == "renamed", timeout=10)
        assert idle.get("/api/public/traces").json()["data"][0]["name"] == "renamed"
        assert r.json()["name"] == "renamed"


def test_a_rollup_refresh_drops_the_kept_reads_of_its_project_only(olap: Olap, engine_reads: list[str]) -> None:
    from owlscope.tracing.rollups import refresh_rollups

    put(olap, "o1", "first")
    put(olap, "o2", "theirs", project="p2")
    hours = "SELECT count() FROM {db}.rollup_hours WHERE project_id = {p:String} AND kind = 'obs'"
    before = [olap.query(hours, {"p": p}) for p in ("p1", "p2")] + [olap.query(MERGED, {"p": "p2"})]
    assert before[:2] == [[(0,)], [(0,)]]
    sent = len(engine_reads)
    [result] = refresh_rollups(olap, "p1", settle=timedelta(0))
    assert result.obs_hours == 1
    engine_reads.clear()
    assert olap.query(hours, {"p": "p1"}) == [(1,)]  # read again: the refresh wrote p1's rows
    assert olap.query(hours, {"p": "p2"}) == [(0,)] and olap.query(MERGED, {"p": "p2"}) == before[2]
    assert len(engine_reads) == 1 and sent == 3  # p2's two reads were answered from memory


def test_span_ingestion_keeps_the_kept_score_reads_of_its_own_project(make_settings, monkeypatch) -> None:
    with LiveServer(make_settings("embedded")) as srv:
        api = Api(srv, create_project_key(srv.services))
        ts = "2026-01-01T00:00:00.000Z"
        api.ingest([{"id": "e0", "type": "trace-create", "timestamp": ts, "body": {"id": "t0", "name": "t0"}},
                    {"id": "e1", "type": "score-create", "timestamp": ts,
                     "body": {"id": "s0", "traceId": "t0", "name": "quality", "value": 1}}])
        api.wait_for("/api/public/v2/scores", lambda r: r.status_code == 200 and len(r.json()["data"]) == 1)
        olap = srv.services.olap
        sent: list[str] = []
        run = olap._run
        monkeypatch.setattr(olap, "_run", lambda sql, params: sent.append(sql) or run(sql, params))

        def score_reads() -> list[str]:
            return [sql for sql in sent if f"{olap.database}.scores" in sql]

        scores = api.get("/api/public/v2/scores").json()
        for _ in range(50):  # kept once no write of the project ends while it is read
            sent.clear()
            assert api.get("/api/public/v2/scores").json() == scores
            if not score_reads():
                break
        assert not score_reads()
        # spans and traces of the same project are ingested: its score reads stay kept, its trace
        # reads show the new trace at once
        api.ingest([{"id": "e2", "type": "trace-create", "timestamp": ts, "body": {"id": "t1", "name": "t1"}}])
        api.wait_for("/api/public/traces/t1")
        sent.clear()
        assert {t["id"] for t in api.get("/api/public/traces").json()["data"]} == {"t0", "t1"}
        assert sent  # the trace list went to the engine
        sent.clear()
        assert api.get("/api/public/v2/scores").json() == scores
        assert not score_reads()
        # a new score shows at once
        api.ingest([{"id": "e3", "type": "score-create", "timestamp": ts,
                     "body": {"id": "s1", "traceId": "t1", "name": "quality", "value": 0}}])
        r = api.wait_for("/api/public/v2/scores", lambda r: len(r.json()["data"]) == 2, timeout=10)
        assert {s["id"] for s in r.json()["data"]} == {"s0", "s1"}


def test_a_keyed_read_is_dropped_by_the_writes_of_its_keys_and_by_writes_naming_none() -> None:
    cache = results.ResultCache(1 << 20)
    scopes = {
        "a": results.Scope("p1", frozenset({"t"}), frozenset({"a"})),
        "ab": results.Scope("p1", frozenset({"t", "u"}), frozenset({"a", "b"})),
        "c": results.Scope("p1", frozenset({"t"}), frozenset({"c"})),
        "t": results.Scope("p1", frozenset({"t"})),  # unkeyed: every write of t drops it
        "p2a": results.Scope("p2", frozenset({"t"}), frozenset({"a"})),
    }

    def fill() -> None:
        for name, scope in scopes.items():
            cache.put((name, "{}"), scope, cache.generation(scope), ("x",), [(name,)], ())

    def kept() -> set[str]:
        return {name for name in scopes if (name, "{}") in cache._results}

    def indexed() -> set[tuple[str, str]]:
        keyed = {key for by_key in cache._keyed.values() for keys in by_key.values() for key in keys}
        return keyed | {key for keys in cache._index.values() for key in keys}

    fill()
    assert kept() == set(scopes)
    cache.written(["p1"], ["t"], ["b", "z"])  # keys b and z of p1's t
    assert kept() == {"a", "c", "p2a"}
    fill()
    cache.written(["p1"], ["u"], ["a"])  # key a, in u only
    assert kept() == {"a", "c", "t", "p2a"}
    fill()
    cache.written(["p1"], ["v"], ["a"])  # a table no read reads
    assert kept() == set(scopes)
    cache.written(["p1"], ["t"])  # t of p1, keys not named: every read of it
    assert kept() == {"p2a"}
    fill()
    cache.written(["p1"])  # tables not named
    assert kept() == {"p2a"}
    fill()
    cache.written()
    assert kept() == set()
    fill()
    cache.written(["p1"], ["t"], ["a"])
    assert kept() == {"c", "p2a"}
    assert indexed() == set(cache._results)  # nothing indexed that is not kept
    assert set(cache._keyed[("p1", "t")]) == {"c"} and set(cache._keyed[("p2", "t")]) == {"a"}


def test_a_keyed_read_is_not_kept_when_a_write_of_its_keys_finished_while_it_ran() -> None:
    cache = results.ResultCache(1 << 20)
    scope = results.Scope("p1", frozenset({"t", "u"}), frozenset({"a", "b"}))

    def kept_after(*writes: tuple) -> bool:
        cache.written()
        read_under = cache.generation(scope)
        for w in writes:
            cache.written(*w)
        cache.put(("q", "{}"), scope, read_under, ("x",), [(1,)], ())
        return cache.get(("q", "{}")) is not None

    assert kept_after()
    assert kept_after((["p1"], ["t"], ["c"]), (["p2"], ["t"], ["a"]), (["p1"], ["v"], ["a"]))
    assert not kept_after((["p1"], ["u"], ["c"]), (["p1"], ["u"], ["b"]))
    assert not kept_after((["p1"], ["t"]))  # no keys named
    assert not kept_after((["p1"],))
    assert not kept_after((["p2"], None, None), (None, None, None))
    # more keyed writes of its table than are remembered: the read cannot tell, and is not kept
    assert kept_after(*[(["p1"], ["t"], [f"k{i}"]) for i in range(results.RECENT_WRITES - 1)])
    assert not kept_after(*[(["p1"], ["t"], [f"k{i}"]) for i in range(results.RECENT_WRITES + 1)])


def test_an_insert_naming_its_traces_keeps_the_keyed_reads_of_other_traces(olap: Olap,
                                                                           engine_reads: list[str]) -> None:
    one_trace = ("SELECT id, argMaxIfMerge(name) AS name FROM {db}.observations"
                 " WHERE project_id = {p:String} AND trace_id = {t:String} GROUP BY id ORDER BY id")
    put(olap, "o1", "first", named=True, trace="ta")

    def read(trace: str) -> list:
        return olap.query(one_trace, {"p": "p1", "t": trace}, keys=[trace])

    assert read("ta") == [("o1", "first")] and read("tb") == []
    engine_reads.clear()
    put(olap, "o2", "other", named=True, trace="tc")  # another trace
    assert read("ta") == [("o1", "first")] and read("tb") == []
    assert engine_reads == []  # both kept, the empty one too
    put(olap, "o3", "late", named=True, trace="tb")  # the trace polled for arrives
    assert read("tb") == [("o3", "late")] and read("ta") == [("o1", "first")]
    assert len(engine_reads) == 1
    put(olap, "o1", "second", at=timedelta(seconds=1), named=True, trace="ta")  # an update of ta
    assert read("ta") == [("o1", "second")]
    # a write that names no keys drops every keyed read of its tables
    engine_reads.clear()
    olap.command("DELETE FROM {db}.observations WHERE project_id = 'p1' AND id = 'o3'", project="p1")
    assert read("tb") == [] and read("ta") == [("o1", "second")]
    assert len(engine_reads) == 2


def test_a_trace_read_stays_kept_while_its_project_takes_other_traces(make_settings, monkeypatch) -> None:
    with LiveServer(make_settings("embedded")) as srv:
        api = Api(srv, create_project_key(srv.services))
        ts = "2026-01-01T00:00:00.000Z"

        def span(eid: str, trace: str, oid: str, name: str, at: str = ts) -> dict:
            return {"id": eid, "type": "span-create", "timestamp": at,
                    "body": {"id": oid, "traceId": trace, "name": name, "startTime": at}}

        api.ingest([{"id": "e0", "type": "trace-create", "timestamp": ts, "body": {"id": "t0", "name": "t0"}},
                    span("e1", "t0", "o1", "retrieve")])
        api.wait_for("/api/public/traces/t0", lambda r: r.status_code == 200 and len(r.json()["observations"]) == 1)
        olap = srv.services.olap
        sent: list[str] = []
        run = olap._run
        monkeypatch.setattr(olap, "_run", lambda sql, params: sent.append(sql) or run(sql, params))

        def engine_reads_of(path: str, status: int = 200) -> tuple[dict, list[str]]:
            sent.clear()
            r = api.get(path)
            assert r.status_code == status, r.text
            return r.json(), list(sent)

        trace, _ = engine_reads_of("/api/public/traces/t0")
        engine_reads_of("/api/public/traces/t9", 404)  # polled for before it exists
        for n in range(1, 4):  # other traces of the project arrive, one insert at a time
            api.ingest([{"id": f"y{n}", "type": "trace-create", "timestamp": ts, "body": {"id": f"t{n}"}},
                        span(f"x{n}", f"t{n}", f"ox{n}", "other")])
            api.wait_for(f"/api/public/traces/t{n}")
            again, reads = engine_reads_of("/api/public/traces/t0")
            assert again == trace and reads == [], reads
            _, reads = engine_reads_of("/api/public/traces/t9", 404)
            assert reads == [], reads
        # the trace itself takes a new observation: the next read shows it
        api.ingest([span("e2", "t0", "o2", "generate", "2026-01-01T00:00:01.000Z")])
        r = api.wait_for("/api/public/traces/t0", lambda r: len(r.json()["observations"]) == 2, timeout=10)
        assert [o["name"] for o in r.json()["observations"]] == ["retrieve", "generate"]
        # and the trace polled for shows once it is written
        api.ingest([{"id": "e4", "type": "trace-create", "timestamp": ts, "body": {"id": "t9"}},
                    span("e3", "t9", "o9", "late")])
        r = api.wait_for("/api/public/traces/t9", timeout=10)
        assert [o["id"] for o in r.json()["observations"]] == ["o9"]


def test_the_trace_reads_of_a_project_without_scores_skip_the_score_lookups(make_settings, monkeypatch) -> None:
    settings = make_settings("embedded")
    settings.chdb_result_cache_mb = 0  # every statement to the engine, to see which are sent
    with LiveServer(settings) as srv:
        api = Api(srv, create_project_key(srv.services))
        ts = "2026-01-01T00:00:00.000Z"
        api.ingest([{"id": "e0", "type": "trace-create", "timestamp": ts, "body": {"id": "t0", "name": "t0"}}])
        api.wait_for("/api/public/traces/t0")
        olap = srv.services.olap
        sent: list[str] = []
        run = olap._run
        monkeypatch.setattr(olap, "_run", lambda sql, params: sent.append(sql) or run(sql, params))

        def score_statements(path: str, **params) -> tuple[dict, list[str]]:
            sent.clear()
            r = api.get(path, **params)
            assert r.status_code == 200, r.text
            return r.json(), [q for q in sent if f"{olap.database}.scores" in q]

        for path in ("/api/public/traces/t0", "/api/public/traces"):
            body, reads = score_statements(path)
            assert reads == [olap.sql("SELECT 1 FROM {db}.scores WHERE project_id = {p:String} LIMIT 1")], reads
        assert body["data"][0]["scores"] == []
        # its first score shows at once, through the lookups
        api.ingest([{"id": "e1", "type": "score-create", "timestamp": ts,
                     "body": {"id": "s0", "traceId": "t0", "name": "quality", "value": 1}}])
        api.wait_for("/api/public/v2/scores", lambda r: len(r.json()["data"]) == 1)
        body, reads = score_statements("/api/public/traces/t0")
        assert [x["id"] for x in body["scores"]] == ["s0"] and len(reads) == 2
        body, _ = score_statements("/api/public/traces")
        assert body["data"][0]["scores"] == ["s0"]
