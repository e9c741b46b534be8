"""Embedded reads kept until the next write (storage/olap/results.py): a repeated read does not go to
the engine, and no write, of any kind or through any `Olap` on the store, is ever hidden by it."""

from __future__ import annotations

import re
import time
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


def put(olap: Olap, oid: str, name: str, *, at: timedelta = timedelta(0)) -> None:
    olap.insert_arrow("observation_events", observations_table([
        ObservationEvent("p1", oid, "t1", T0 + at, type="SPAN", name=name, start_time=T0,
                         usage_details={"input": 3})]))


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
    read_under = cache.generation
    cache.written()  # a write finished while the read ran: its result may predate the write
    cache.put(("q", "{}"), read_under, ("x",), [(1,)], ())
    assert cache.get(("q", "{}")) is None
    cache.put(("q", "{}"), cache.generation, ("x",), [(1,)], ())
    assert cache.get(("q", "{}")).rows == [(1,)]
    small = results.ResultCache(1000)  # the budget: a result larger than it is never kept
    small.put(("q", "{}"), small.generation, ("x",), [("y" * 2000,)], ())
    assert small.get(("q", "{}")) is None and small.bytes_held == 0


def test_only_embedded_stores_with_a_budget_keep_reads(olap: Olap, make_settings, engine_reads: list[str]) -> None:
    assert Olap(load_settings(clickhouse_url="http://127.0.0.1:1"))._results is None
    off = Olap(make_settings("embedded", chdb_result_cache_mb=0))
    assert off._results is None
    # a client handed out sends what the cache cannot see: the store's cache is off from then on
    put(olap, "o1", "first")
    olap.query(MERGED, {"p": "p1"})
    olap.client  # noqa: B018 - the handing out is the point
    olap.query(MERGED, {"p": "p1"})
    olap.query(MERGED, {"p": "p1"})
    assert len(engine_reads) == 3


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
