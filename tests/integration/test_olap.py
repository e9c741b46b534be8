"""The OLAP seam on both engines: embedded chDB and ClickHouse over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from owlscope.ingestion.rows import (
    ObservationEvent,
    ScoreEvent,
    TraceEvent,
    observations_table,
    scores_table,
    traces_table,
)
from owlscope.storage.olap.client import Olap
from owlscope.storage.olap.migrate import applied_versions, head_version, list_migrations, migrate


@pytest.fixture
def olap(make_settings, stack):
    o = Olap(make_settings(stack))
    migrate(o)
    yield o
    o.command("DROP DATABASE IF EXISTS {db}")
    o.close()


def test_migrations_are_recorded_and_idempotent(olap: Olap) -> None:
    assert applied_versions(olap) == {m.version for m in list_migrations()}
    assert max(applied_versions(olap)) == head_version()
    assert migrate(olap) == []  # nothing pending: a second start does nothing
    tables = {r[0] for r in olap.query("SELECT name FROM system.tables WHERE database = {d:String}",
                                       {"d": olap.database})}
    assert {"traces", "observations", "scores", "trace_events", "observation_events"} <= tables


def _merged_observation(olap: Olap, project: str, oid: str) -> dict:
    rows = olap.query_dicts(
        "SELECT argMaxIfMerge(name) AS name, argMaxIfMerge(type) AS type, argMaxIfMerge(output) AS output, "
        "argMaxIfMerge(usage_details) AS usage, argMaxIfMerge(end_time) AS end_time, min(sort_ts) AS start "
        "FROM {db}.observations WHERE project_id = {p:String} AND id = {i:String} GROUP BY id",
        {"p": project, "i": oid},
    )
    return rows[0] if rows else {}


@pytest.mark.parametrize("order", ["create-first", "update-first"])
def test_pieces_merge_to_one_record_whatever_the_order(olap: Olap, order: str) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    create = ObservationEvent("p1", "o1", "t1", t0, type="GENERATION", name="llm", output='"draft"',
                              start_time=t0, usage_details={"input": 3})
    update = ObservationEvent("p1", "o1", "t1", t0 + timedelta(seconds=2), output='"final"',
                              end_time=t0 + timedelta(seconds=2), usage_details={"input": 3, "output": 7})
    pieces = [create, update] if order == "create-first" else [update, create]
    for piece in pieces:  # separate inserts, as separate workers would do
        olap.insert_arrow("observation_events", observations_table([piece]))
    olap.insert_arrow("observation_events", observations_table([update]))  # and a duplicate
    merged = _merged_observation(olap, "p1", "o1")
    assert merged["name"] == "llm" and merged["type"] == "GENERATION"
    assert merged["output"] == '"final"' and merged["usage"] == {"input": 3, "output": 7}
    assert merged["start"].replace(tzinfo=UTC) == t0
    count = olap.query("SELECT count() FROM (SELECT id FROM {db}.observations WHERE project_id = 'p1' GROUP BY id)")
    assert count[0][0] == 1


def test_trace_attributes_from_many_spans_aggregate(olap: Olap) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    pieces = [
        TraceEvent("p1", "tr", t0 + timedelta(seconds=1), timestamp=t0 + timedelta(seconds=1), user_id="u1",
                   tags=["a"]),
        TraceEvent("p1", "tr", t0 + timedelta(seconds=3), timestamp=t0, root_name="root", tags=["b"],
                   public=True),
        TraceEvent("p1", "tr", t0 + timedelta(seconds=2), name="explicit", session_id="s1", tags=["a", "c"]),
    ]
    for p in reversed(pieces):
        olap.insert_arrow("trace_events", traces_table([p]))
    row = olap.query_dicts(
        "SELECT min(timestamp) AS ts, argMaxIfMerge(name) AS name, argMaxIfMerge(root_name) AS root, "
        "argMaxIfMerge(user_id) AS user, argMaxIfMerge(session_id) AS session, "
        "arraySort(groupUniqArrayArray(tags)) AS tags, max(public) AS public "
        "FROM {db}.traces WHERE project_id = 'p1' GROUP BY id"
    )[0]
    assert row["ts"].replace(tzinfo=UTC) == t0
    assert (row["name"], row["root"], row["user"], row["session"]) == ("explicit", "root", "u1", "s1")
    assert row["tags"] == ["a", "b", "c"] and row["public"] == 1


def test_scores_keep_the_latest_version_and_are_project_scoped(olap: Olap) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    v1 = ScoreEvent("p1", "s1", t0, t0, "quality", "NUMERIC", value=0.2, trace_id="t1")
    v2 = ScoreEvent("p1", "s1", t0 + timedelta(seconds=1), t0, "quality", "NUMERIC", value=0.9, trace_id="t1")
    other = ScoreEvent("p2", "s1", t0, t0, "quality", "NUMERIC", value=0.5, trace_id="t1")
    olap.insert_arrow("scores", scores_table([v2]))
    olap.insert_arrow("scores", scores_table([v1, other]))
    rows = olap.query("SELECT value FROM {db}.scores FINAL WHERE project_id = {p:String} AND id = 's1'",
                      {"p": "p1"})
    assert rows == [(0.9,)]


def test_rows_go_to_a_server_compressed_and_arrive_whole(make_settings, monkeypatch) -> None:
    olap = Olap(make_settings("scaleout"))
    migrate(olap)
    sent: list[int] = []
    client_type = type(olap.client)  # statements lease pooled clients: spy on the class
    raw_insert = client_type.raw_insert

    def spy(self, table, column_names=None, insert_block=None, **kw):
        sent.append(len(insert_block))
        return raw_insert(self, table, column_names, insert_block, **kw)

    monkeypatch.setattr(client_type, "raw_insert", spy)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    text = '"' + "the answer cites the refund policy and the shipping terms " * 30 + '"'  # 1.7 KB
    rows = [ObservationEvent("p1", f"o{i}", "t1", t0, type="GENERATION", name="llm", input=text,
                             output=text + str(i), start_time=t0) for i in range(500)]
    try:
        olap.insert_arrow("observation_events", observations_table(rows))
        plain = observations_table(rows).nbytes
        assert len(sent) == 1 and sent[0] < plain / 4, (sent, plain)  # compressed on the wire
        merged = [_merged_observation(olap, "p1", f"o{i}") for i in (0, 499)]
        assert [m["output"] for m in merged] == [text + "0", text + "499"]
        count = olap.query("SELECT uniqExact(id) FROM {db}.observations WHERE project_id = 'p1'")
        assert count == [(500,)]
    finally:
        olap.command("DROP DATABASE IF EXISTS {db}")
        olap.close()


def _migrate_script(url: str, database: str, migrations: Path, data_dir: Path) -> str:
    return textwrap.dedent(f"""
        from pathlib import Path
        from owlscope.config import load_settings
        from owlscope.storage.olap.client import Olap
        from owlscope.storage.olap.migrate import migrate
        s = load_settings(data_dir={str(data_dir)!r}, clickhouse_url={url!r})
        migrate(Olap(s, database={database!r}), Path({str(migrations)!r}),
                on_statement=lambda m, i, n: print("STATEMENT", i, flush=True))
        print("MIGRATED", flush=True)
    """)


@pytest.mark.parametrize("engine", ["chdb", "http"])
def test_a_killed_migration_completes_on_the_next_start(tmp_path: Path, engine: str, request) -> None:
    """Kill the process between two statements of one migration; the next run finishes it."""
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_two_tables.sql").write_text(
        "CREATE DATABASE IF NOT EXISTS {db};\n"
        "CREATE TABLE IF NOT EXISTS {db}.first (id String) ENGINE = MergeTree ORDER BY id;\n"
        "SELECT sleepEachRow(0.1) FROM numbers(30) SETTINGS max_block_size = 1 FORMAT Null;\n"
        "CREATE TABLE IF NOT EXISTS {db}.second (id String) ENGINE = MergeTree ORDER BY id;\n"
    )
    if engine == "chdb":
        url = f"chdb://{tmp_path / 'olap'}"  # a subprocess: its own chDB directory
    else:
        url = request.getfixturevalue("clickhouse_http_url")
    database = f"kill_{tmp_path.name[-8:].replace('-', '_')}"
    script = _migrate_script(url, database, migrations, tmp_path / "data")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)

    def tables() -> set[str]:
        check = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(f"""
                from owlscope.config import load_settings
                from owlscope.storage.olap.client import Olap
                o = Olap(load_settings(data_dir={str(tmp_path / 'data')!r}, clickhouse_url={url!r}),
                         database={database!r})
                print(",".join(r[0] for r in o.query(
                    "SELECT name FROM system.tables WHERE database = {{d:String}}", {{"d": {database!r}}})))
            """)], capture_output=True, text=True, timeout=120,
        )
        return set(filter(None, check.stdout.strip().split(",")))

    assert proc.stdout is not None
    for line in proc.stdout:  # statement 2 (the first table) done: the next one sleeps 3 s
        if line.strip() == "STATEMENT 2":
            break
    time.sleep(0.5)
    proc.kill()
    proc.wait()
    seen = tables()
    assert "second" not in seen and "schema_migrations" in seen
    assert "first" in seen
    rerun = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "MIGRATED" in rerun.stdout, rerun.stderr
    assert {"first", "second", "schema_migrations"} <= tables()


AFTER_0001 = ["internal_model_id"]  # event columns later migrations added


def _migrations_up_to(version: int, directory: Path) -> Path:
    directory.mkdir()
    for m in list_migrations():
        if m.version <= version:
            (directory / m.path.name).write_text(m.path.read_text())
    return directory


def test_migration_0002_reads_old_rows_from_maps_and_new_rows_from_scalars(make_settings, stack, tmp_path) -> None:
    """Rows written under 0001 keep reading right after 0002 (cost and tokens from their maps,
    metadata from the whole latest piece); rows written after it fill the scalar columns and the
    metadata pieces, and once no old row is left the rollups read the scalars alone."""
    from owlscope import tracing
    from owlscope.tracing.model import rollups_fast
    from owlscope.tracing.trace_table import trace_aggregates

    only_0001 = _migrations_up_to(1, tmp_path / "migrations")
    o = Olap(make_settings(stack))
    try:
        migrate(o, only_0001)
        assert applied_versions(o) == {1}
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        pid = "p-0002"
        o.insert_arrow("trace_events", traces_table([
            TraceEvent(pid, "old", t0, timestamp=t0, name="old", metadata='{"a": 1, "k": "old"}')]))
        o.insert_arrow("observation_events", observations_table([
            ObservationEvent(pid, "o-old", "old", t0, type="GENERATION", start_time=t0, model="m",
                             usage_details={"input": 10, "output": 5, "total": 15},
                             cost_details={"input": 1.0, "output": 2.0, "total": 3.0})]).drop_columns(AFTER_0001))

        assert [m.version for m in migrate(o)] == [m.version for m in list_migrations()[1:]]
        assert migrate(o) == [] and applied_versions(o) == {m.version for m in list_migrations()}
        assert not rollups_fast(o, pid)  # an old row: rollups fall back to the maps

        t1 = t0 + timedelta(minutes=1)
        o.insert_arrow("trace_events", traces_table([
            TraceEvent(pid, "new", t1, timestamp=t1, name="new", metadata='{"a": 1, "k": "first"}'),
            TraceEvent(pid, "new", t1 + timedelta(seconds=2), metadata='{"b": 2, "k": "last"}'),
            TraceEvent(pid, "new", t1 + timedelta(seconds=1), metadata='{"c": 3, "k": "middle"}'),
            TraceEvent(pid, "new", t1 + timedelta(seconds=3), metadata='{"b": 2, "k": "last"}'),  # repeated
        ]))
        o.insert_arrow("observation_events", observations_table([
            ObservationEvent(pid, "o-new", "new", t1, type="GENERATION", start_time=t1, model="m",
                             metadata='{"x": 1}', usage_details={"input": 100, "output": 50},
                             cost_details={"input": 0.25, "output": 0.5}),
            ObservationEvent(pid, "o-new", "new", t1 + timedelta(seconds=1), metadata='{"y": 2}'),
            # a later piece of the old observation, without usage: its cost still comes from the map
            ObservationEvent(pid, "o-old", "old", t0 + timedelta(seconds=1), end_time=t0 + timedelta(seconds=1)),
        ]))
        scalars = {r["id"]: r for r in o.query_dicts(
            "SELECT id, argMaxIfMerge(total_cost) AS cost, argMaxIfMerge(total_tokens) AS tokens,"
            " min(scalars_complete) AS complete, length(maxMap(metadata_pieces)) AS pieces"
            " FROM {db}.observations WHERE project_id = {p:String} GROUP BY id", {"p": pid})}
        assert scalars["o-new"] == {"id": "o-new", "cost": 0.75, "tokens": 150, "complete": 1, "pieces": 2}
        assert scalars["o-old"]["complete"] == 0 and scalars["o-old"]["cost"] == 0  # no state before 0002
        pieces = o.query("SELECT length(maxMap(metadata_pieces)) FROM {db}.traces WHERE project_id = {p:String}"
                         " AND id = 'new'", {"p": pid})
        assert pieces == [(3,)]  # the repeated piece is stored once

        def check() -> None:
            aggs = trace_aggregates(o, pid, ["old", "new"])
            assert (aggs["old"]["total_cost"], aggs["old"]["total_tokens"]) == (3.0, 15)
            assert (aggs["new"]["total_cost"], aggs["new"]["total_tokens"]) == (0.75, 150)
            assert (aggs["new"]["input_tokens"], aggs["new"]["output_tokens"]) == (100, 50)
            day = tracing.metrics_daily(o, pid)["data"]
            assert sum(d["totalCost"] for d in day) == pytest.approx(3.75)
            assert sum(u["totalUsage"] for d in day for u in d["usage"]) == 165
            q = {"view": "observations", "metrics": [{"measure": "totalCost", "aggregation": "sum"},
                                                     {"measure": "totalTokens", "aggregation": "sum"}],
                 "fromTimestamp": (t0 - timedelta(hours=1)).isoformat(),
                 "toTimestamp": (t1 + timedelta(hours=1)).isoformat()}
            row = tracing.metrics_v2(o, pid, q)["data"][0]
            assert row["sum_totalCost"] == pytest.approx(3.75) and row["sum_totalTokens"] == 165

        check()
        old = tracing.get_trace(o, pid, "old")
        assert old["metadata"] == {"a": 1, "k": "old"}  # no pieces: the metadata column
        assert old["totalCost"] == 3.0 and old["observations"][0]["usage"]["total"] == 15
        new = tracing.get_trace(o, pid, "new")
        assert new["metadata"] == {"a": 1, "b": 2, "c": 3, "k": "last"}
        assert new["observations"][0]["metadata"] == {"x": 1, "y": 2}
        assert new["totalCost"] == 0.75

        tracing.delete_traces(o, pid, ["old"])
        assert rollups_fast(o, pid)  # no old row left: the scalars alone
        aggs = trace_aggregates(o, pid, ["new"])
        assert (aggs["new"]["total_cost"], aggs["new"]["total_tokens"]) == (0.75, 150)
        assert sum(d["totalCost"] for d in tracing.metrics_daily(o, pid)["data"]) == pytest.approx(0.75)
    finally:
        o.command("DROP DATABASE IF EXISTS {db}")
        o.close()


def test_migration_0003_stores_the_matched_model_id_and_leaves_older_rows_to_a_match_by_name(
        make_settings, stack, tmp_path) -> None:
    """After 0003 an observation reads the model id stored with its latest event that named a model
    ('' = matched none, which replaces an earlier match); one with a row from before 0003 carries its
    model name for the reader to match (`MODEL_TO_MATCH`)."""
    from owlscope import tracing
    from owlscope.tracing.observations import MODEL_TO_MATCH, observations_for_trace

    o = Olap(make_settings(stack))
    try:
        migrate(o, _migrations_up_to(2, tmp_path / "migrations"))
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        pid = "p-0003"
        o.insert_arrow("observation_events", observations_table([
            ObservationEvent(pid, "o-old", "t", t0, type="GENERATION", start_time=t0, model="gpt-4o")],
        ).drop_columns(AFTER_0001))
        assert [m.version for m in migrate(o)] == [m.version for m in list_migrations() if m.version > 2]
        t1 = t0 + timedelta(minutes=1)
        o.insert_arrow("observation_events", observations_table([
            ObservationEvent(pid, "o-known", "t", t1, type="GENERATION", start_time=t1, model="house",
                             internal_model_id="model-1"),
            ObservationEvent(pid, "o-known", "t", t1 + timedelta(seconds=1), end_time=t1),  # says nothing
            ObservationEvent(pid, "o-renamed", "t", t1, type="GENERATION", model="house", internal_model_id="model-1"),
            ObservationEvent(pid, "o-renamed", "t", t1 + timedelta(seconds=1), model="nobody", internal_model_id=""),
            ObservationEvent(pid, "o-span", "t", t1, type="SPAN", start_time=t1),
        ]))
        got = {b["id"]: b for b in observations_for_trace(o, pid, "t")}
        assert got["o-known"]["modelId"] == "model-1" and MODEL_TO_MATCH not in got["o-known"]
        assert got["o-renamed"]["modelId"] is None and got["o-renamed"]["model"] == "nobody"
        assert MODEL_TO_MATCH not in got["o-renamed"]
        assert got["o-span"]["modelId"] is None and MODEL_TO_MATCH not in got["o-span"]
        assert got["o-old"]["modelId"] is None and got["o-old"][MODEL_TO_MATCH] == "gpt-4o"
        # the v2 list carries the stored id in its core fields
        v2 = {b["id"]: b for b in tracing.list_observations_v2(o, pid, trace_id="t", fields="core")["data"]}
        assert v2["o-known"]["modelId"] == "model-1" and v2["o-old"][MODEL_TO_MATCH] == "gpt-4o"
    finally:
        o.command("DROP DATABASE IF EXISTS {db}")
        o.close()


def test_clients_are_pooled_across_threads_that_come_and_go(olap: Olap) -> None:
    """Request threads end (the server's worker threads exit when idle): the client a query used goes
    back to a pool for the next thread instead of a new client being opened per thread."""
    import threading

    olap.query("SELECT 1")
    opened = len(olap._clients)
    for _ in range(5):
        t = threading.Thread(target=lambda: olap.query("SELECT 1"))
        t.start()
        t.join()
    assert len(olap._clients) == opened


def test_concurrent_queries_each_get_a_client_and_their_own_answer(olap: Olap) -> None:
    """Statements running at once never share a client (one chDB connection serializes its work and
    answers a second query during a first with nothing)."""
    from concurrent.futures import ThreadPoolExecutor

    def answer(i: int) -> list[tuple]:
        return olap.query("SELECT {i:UInt32} + number, sleep(0.05) FROM numbers(3)", {"i": i})

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(answer, range(8)))
    assert [[r[0] for r in rows] for rows in results] == [[i, i + 1, i + 2] for i in range(8)]
    assert len(olap._idle) <= 4
    assert olap.query_dicts("SELECT 7 AS seven") == [{"seven": 7}]
def test_histogram_bins_are_equal_width_from_min_to_max(olap: Olap) -> None:
    """The metrics `histogram` aggregation (no ClickHouse `histogram`, which the lite engine lacks):
    (lower, upper, count) per equal-width bin; NULL, NaN and infinite values are left out; all values
    equal make one bin; no value, no bin."""
    from owlscope.tracing.metrics import histogram_sql

    def bins(values: str, n: int) -> list:
        return [list(b) for b in olap.query(
            f"SELECT {histogram_sql('x', n, '0')} FROM (SELECT arrayJoin({values}) AS x)")[0][0]]

    assert bins("[0., 1, 2, 3, 4, 5, 6, 8]", 4) == [[0, 2, 2.0], [2, 4, 2.0], [4, 6, 2.0], [6, 8, 2.0]]
    assert bins("[1., 9, 9, NULL, nan, inf]", 2) == [[1, 5, 1.0], [5, 9, 2.0]]
    assert bins("[7.5, 7.5, 7.5]", 10) == [[7.5, 7.5, 3.0]]
    assert bins("CAST([], 'Array(Float64)')", 5) == []
    assert bins("[0., 10]", 3)[1] == pytest.approx([10 / 3, 20 / 3, 0.0])  # an empty bin stays


_TUPLE_PIECES = "SimpleAggregateFunction(maxMap, Tuple(Array(String), Array(DateTime64(3, 'UTC'))))"
_MAP_PIECES = "SimpleAggregateFunction(maxMap, Map(String, DateTime64(3, 'UTC')))"


def test_migration_0006_converts_tuple_metadata_pieces_to_a_map(make_settings, stack, tmp_path) -> None:
    """A store created by the earlier 0002/0003 (metadata pieces as a tuple of arrays) reads the same
    after 0006, and new events merge into the converted pieces. Needs an engine that can still create
    the tuple form (the full chDB build, a ClickHouse server): the lite build cannot."""
    from owlscope.tracing.common import merge_metadata

    o = Olap(make_settings(stack))
    try:
        try:
            o.query("SELECT maxMap(([toString(number)], [number])) FROM numbers(1)")
        except Exception:  # noqa: BLE001 - the engine's answer decides
            pytest.skip("this engine has no maxMap over a tuple of arrays (the lite chDB build)")
        old = tmp_path / "migrations"
        old.mkdir()
        for m in list_migrations():
            if m.version <= 4:
                (old / m.path.name).write_text(m.path.read_text().replace(_MAP_PIECES, _TUPLE_PIECES).replace(
                    "maxMapIf(map(assumeNotNull(e.metadata), e.event_ts), isNotNull(e.metadata))",
                    "maxMapIf(([assumeNotNull(e.metadata)], [e.event_ts]), isNotNull(e.metadata))"))
        migrate(o, old)
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        pid = "p-0006"
        o.insert_arrow("trace_events", traces_table([
            TraceEvent(pid, "t", t0 + timedelta(seconds=i), timestamp=t0, metadata=meta)
            for i, meta in enumerate(['{"a": 1, "b": 1}', '{"b": 2}', '{"b": 2}'])]))
        o.insert_arrow("observation_events", observations_table([
            ObservationEvent(pid, "o", "t", t0 + timedelta(seconds=i), type="SPAN", metadata=meta)
            for i, meta in enumerate(['{"x": 1}', '{"y": 2}'])]))
        assert o.query("SELECT toTypeName(metadata_pieces) FROM {db}.traces LIMIT 1") == [(_TUPLE_PIECES,)]

        assert 6 in [m.version for m in migrate(o)]
        for table in ("traces", "observations"):
            assert o.query(f"SELECT toTypeName(metadata_pieces) FROM {{db}}.{table} LIMIT 1") == [(_MAP_PIECES,)]
        o.insert_arrow("trace_events", traces_table([
            TraceEvent(pid, "t", t0 + timedelta(seconds=9), metadata='{"a": 9}')]))

        def merged(table: str) -> dict:
            ((pieces, latest),) = o.query(f"SELECT maxMap(metadata_pieces), argMaxIfMerge(metadata) FROM {{db}}.{table}"
                                          " WHERE project_id = {p:String}", {"p": pid})
            return merge_metadata(pieces, latest)

        assert merged("traces") == {"a": 9, "b": 2}
        assert merged("observations") == {"x": 1, "y": 2}
    finally:
        o.command("DROP DATABASE IF EXISTS {db}")
        o.close()


def test_a_read_over_the_engines_memory_cap_is_a_503_that_says_what_to_do(olap: Olap) -> None:
    from owlscope.errors import ServiceUnavailable
    from owlscope.storage.olap.client import TOO_BIG

    sql = "SELECT groupArray(number) FROM numbers(5000000) SETTINGS max_memory_usage = 2000000"
    for read in (olap.query, olap.query_dicts):
        with pytest.raises(ServiceUnavailable) as caught:
            read(sql)
        assert caught.value.status == 503 and caught.value.message == TOO_BIG
    assert olap.query("SELECT 1") == [(1,)]  # the client went back to the pool whole
    with pytest.raises(Exception, match="UNKNOWN_TABLE|Unknown table") as other:
        olap.query("SELECT * FROM {db}.no_such_table")
    assert not isinstance(other.value, ServiceUnavailable)  # other engine errors stay what they are


def test_embedded_inserts_leave_no_staging_file_and_clear_those_a_crash_left(make_settings) -> None:
    from owlscope.storage.olap.client import INSERT_FILE_PREFIX

    settings = make_settings("embedded")
    tmp = Path(settings.olap_url[len("chdb://"):]) / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    left = tmp / f"{INSERT_FILE_PREFIX}died-mid-insert.arrows"
    left.write_bytes(b"half an Arrow stream")
    an_hour_ago = time.time() - 3600
    os.utime(left, (an_hour_ago, an_hour_ago))
    running = tmp / f"{INSERT_FILE_PREFIX}another-olap-inserting-now.arrows"
    running.write_bytes(b"being written")
    other = tmp / "engine-own-file"
    other.write_bytes(b"x")
    o = Olap(settings)
    migrate(o)
    try:
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        o.insert_arrow("trace_events", traces_table([TraceEvent("p1", "tr", t0, timestamp=t0, name="n")]))
        assert o.query("SELECT count() FROM {db}.traces WHERE project_id = 'p1'")[0][0] == 1
        assert not left.exists()  # a crash's leftover is cleared by the first insert
        assert running.exists()  # a file just written may be another insert's: kept
        running.unlink()
        assert other.exists()  # the engine's own files are not touched
        assert list(tmp.glob(f"{INSERT_FILE_PREFIX}*")) == []  # and the insert's own file is gone
    finally:
        o.command("DROP DATABASE IF EXISTS {db}")
        o.close()


@pytest.mark.parametrize("cache_mb", [128, 0])
def test_embedded_small_reads_are_served_from_the_uncompressed_cache_unless_turned_off(tmp_path: Path,
                                                                                      cache_mb: int) -> None:
    """A point read repeated (one trace, a page of traces) decompresses its blocks once; with
    CHDB_UNCOMPRESSED_CACHE_MB=0 every read decompresses them again. A fresh process: the engine
    takes its cache size when it starts."""
    script = textwrap.dedent(f"""
        from datetime import UTC, datetime, timedelta
        from owlscope.config import load_settings
        from owlscope.ingestion.rows import ObservationEvent, observations_table
        from owlscope.storage.olap.client import Olap
        from owlscope.storage.olap.migrate import migrate
        o = Olap(load_settings(data_dir={str(tmp_path / 'data')!r}, clickhouse_url={f"chdb://{tmp_path / 'olap'}"!r},
                               chdb_uncompressed_cache_mb={cache_mb}, chdb_result_cache_mb=0))
        migrate(o)
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        o.insert_arrow("observation_events", observations_table([
            ObservationEvent("p", f"o{{i}}", f"t{{i % 500}}", t0 + timedelta(seconds=i), type="SPAN",
                             input="x" * 500 + str(i)) for i in range(5000)]))
        def hits():
            return o.query("SELECT value FROM system.events WHERE event = 'UncompressedCacheHits'") or [(0,)]
        before = hits()[0][0]
        for _ in range(3):
            rows = o.query("SELECT id, argMaxIfMerge(input) FROM {{db}}.observations"
                           " WHERE project_id = 'p' AND trace_id = 't7' GROUP BY id")
            assert len(rows) == 10 and all(r[1].startswith("x" * 500) for r in rows)
        print("HITS", hits()[0][0] - before)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    hits = int(run.stdout.split("HITS")[1])
    assert (hits > 0) == (cache_mb > 0)
