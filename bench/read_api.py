"""Read-API benchmark: 1,000,000 observations (250k traces × 4) in one project, embedded chDB.

    python bench/read_api.py                      # fresh temp dir, load, measure, delete
    python bench/read_api.py --data-dir /tmp/b    # keep the data; a second run reuses it

Prints p50/p95 (ms) of the reads the public API and the UI make most: latest-50 traces, one trace
with its observations, a userId-filtered trace list, v2 observations latest-50 and a cursor page
deep in the list, the sessions list and the daily metrics.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from owlscope.config import load_settings  # noqa: E402
from owlscope.ingestion.rows import (  # noqa: E402
    ObservationEvent,
    ScoreEvent,
    TraceEvent,
    observations_table,
    scores_table,
    traces_table,
)
from owlscope.storage.olap.client import Olap  # noqa: E402
from owlscope.storage.olap.migrate import migrate  # noqa: E402

PROJECT = "bench-project"
DATABASE = "bench_read"
NAMES = ["chat", "rag-answer", "summarize", "classify", "agent-run", "extract", "translate", "qa"]
MODELS = [("gpt-4o", 2.5e-6, 1e-5), ("gpt-4o-mini", 1.5e-7, 6e-7), ("claude-3-5-sonnet-20241022", 3e-6, 1.5e-5)]
TAGS = ["prod", "beta", "experiment", "vip", "mobile", "web"]
TEXT = ("The quick brown fox jumps over the lazy dog while the model considers the retrieved context "
        "and composes a careful, well-structured answer for the user. ")


def _io(rng: random.Random, kind: str, i: int) -> str:
    n = rng.randint(1, 3)
    return '{"role": "%s", "content": "%s #%d"}' % (kind, (TEXT * n).strip(), i)


def generate(olap: Olap, traces: int, batch_obs: int = 50_000, seed: int = 7) -> None:
    """Insert `traces` traces with 4 observations each, in batches of `batch_obs` observations.

    (100k-observation batches exceed the embedded default of 1 GiB per query while the materialized
    view folds them; the worker flushes at 20k rows.)"""
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    span_s = 30 * 86400
    t_rows: list[TraceEvent] = []
    o_rows: list[ObservationEvent] = []
    s_rows: list[ScoreEvent] = []
    began = time.perf_counter()
    inserted = 0

    def flush() -> None:
        nonlocal t_rows, o_rows, s_rows, inserted
        olap.insert_arrow("trace_events", traces_table(t_rows))
        olap.insert_arrow("observation_events", observations_table(o_rows))
        olap.insert_arrow("scores", scores_table(s_rows))
        inserted += len(o_rows)
        rate = inserted / (time.perf_counter() - began)
        print(f"  {inserted:>9,} observations inserted ({rate:,.0f}/s incl. generation)", flush=True)
        t_rows, o_rows, s_rows = [], [], []

    for n in range(traces):
        tid = f"{rng.getrandbits(128):032x}"  # OTel-style random ids: every part spans the key range
        # Arrival follows time (as in production), with some jitter.
        ts = start + timedelta(seconds=(n + rng.random() * 50) / traces * span_s)
        ets = ts + timedelta(seconds=5)
        user = f"user-{rng.randint(1, 2000)}"
        session = f"sess-{n // 6:06d}"  # a session: a few consecutive traces
        name = rng.choice(NAMES)
        env = "production" if rng.random() < 0.8 else "staging"
        tags = rng.sample(TAGS, rng.randint(0, 2))
        # Two pieces per trace, as OTel spans carrying propagated attributes would send.
        t_rows.append(TraceEvent(PROJECT, tid, ets, timestamp=ts, root_name=name, environment=env,
                                 root_input=_io(rng, "user", n), root_output=_io(rng, "assistant", n)))
        t_rows.append(TraceEvent(PROJECT, tid, ets + timedelta(milliseconds=1), name=name, user_id=user,
                                 session_id=session, tags=tags, release="v1.%d" % rng.randint(0, 9),
                                 version="3", metadata='{"tier": "%s"}' % rng.choice(["free", "pro"])))
        oid = [f"{rng.getrandbits(64):016x}" for _ in range(4)]
        root = oid[0]
        total = rng.uniform(0.5, 8.0)
        model, pin, pout = rng.choice(MODELS)
        u_in, u_out = rng.randint(50, 4000), rng.randint(10, 800)
        gen_start = ts + timedelta(seconds=total * 0.1)
        gen_end = ts + timedelta(seconds=total * 0.9)
        o_rows.append(ObservationEvent(PROJECT, root, tid, ets, type="SPAN", name=name, start_time=ts,
                                       end_time=ts + timedelta(seconds=total), level="DEFAULT",
                                       environment=env, input=_io(rng, "user", n),
                                       output=_io(rng, "assistant", n), metadata='{"step": "root"}'))
        o_rows.append(ObservationEvent(
            PROJECT, oid[1], tid, ets, type="GENERATION", name="llm-call", parent_observation_id=root,
            start_time=gen_start, end_time=gen_end,
            completion_start_time=gen_start + timedelta(seconds=0.3), level="DEFAULT", environment=env,
            input=_io(rng, "user", n), output=_io(rng, "assistant", n), model=model,
            model_parameters='{"temperature": 0.2}',
            usage_details={"input": u_in, "output": u_out, "total": u_in + u_out},
            cost_details={"input": u_in * pin, "output": u_out * pout, "total": u_in * pin + u_out * pout},
            provided_cost=False, prompt_name="main-prompt", prompt_version=rng.randint(1, 5)))
        o_rows.append(ObservationEvent(
            PROJECT, oid[2], tid, ets, type="TOOL", name="search", parent_observation_id=root,
            start_time=ts + timedelta(seconds=total * 0.02), end_time=ts + timedelta(seconds=total * 0.08),
            level="ERROR" if rng.random() < 0.02 else "DEFAULT", environment=env,
            input='{"query": "q%d"}' % n, output=_io(rng, "tool", n)))
        o_rows.append(ObservationEvent(
            PROJECT, oid[3], tid, ets, type="EVENT", name="done", parent_observation_id=root,
            start_time=ts + timedelta(seconds=total), level="DEBUG", environment=env))
        if rng.random() < 0.3:
            s_rows.append(ScoreEvent(PROJECT, f"{rng.getrandbits(64):016x}", ets, ts, "quality", "NUMERIC", "EVAL",
                                     value=round(rng.random(), 3), trace_id=tid, environment=env))
        if len(o_rows) >= batch_obs:
            flush()
    if o_rows:
        flush()


def measure(label: str, fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    fn()  # warm: first call loads marks
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p50 = statistics.median(times)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    print(f"{label:<46} min {times[0]:7.1f}   p50 {p50:7.1f}   p95 {p95:7.1f} ms")
    return p50, p95


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="keep data here (reused when already loaded)")
    ap.add_argument("--traces", type=int, default=250_000)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--optimize", action="store_true",
                    help="merge every table into one part first (the long-run state of old data)")
    args = ap.parse_args()

    from owlscope import tracing

    own = args.data_dir is None
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="owlscope-bench-"))
    settings = load_settings(data_dir=data_dir, clickhouse_url=f"chdb://{data_dir / 'olap'}")
    olap = Olap(settings, database=DATABASE)
    try:
        migrate(olap)
        have = olap.query("SELECT count() FROM {db}.observations WHERE project_id = {p:String}", {"p": PROJECT})
        if not have[0][0]:
            print(f"loading {args.traces:,} traces / {args.traces * 4:,} observations into {data_dir}")
            t = time.perf_counter()
            generate(olap, args.traces)
            print(f"loaded in {time.perf_counter() - t:.1f} s")
        waited = time.perf_counter()
        while olap.query("SELECT count() FROM system.merges WHERE database = {d:String}", {"d": DATABASE})[0][0]:
            if time.perf_counter() - waited > 300:
                break
            time.sleep(1)  # measure the settled state, not reads racing background merges
        if args.optimize:
            for table in ("traces", "observations", "scores"):
                olap.command(f"OPTIMIZE TABLE {{db}}.{table} FINAL")
        counts = olap.query(
            "SELECT (SELECT uniqExact(id) FROM {db}.traces WHERE project_id = {p:String}),"
            " (SELECT count() FROM {db}.observations WHERE project_id = {p:String}),"
            " (SELECT count() FROM system.parts WHERE database = {d:String} AND active)",
            {"p": PROJECT, "d": DATABASE},
        )[0]
        print(f"traces {counts[0]:,}  observation rows {counts[1]:,}  active parts {counts[2]}")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work inflates the numbers)")

        latest = tracing.list_traces(olap, PROJECT, limit=50)
        some = latest["data"][10]
        user = some["userId"]
        deep = tracing.list_observations_v2(olap, PROJECT, limit=1000)
        cursor = deep["meta"]["cursor"]
        for _ in range(9):  # walk 10k observations into the list
            cursor = tracing.list_observations_v2(olap, PROJECT, limit=1000, cursor=cursor)["meta"]["cursor"]
        mid_ts = datetime.now(UTC) - timedelta(days=15)
        mid = tracing.list_observations_v2(olap, PROJECT, limit=1, to_start_time=mid_ts)["meta"]["cursor"]

        print(f"\n{'read (' + str(args.repeat) + ' runs each)':<46}")
        measure("latest-50 traces (GET /traces)", lambda: tracing.list_traces(olap, PROJECT, limit=50), args.repeat)
        measure("latest-50 traces, page 100", lambda: tracing.list_traces(olap, PROJECT, limit=50, page=100),
                args.repeat)
        measure("trace by id with observations + scores", lambda: tracing.get_trace(olap, PROJECT, some["id"]),
                args.repeat)
        measure("traces filtered by userId", lambda: tracing.list_traces(olap, PROJECT, user_id=user, limit=50),
                args.repeat)
        measure("v2 observations latest-50", lambda: tracing.list_observations_v2(olap, PROJECT, limit=50),
                args.repeat)
        measure("v2 observations cursor page 10k deep",
                lambda: tracing.list_observations_v2(olap, PROJECT, limit=50, cursor=cursor), args.repeat)
        measure("v2 observations cursor page mid-list (15 d)",
                lambda: tracing.list_observations_v2(olap, PROJECT, limit=50, cursor=mid), args.repeat)
        measure("v2 observations type=GENERATION +usage",
                lambda: tracing.list_observations_v2(olap, PROJECT, limit=50, type="GENERATION",
                                                     fields="core,basic,usage"), args.repeat)
        measure("sessions list (GET /sessions)", lambda: tracing.list_sessions(olap, PROJECT, limit=50),
                args.repeat)
        measure("metrics daily (30 days)", lambda: tracing.metrics_daily(olap, PROJECT, limit=50), args.repeat)
        measure("v2 scores latest-50", lambda: tracing.list_scores_v2(olap, PROJECT, limit=50), args.repeat)
        measure("v3 scores latest-50", lambda: tracing.list_scores_v3(olap, PROJECT, limit=50), args.repeat)
        query = {
            "view": "observations", "dimensions": [{"field": "providedModelName"}],
            "metrics": [{"measure": "totalCost", "aggregation": "sum"}, {"measure": "latency", "aggregation": "p95"}],
            "timeDimension": {"granularity": "day"},
            "fromTimestamp": (datetime.now(UTC) - timedelta(days=31)).isoformat(),
            "toTimestamp": datetime.now(UTC).isoformat(),
        }
        measure("v2 metrics: cost+p95 latency by model/day", lambda: tracing.metrics_v2(olap, PROJECT, query),
                args.repeat)
    finally:
        olap.close()
        if own:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
