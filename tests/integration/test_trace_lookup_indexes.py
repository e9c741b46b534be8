"""OLAP migration 0007: bloom filters on traces.id and observations.trace_id and a min/max index on
trace timestamps. A lookup by id reads only the granules that can hold it; rows stored before the
migration are indexed by it; its statements run again; reads give the same answers with the time
bound (`fetch_traces(since=)`) as without."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

from owlscope.ingestion.rows import ObservationEvent, TraceEvent
from owlscope.storage.olap.client import Olap
from owlscope.storage.olap.migrate import _render, list_migrations
from owlscope.tracing import get_trace, list_traces
from owlscope.tracing.traces import fetch_traces
from read_fixtures import fixture_olap, insert  # noqa: F401

P = "proj-idx"


def tid(day: int, i: int) -> str:
    """Random-looking ids, as trace ids are: every part's key range covers almost any id."""
    return hashlib.md5(f"{day}-{i}".encode()).hexdigest()
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


def _granules(olap: Olap, sql: str, params: dict, index: str) -> tuple[int, int]:
    plan = "\n".join(r[0] for r in olap.query("EXPLAIN indexes = 1 " + sql, params))
    after = plan.split(f"Name: {index}", 1)[1]
    read, total = map(int, re.search(r"Granules: (\d+)/(\d+)", after).groups())
    return read, total


def test_lookups_skip_parts_and_the_time_bound_changes_nothing(olap: Olap) -> None:
    for table in ("traces", "observations"):  # keep the parts apart, as a busy store has them
        olap.command(f"SYSTEM STOP MERGES {{db}}.{table}")
    # ten inserts (ten parts), each a day's traces with an observation and a later piece
    for day in range(10):
        at = T0 - timedelta(days=10 - day)
        insert(olap, traces=[TraceEvent(P, tid(day, i), at, timestamp=at + timedelta(seconds=i), name="n")
                             for i in range(200)],
               observations=[ObservationEvent(P, f"o-{day}-{i:03d}", tid(day, i), at, type="SPAN",
                                              start_time=at + timedelta(seconds=i)) for i in range(200)])
    # a trace (tid(9, 0)) whose second piece arrives in a later part, with an earlier timestamp than its first
    insert(olap, traces=[TraceEvent(P, tid(9, 0), T0, timestamp=T0 - timedelta(days=20), user_id="u")])
    read, total = _granules(olap, "SELECT id FROM {db}.traces WHERE project_id = {p:String} AND id = {t:String}",
                            {"p": P, "t": tid(3, 42)}, "idx_id")
    assert read < total, (read, total)
    read, total = _granules(olap, "SELECT id FROM {db}.observations WHERE project_id = {p:String}"
                            " AND trace_id = {t:String}", {"p": P, "t": tid(3, 42)}, "idx_trace")
    assert read < total, (read, total)
    for table in ("traces", "observations"):
        olap.command(f"SYSTEM START MERGES {{db}}.{table}")
    (m7,) = [m for m in list_migrations() if m.version == 7]
    for statement in m7.statements():  # idempotent (and builds the indexes of rows stored before it)
        olap.command(_render(olap, statement))
    names = {r[0] for r in olap.query("SELECT name FROM system.data_skipping_indices WHERE database = {d:String}",
                                      {"d": olap.database})}
    assert {"idx_id", "idx_ts", "idx_trace"} <= names
    # the newest traces: tid(9, 0) started 20 days ago (its later piece), so it is not among them
    page = list_traces(olap, P, limit=5)
    assert [t["id"] for t in page["data"]] == [tid(9, i) for i in range(199, 194, -1)]
    assert page["meta"]["totalItems"] == 2000
    oldest = list_traces(olap, P, limit=1, order_by="timestamp.asc")["data"][0]
    assert oldest["id"] == tid(9, 0) and oldest["userId"] == "u"
    # a time bound at or before every start of the ids gives the same merged rows
    ids = [tid(9, 150), tid(9, 199), tid(8, 10)]
    since = T0 - timedelta(days=2)
    assert fetch_traces(olap, P, ids, since=since) == fetch_traces(olap, P, ids)
    t = get_trace(olap, P, tid(9, 0))
    assert t is not None and t["userId"] == "u" and [o["id"] for o in t["observations"]] == ["o-9-000"]
    assert get_trace(olap, P, "nope") is None
