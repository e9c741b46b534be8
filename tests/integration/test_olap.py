"""The OLAP seam on both engines: embedded chDB and ClickHouse over HTTP."""

from __future__ import annotations

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
