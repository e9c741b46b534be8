"""Insert cost benchmark: the engine's CPU per observation row, by variant of the insert.

    python bench/insert_cost.py                     # 20,000 rows, 3 rounds of every variant
    python bench/insert_cost.py --rows 50000 --rounds 5

Each variant gets a migrated database of its own in one embedded chDB directory; rows are
generations with 1.3 KB of input and 1.3 KB of output, inserted into `observation_events` in
2,000-row Arrow tables (the views fold them into `observations` and mark the rollups). Variants:

- `shipped`: `Olap.insert_arrow` as the worker calls it (`optimize_on_insert = 0`; the rows reach the
  engine as an Arrow stream file in its `tmp/` directory);
- `Python() table function`: the same insert reading the Arrow table from this process's memory
  through chDB's `Python()` table function (the shipped path before; it imports pandas);
- `optimize_on_insert=1`: shipped with the engine's default, which merges the rows of each new part
  that share a sort key before writing it;
- `no trace bounds`: shipped, without the view that keeps the per-trace bounds (migration 0008);
- `no rollup marks`: shipped, without the two rollup-mark views;
- `no views`: shipped, without any view (the rows go nowhere: Arrow to engine block only).

With `--traces`, trace rows (1.3 KB of input and of output) go into `trace_events` instead, and the
variants are those of the full-text index on `traces`: `shipped` (the text index of OLAP 0011),
`token bloom filter` (0004's index, which 0011 replaced) and `no text index`.

Prints this process's CPU time per row (the engine runs in it) and the wall time per row, per
round, rounds interleaved so that other work on the machine affects every variant alike.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import string
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402

from owlscope.config import load_settings  # noqa: E402
from owlscope.ingestion.rows import ObservationEvent, TraceEvent, observations_table, traces_table  # noqa: E402
from owlscope.storage.olap.client import Olap  # noqa: E402
from owlscope.storage.olap.migrate import migrate  # noqa: E402
from owlscope.tracing.model import TRACE_TEXT  # noqa: E402

BLOCK = 2_000
VARIANTS = ("shipped", "Python() table function", "optimize_on_insert=1", "no trace bounds", "no rollup marks", "no views")
TRACE_VARIANTS = ("shipped", "token bloom filter", "no text index")


def tables(n_rows: int, seed: int = 7) -> list[pa.Table]:
    rng = random.Random(seed)
    t0 = datetime.now(UTC)

    def text(n: int) -> str:
        return "".join(rng.choices(string.ascii_letters + " ", k=n))

    out = []
    for _ in range(max(1, n_rows // BLOCK)):
        rows = []
        for _ in range(BLOCK):
            st = t0 - timedelta(seconds=rng.random() * 3600)
            rows.append(ObservationEvent(
                project_id="bench", id=uuid.uuid4().hex[:16], trace_id=uuid.uuid4().hex, event_ts=st,
                type="GENERATION", name="llm", start_time=st, end_time=st + timedelta(seconds=1), level="DEFAULT",
                environment="default", input=text(1300), output=text(1300), metadata='{"a":"b"}', model="gpt-4o",
                model_parameters='{"temperature":0}', usage_details={"input": 10, "output": 20, "total": 30},
                cost_details={"input": 0.1, "output": 0.2, "total": 0.3}, provided_cost=False, internal_model_id="m"))
        out.append(observations_table(rows))
    return out


def trace_tables(n_rows: int, seed: int = 7) -> list[pa.Table]:
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(5_000)]
    t0 = datetime.now(UTC)

    def text() -> str:
        return " ".join(rng.choices(words, k=180))  # ~1.3 KB

    return [traces_table([TraceEvent("bench", uuid.uuid4().hex, t0, timestamp=t0 - timedelta(seconds=rng.random() * 3600),
                                     name="trace", input=text(), output=text()) for _ in range(BLOCK)])
            for _ in range(max(1, n_rows // BLOCK))]


def database(root: str, variant: str) -> Olap:
    olap = Olap(load_settings(data_dir=Path(root) / "data", clickhouse_url=f"chdb://{root}/chdb",
                              clickhouse_db=f"b_{uuid.uuid4().hex[:10]}"))
    migrate(olap)
    drop = {"no trace bounds": ("trace_bounds_mv",),
            "no rollup marks": ("rollup_marks_observations_mv", "rollup_touched_observations_mv"),
            "no views": ("observations_mv", "rollup_marks_observations_mv", "rollup_touched_observations_mv")}
    for view in drop.get(variant, ()):
        olap.command(f"DROP VIEW {{db}}.{view}")
    if variant in ("token bloom filter", "no text index"):
        olap.command("ALTER TABLE {db}.traces DROP INDEX idx_fts")
    if variant == "token bloom filter":
        olap.command(f"ALTER TABLE {{db}}.traces ADD INDEX idx_text {TRACE_TEXT} TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 1")
    return olap


def insert(olap: Olap, variant: str, table: str, data: pa.Table) -> None:
    if variant == "optimize_on_insert=1":
        olap.insert_arrow(table, data, settings={"optimize_on_insert": 1})
    elif variant == "Python() table function":
        arrow_table = data  # noqa: F841 - read by name by chDB's Python() table function
        columns = ", ".join(f"`{n}`" for n in data.schema.names)
        olap._chdb_conn().query(
            f"INSERT INTO {olap.database}.{table} ({columns}) SELECT {columns} FROM Python(arrow_table) "
            "SETTINGS max_insert_threads = 2, max_threads = 2, optimize_on_insert = 0")
    else:
        olap.insert_arrow(table, data)


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--traces", action="store_true", help="trace rows and the full-text index variants")
    args = ap.parse_args()
    variants = TRACE_VARIANTS if args.traces else VARIANTS
    table = "trace_events" if args.traces else "observation_events"
    root = tempfile.mkdtemp(prefix="owlscope-insert-cost-")
    print(f"building {args.rows:,} rows ...", flush=True)
    data = trace_tables(args.rows) if args.traces else tables(args.rows)
    n = sum(t.num_rows for t in data)
    keeper = Olap(load_settings(data_dir=Path(root) / "data", clickhouse_url=f"chdb://{root}/chdb"))
    keeper.query("SELECT 1")  # one connection open throughout: closing the last one restarts the engine
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'round':>5}  {'variant':<22} {'cpu µs/row':>10} {'wall µs/row':>11}")
    results: dict[str, list[float]] = {v: [] for v in variants}
    for rnd in range(1, args.rounds + 1):
        for variant in variants:
            olap = database(root, variant)
            c0, w0 = cpu(), time.perf_counter()
            for t in data:
                insert(olap, variant, table, t)
            c, w = cpu() - c0, time.perf_counter() - w0
            results[variant].append(c / n * 1e6)
            print(f"{rnd:>5}  {variant:<22} {c / n * 1e6:>10.1f} {w / n * 1e6:>11.1f}", flush=True)
            olap.command("DROP DATABASE {db}")
            olap.close()
    print("\nCPU µs per row, min–max over the rounds:")
    for variant, values in results.items():
        print(f"  {variant:<22} {min(values):6.1f} – {max(values):6.1f}")
    keeper.close()


if __name__ == "__main__":
    main()
