"""Steady load: what a server costs at a fixed rate of spans, not flooded.

    python bench/steady.py --rate 3000                       # 200-span requests, 60 s
    python bench/steady.py --rate 200 --per-request 20       # many clients exporting a few spans each
    python bench/steady.py --rate 3000 --env INGEST_FLUSH_INTERVAL_MS=200
    PYTHONPATH=/other/checkout python bench/steady.py ...    # another build, same load

Starts `owlscope serve` on a fresh data directory (started in it, so PYTHONPATH picks the build),
sends the OTLP requests of bench/ingest.py (4 realistic spans a trace, 1-2 KB of input and output)
at --rate spans/s in requests of --per-request spans from one client for --seconds, and prints, per
15-second window, the server's cores busy, its CPU per span and the inserts it made (from /metrics).
Every insert costs the engine a new part in each table it writes and the merges that fold it in,
so at a steady rate the number of inserts, not the number of spans, sets most of the cost.
At the end: the same over the whole run, the merge depth of the main tables (the mean number of
times a row was rewritten by a merge, from the engine's part levels) and whether every span sent
is readable.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from ingest import PK, SK, _cpu_seconds, _free_port, build_requests, count_observations, wait_healthy

_FLUSHES = re.compile(r'^owlscope_ingest_flush_duration_seconds_count(?:\{[^}]*\})? ([0-9.e+]+)$', re.M)


def inserts(c: httpx.Client, url: str) -> float:
    return sum(float(v) for v in _FLUSHES.findall(c.get(f"{url}/metrics").text))


def merge_depth(data_dir: str) -> list[tuple[str, int, int, float]]:
    """(table, parts, rows, rows' mean part level) of the tables most rows go to."""
    import chdb

    c = chdb.connect(str(Path(data_dir) / "olap"))
    try:
        out = c.query(
            "SELECT table, count(), sum(rows), sum(rows * level) / sum(rows) FROM system.parts WHERE active"
            " AND database != 'system' AND table IN ('observations', 'traces', 'trace_bounds', 'rollup_touched')"
            " GROUP BY table ORDER BY sum(rows) DESC", "TabSeparated")
        return [(t, int(p), int(r), float(lv)) for t, p, r, lv in (line.split("\t") for line in str(out).splitlines())]
    finally:
        c.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=3000, help="spans per second (default 3000)")
    ap.add_argument("--per-request", type=int, default=200, help="spans per request (default 200)")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="a setting of the server")
    args = ap.parse_args()

    n = args.rate * args.seconds + args.per_request
    print(f"building {n:,} spans in requests of {args.per_request} ...", flush=True)
    bodies = build_requests(n - n % 4, per_request=args.per_request)
    data_dir = tempfile.mkdtemp(prefix="owlscope-steady-")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OWLSCOPE_DATA_DIR": data_dir, "LANGFUSE_INIT_ORG_ID": "bench",
           "LANGFUSE_INIT_PROJECT_ID": "bench", "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK,
           "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK, "LOG_LEVEL": "warning"}
    env.update(kv.split("=", 1) for kv in args.env)
    proc = subprocess.Popen([sys.executable, "-m", "owlscope.cli.main", "serve", "--port", str(port)],
                            env=env, cwd=data_dir)
    headers = {"content-type": "application/x-protobuf", "content-encoding": "gzip",
               "x-langfuse-sdk-version": "5.0.4"}
    interval = args.per_request / args.rate
    sent = 0
    try:
        wait_healthy(url)
        with httpx.Client(auth=(PK, SK), timeout=60) as c:
            print(f"{args.rate:,} spans/s in requests of {args.per_request} for {args.seconds} s"
                  f" (load average before: {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores)")
            print(f"{'window':>9} {'cores busy':>11} {'µs CPU/span':>12} {'inserts/s':>10} {'behind':>7}")
            t0 = win_t = time.monotonic()
            cpu0 = win_cpu = _cpu_seconds(proc.pid)
            ins0 = win_ins = inserts(c, url)
            win_sent = 0
            i = 0
            while time.monotonic() - t0 < args.seconds and i < len(bodies):
                due = t0 + i * interval
                if (d := due - time.monotonic()) > 0:
                    time.sleep(d)
                r = c.post(f"{url}/api/public/otel/v1/traces", content=bodies[i], headers=headers)
                r.raise_for_status()
                i += 1
                sent += args.per_request
                if (now := time.monotonic()) - win_t >= 15:
                    cpu, ins = _cpu_seconds(proc.pid), inserts(c, url)
                    spans = sent - win_sent
                    print(f"{now - t0:>8.0f}s {(cpu - win_cpu) / (now - win_t):>11.2f}"
                          f" {(cpu - win_cpu) / max(1, spans) * 1e6:>12.0f} {(ins - win_ins) / (now - win_t):>10.1f}"
                          f" {now - due:>6.1f}s", flush=True)
                    win_t, win_cpu, win_ins, win_sent = now, cpu, ins, sent
            now = time.monotonic()
            cpu, ins = _cpu_seconds(proc.pid), inserts(c, url)
            print(f"{'all':>9} {(cpu - cpu0) / (now - t0):>11.2f} {(cpu - cpu0) / max(1, sent) * 1e6:>12.0f}"
                  f" {(ins - ins0) / (now - t0):>10.1f}   ({sent:,} spans sent)")
            deadline = time.monotonic() + 60
            while (seen := count_observations(c, url)) < sent and time.monotonic() < deadline:
                time.sleep(0.5)
            print(f"nothing lost: {'yes' if seen >= sent else 'NO'} ({seen:,} observations readable, {sent:,} sent)")
    finally:
        proc.terminate()
        proc.wait(30)
    print("merge depth (how many times a row was rewritten by merges, mean):")
    for table, parts, rows, level in merge_depth(data_dir):
        print(f"  {table:<15} {rows:>9,} rows in {parts:>3} parts, rewritten {level:.1f} times")


if __name__ == "__main__":
    main()
