"""Scale-out sizing: `owlscope web` and `owlscope worker` as separate processes on PostgreSQL,
ClickHouse over HTTP, Redis and S3, fed OTLP spans (the same requests as bench/ingest.py).

    python bench/scale_out.py --spans 8000 --workers 1

Needs PostgreSQL and Redis (OWLSCOPE_TEST_PG_URL, OWLSCOPE_TEST_REDIS_URL); starts the local S3
(moto) and the ClickHouse-over-HTTP server from tests/fixtures. Prints accepted spans/s, spans/s
until queryable (what the workers sustain), and each process's peak memory (VmHWM).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from ingest import PK, SK, _free_port, _peak_rss_mb, build_requests, wait_healthy  # noqa: E402

from fixtures.servers import create_s3_bucket, start_chdb_http_server, start_moto_s3, stop_process  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=8000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2, help="WORKER_THREADS per worker")
    args = ap.parse_args()
    pg_admin = os.environ.get("OWLSCOPE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis = os.environ.get("OWLSCOPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    tmp = Path(tempfile.mkdtemp(prefix="owlscope-scale-"))
    db = f"owlscope_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    ch_proc, ch_port = start_chdb_http_server(tmp / "ch")
    s3_proc, s3 = start_moto_s3(tmp / "s3")
    create_s3_bucket(s3, "bench")
    port = _free_port()
    env = {**os.environ, "OWLSCOPE_DATA_DIR": str(tmp / "data"), "DATABASE_URL": pg_admin.rsplit("/", 1)[0] + f"/{db}",
           "CLICKHOUSE_URL": f"http://127.0.0.1:{ch_port}", "REDIS_URL": redis, "QUEUE_NAME": db,
           "S3_BUCKET": "bench", "S3_ENDPOINT": s3, "S3_ACCESS_KEY_ID": "x", "S3_SECRET_ACCESS_KEY": "x",
           "S3_FORCE_PATH_STYLE": "true", "SALT": "bench", "SESSION_SECRET": "bench", "LOG_LEVEL": "warning",
           "LANGFUSE_INIT_ORG_ID": "bench", "LANGFUSE_INIT_PROJECT_ID": "bench",
           "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK, "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK,
           "PORT": str(port), "WORKER_THREADS": str(args.threads)}
    cli = [sys.executable, "-m", "owlscope.cli.main"]
    subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
    web = subprocess.Popen([*cli, "web"], env=env)
    url = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = [web]
    try:
        wait_healthy(url)
        bodies = build_requests(args.spans)
        headers = {"content-type": "application/x-protobuf", "content-encoding": "gzip",
                   "x-langfuse-sdk-version": "5.0.4"}
        # accept everything first (no worker yet), then measure the workers alone on the backlog
        start = time.monotonic()
        with httpx.Client(auth=(PK, SK), timeout=60) as c:
            for body in bodies:
                c.post(f"{url}/api/public/otel/v1/traces", content=body, headers=headers).raise_for_status()
        accepted = time.monotonic() - start
        print(f"web accepted {args.spans} spans in {accepted:.1f}s: {args.spans / accepted:,.0f} spans/s "
              f"(one web process, one client)")
        started = time.monotonic()
        workers = [subprocess.Popen([*cli, "worker"], env=env) for _ in range(args.workers)]
        procs += workers
        query = ('{"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}], '
                 '"fromTimestamp": "2000-01-01T00:00:00Z", "toTimestamp": "2100-01-01T00:00:00Z"}')
        first: tuple[float, int] | None = None
        with httpx.Client(auth=(PK, SK), timeout=30) as c:
            while True:
                r = c.get(f"{url}/api/public/v2/metrics", params={"query": query})
                data = r.json().get("data") if r.status_code == 200 else None
                count = int(data[0]["count_count"]) if data else 0
                if count and first is None:
                    first = (time.monotonic(), count)
                if count >= args.spans:
                    break
                if time.monotonic() - started > 900:
                    raise SystemExit("gave up waiting for the workers")
                time.sleep(0.2)
        took = time.monotonic() - started
        print(f"{args.workers} worker(s) x {args.threads} threads made {args.spans} spans queryable in {took:.1f}s "
              f"(including worker start-up): {args.spans / took:,.0f} spans/s, "
              f"{args.spans / took / args.workers:,.0f} per worker")
        if first is not None and first[1] < args.spans:
            steady = (args.spans - first[1]) / (time.monotonic() - first[0])
            print(f"after the first rows were visible: {steady:,.0f} spans/s, {steady / args.workers:,.0f} per worker "
                  f"(start-up excluded)")
        print(f"peak memory: web {_peak_rss_mb(web.pid):,.0f} MB, workers "
              + ", ".join(f"{_peak_rss_mb(w.pid):,.0f} MB" for w in workers))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        stop_process(ch_proc)
        stop_process(s3_proc)
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
