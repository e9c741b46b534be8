"""Growing up: `owlscope backup` and `owlscope transfer` on an embedded installation filled by a
real `owlscope serve` with OTLP spans (the requests of bench/ingest.py).

    python bench/transfer.py --spans 20000

Needs PostgreSQL (OWLSCOPE_TEST_PG_URL); starts the local S3 (moto) and the ClickHouse-over-HTTP
server from tests/fixtures. Prints the backup's time and size and the transfer's rows/s per store.
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

from ingest import PK, SK, _free_port, build_requests, wait_healthy  # noqa: E402

from fixtures.servers import create_s3_bucket, start_chdb_http_server, start_moto_s3, stop_process  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="owlscope-transfer-"))
    data, port = tmp / "data", _free_port()
    url = f"http://127.0.0.1:{port}"
    cli = [sys.executable, "-m", "owlscope.cli.main"]
    env = {**os.environ, "OWLSCOPE_DATA_DIR": str(data), "LANGFUSE_INIT_ORG_ID": "bench",
           "LANGFUSE_INIT_PROJECT_ID": "bench", "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK,
           "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK, "LOG_LEVEL": "warning"}
    serve = subprocess.Popen([*cli, "serve", "--port", str(port)], env=env)
    try:
        wait_healthy(url)
        headers = {"content-type": "application/x-protobuf", "content-encoding": "gzip",
                   "x-langfuse-sdk-version": "5.0.4"}
        with httpx.Client(auth=(PK, SK), timeout=60) as c:
            for body in build_requests(args.spans):
                c.post(f"{url}/api/public/otel/v1/traces", content=body, headers=headers).raise_for_status()
        time.sleep(3)
        started = time.monotonic()
        out = subprocess.run([*cli, "backup", str(tmp / "backup-online")], env=env, capture_output=True, text=True)
        print(f"backup while serving: {time.monotonic() - started:.1f}s  {out.stdout.strip().splitlines()[-1]}")
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)

    pg_admin = os.environ.get("OWLSCOPE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    db = f"owlscope_transfer_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    ch_proc, ch_port = start_chdb_http_server(tmp / "ch")
    s3_proc, s3 = start_moto_s3(tmp / "s3")
    create_s3_bucket(s3, "bench")
    try:
        tenv = {**env, "S3_ENDPOINT": s3, "S3_ACCESS_KEY_ID": "x", "S3_SECRET_ACCESS_KEY": "x",
                "S3_FORCE_PATH_STYLE": "true"}
        started = time.monotonic()
        out = subprocess.run([*cli, "transfer", "--to-db", pg_admin.rsplit("/", 1)[0] + f"/{db}",
                              "--to-olap", f"http://127.0.0.1:{ch_port}", "--to-blob", "s3://bench"],
                             env=tenv, capture_output=True, text=True)
        print(f"transfer: exit {out.returncode} in {time.monotonic() - started:.1f}s")
        for line in out.stdout.splitlines():
            if "rows copied" in line or "[" in line and "->" in line:
                print(line)
    finally:
        stop_process(ch_proc)
        stop_process(s3_proc)
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
