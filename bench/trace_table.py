"""Traces-table benchmark: ~100,000 observations (25k traces × 4) in one project, embedded chDB.

    python bench/trace_table.py                     # fresh temp dir, load, measure, delete
    python bench/trace_table.py --traces 50000      # more
    python bench/trace_table.py --data-dir /tmp/b   # keep the data; a second run reuses it

Prints min/p50/p95 (ms) of the traces table (first page of 50) sorted by latency, cost and tokens,
the full-text search over input and output (one rare word, a common phrase), the same search with a
sort, and the sessions list sorted by cost, duration and trace count and searched by id. Data as
bench/read_api.py generates it. Nothing is asserted: the numbers are for reading.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from read_api import PROJECT, generate, measure  # noqa: E402

from owlscope.config import load_settings  # noqa: E402
from owlscope.storage.olap.client import Olap  # noqa: E402
from owlscope.storage.olap.migrate import migrate  # noqa: E402
from owlscope.tracing.sessions import list_session_table  # noqa: E402
from owlscope.tracing.trace_table import TraceFilters, list_trace_table  # noqa: E402

DATABASE = "bench_table"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--traces", type=int, default=25_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--data-dir", type=Path)
    args = ap.parse_args()
    tmp = args.data_dir or Path(tempfile.mkdtemp(prefix="owlscope-bench-table-"))
    # every read repeated here goes to the engine: the result cache would answer the repeats from memory
    settings = load_settings(data_dir=tmp, clickhouse_url=f"chdb://{tmp / 'chdb'}", clickhouse_db=DATABASE, chdb_result_cache_mb=0)
    olap = Olap(settings)
    try:
        migrate(olap)
        have = olap.query("SELECT count() FROM {db}.observations")[0][0]
        if not have:
            print(f"generating {args.traces:,} traces ({args.traces * 4:,} observations)", flush=True)
            generate(olap, args.traces, batch_obs=20_000)
            olap.command("OPTIMIZE TABLE {db}.traces FINAL")
            olap.command("OPTIMIZE TABLE {db}.observations FINAL")
        obs = olap.query("SELECT uniqExact(id) FROM {db}.observations")[0][0]
        print(f"{obs:,} observations\n")
        rare = f"#{args.traces // 2}"

        def table(order: str | None = None, **filters) -> object:
            return list_trace_table(olap, PROJECT, TraceFilters(**filters), order_by=order, limit=50)

        r = args.repeat
        measure("traces: newest first (baseline)", lambda: table(), r)
        for order in ("latency.desc", "latency.asc", "totalCost.desc", "totalTokens.desc"):
            measure(f"traces: sort {order}", lambda o=order: table(o), r)
        measure("traces: sort totalCost.desc, env=staging", lambda: table("totalCost.desc", environment=["staging"]), r)
        hits = len(table(search=rare, search_type="text").rows)
        measure(f"full text: rare word {rare!r} ({hits} hit)", lambda: table(search=rare, search_type="text"), r)
        measure("full text: common phrase 'lazy dog' (page of 50)",
                lambda: table(search="lazy dog", search_type="text"), r)
        measure(f"full text: {rare!r}, sorted by cost", lambda: table("totalCost.desc", search=rare,
                                                                     search_type="text"), r)
        for order in ("cost.desc", "duration.desc", "traces.desc"):
            measure(f"sessions: sort {order}", lambda o=order: list_session_table(olap, PROJECT, order_by=o), r)
        measure("sessions: search '00123'", lambda: list_session_table(olap, PROJECT, search="00123"), r)
    finally:
        olap.close()
        if args.data_dir is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
