"""Rollups benchmark: N observations over 30 days (bench/read_api.py's data), one refresh, then the
30-day dashboard and v2/metrics (cost and p95 latency by model per day) served from rollups vs raw.

    python bench/rollups.py                          # 250k traces / 1M observations, temp dir
    python bench/rollups.py --traces 50000 --data-dir /tmp/r   # keep the data for a second run

Prints the load and refresh times, an incremental refresh after a small late batch, and p50/p95 (ms)
of each read on both paths, with the load average (other work on the machine inflates them).

Then the current hour of a busy project (`--busy-traces`, default 50,000 traces / 200,000
observations in this hour, refreshed), written again since its refresh (`--since-traces`, default
1,000 traces: the last seconds of traffic before the next refresh, a minute at most): the same reads
while that hour is dirty, as served (its stored facts for the traces not written since, the raw rows
of those written since) and with the hour merged raw (as a dirty hour was read before), then the
hour's refresh (it recomputes the whole hour, as every minute's refresh of a busy project does).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from read_api import PROJECT, load, measure  # noqa: E402

from owlscope.config import load_settings  # noqa: E402
from owlscope.ingestion.rows import ObservationEvent, TraceEvent, observations_table, traces_table  # noqa: E402
from owlscope.storage.olap.client import Olap  # noqa: E402
from owlscope.storage.olap.migrate import migrate  # noqa: E402
from owlscope.tracing import rollups  # noqa: E402
from owlscope.tracing.dashboard import dashboard  # noqa: E402
from owlscope.tracing.metrics import metrics_query  # noqa: E402
from owlscope.tracing.rollups import Served, refresh_rollups  # noqa: E402

DATABASE = "bench_rollups"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="keep data here (reused when already loaded)")
    ap.add_argument("--traces", type=int, default=250_000)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--busy-traces", type=int, default=50_000, help="traces in the current hour (0: skip)")
    ap.add_argument("--since-traces", type=int, default=1_000, help="of them, written after its refresh")
    args = ap.parse_args()
    own = args.data_dir is None
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="owlscope-bench-"))
    # every read repeated here goes to the engine: the result cache would answer the repeats from memory
    olap = Olap(load_settings(data_dir=data_dir, clickhouse_url=f"chdb://{data_dir / 'olap'}", chdb_result_cache_mb=0), database=DATABASE)
    try:
        migrate(olap)
        if not olap.query("SELECT count() FROM {db}.observations WHERE project_id = {p:String}", {"p": PROJECT})[0][0]:
            print(f"loading {args.traces:,} traces / {args.traces * 4:,} observations into {data_dir}")
            t = time.perf_counter()
            load(olap, args.traces * 4, 2, data_dir / "bench-load.json")
            print(f"loaded in {time.perf_counter() - t:.1f} s")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work inflates the numbers)")
        t = time.perf_counter()
        (res,) = refresh_rollups(olap, PROJECT, settle=timedelta(0))
        print(f"refresh ({'full' if res.full else 'incremental'}: {res.obs_hours} observation hours,"
              f" {res.trace_hours} trace hours) {time.perf_counter() - t:.2f} s")
        # a small late batch: cost updates of 100 observations spread over the month, then refresh
        some = olap.query("SELECT trace_id, id FROM {db}.observations WHERE project_id = {p:String}"
                          " ORDER BY cityHash64(id) LIMIT 100", {"p": PROJECT})
        now = datetime.now(UTC)
        olap.insert_arrow("observation_events", observations_table([
            ObservationEvent(PROJECT, i, tid, now, cost_details={"total": 1.0}) for tid, i in some]))
        t = time.perf_counter()
        (res,) = refresh_rollups(olap, PROJECT, settle=timedelta(0))
        print(f"incremental refresh after 100 late updates ({res.obs_hours} observation hours,"
              f" {res.trace_hours} trace hours) {time.perf_counter() - t:.2f} s")
        rows = olap.query("SELECT count() FROM {db}.rollup_observations WHERE project_id = {p:String}", {"p": PROJECT})
        print(f"rollup_observations rows {rows[0][0]:,}")

        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        start = end - timedelta(days=30)
        q = {"view": "observations", "fromTimestamp": start.isoformat(), "toTimestamp": end.isoformat(),
             "dimensions": [{"field": "providedModelName"}], "timeDimension": {"granularity": "day"},
             "metrics": [{"measure": "totalCost", "aggregation": "sum"}, {"measure": "latency", "aggregation": "p95"}]}
        served = Served()
        metrics_query(olap, PROJECT, q, served=served)
        print(f"v2/metrics served by {served.path} ({served.hours} clean hours)")
        print(f"\n{'read (' + str(args.repeat) + ' runs each)':<46}")
        rows: list[tuple[str, float, float, float]] = []
        measure("v2/metrics cost+p95 by model/day, rollups", lambda: metrics_query(olap, PROJECT, q), args.repeat, rows)
        measure("v2/metrics cost+p95 by model/day, raw",
                lambda: metrics_query(olap, PROJECT, q, rollups=False), max(3, args.repeat // 3), rows)
        measure("dashboard 30 days, rollups", lambda: dashboard(olap, PROJECT, start=start, end=end), args.repeat, rows)
        try:
            measure("dashboard 30 days, raw", lambda: dashboard(olap, PROJECT, start=start, end=end, rollups=False),
                    max(3, args.repeat // 3), rows)
        except Exception as e:  # noqa: BLE001 - the raw path can exceed the engine's memory cap: say so
            print(f"dashboard 30 days, raw: failed: {str(e).splitlines()[0][:160]}")
        if args.busy_traces:
            busy_hour(olap, q, start, end, args.busy_traces, args.since_traces, args.repeat)
    finally:
        olap.close()
        if own:
            shutil.rmtree(data_dir, ignore_errors=True)


def write_hour(olap: Olap, tag: str, traces: int) -> None:
    """`traces` traces of 4 generations each, started in the current hour (up to now)."""
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    span = max(1.0, (now - hour).total_seconds() - 1)
    for first in range(0, traces, 5_000):
        trs, obs = [], []
        for j in range(first, min(traces, first + 5_000)):
            t0 = hour + timedelta(seconds=span * (j % 9973) / 9973)
            tid = f"{tag}-{j}"
            trs.append(TraceEvent(PROJECT, tid, t0, timestamp=t0, name="busy", user_id=f"u{j % 500}"))
            for k in range(4):
                st = t0 + timedelta(milliseconds=10 * k)
                obs.append(ObservationEvent(
                    PROJECT, f"{tid}-{k}", tid, st, type="GENERATION", name=f"llm-{k}", start_time=st,
                    end_time=st + timedelta(milliseconds=200 + j % 700), model=("gpt-4o", "claude-3")[j % 2],
                    usage_details={"input": 100, "output": 20, "total": 120}, cost_details={"total": 0.001}))
        olap.insert_arrow("trace_events", traces_table(trs), projects=[PROJECT], keys=[t.id for t in trs])
        olap.insert_arrow("observation_events", observations_table(obs), projects=[PROJECT],
                          keys=[t.id for t in trs])


def busy_hour(olap: Olap, q: dict, start: datetime, end: datetime, traces: int, since: int, repeat: int) -> None:
    print(f"\nthe current hour of a busy project: {traces:,} traces ({traces * 4:,} observations), refreshed,"
          f" then {since:,} more traces written")
    t = time.perf_counter()
    write_hour(olap, "busy", traces)
    print(f"  written in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    (res,) = refresh_rollups(olap, PROJECT, settle=timedelta(0))
    print(f"  refresh ({res.obs_hours} observation hours, {res.trace_hours} trace hours) {time.perf_counter() - t:.2f} s")
    write_hour(olap, "since", since)
    rows: list[tuple[str, float, float, float]] = []
    measure("v2/metrics cost+p95 by model/day, dirty hour as served",
            lambda: metrics_query(olap, PROJECT, q), repeat, rows)
    measure("dashboard 30 days, dirty hour as served", lambda: dashboard(olap, PROJECT, start=start, end=end),
            repeat, rows)
    kept = rollups.stale_hours
    rollups.stale_hours = lambda *a, **kw: []  # every dirty hour merged raw
    try:
        measure("v2/metrics cost+p95 by model/day, dirty hour raw",
                lambda: metrics_query(olap, PROJECT, q), repeat, rows)
        measure("dashboard 30 days, dirty hour raw", lambda: dashboard(olap, PROJECT, start=start, end=end),
                repeat, rows)
    finally:
        rollups.stale_hours = kept
    t = time.perf_counter()
    (res,) = refresh_rollups(olap, PROJECT, settle=timedelta(0))
    print(f"  refresh of the hour written since ({res.obs_hours} observation hours, {res.trace_hours} trace hours:"
          f" the whole hour recomputed) {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main()
