"""Scale-out: `owlscope web` ×2 and `owlscope worker` as separate processes on PostgreSQL,
ClickHouse over HTTP, Redis and S3, all started at once (they migrate under a lock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from conftest import free_port, make_bucket

PK, SK = "pk-lf-scale-out", "sk-lf-scale-out"


def test_two_web_processes_and_a_worker_share_the_work(tmp_path: Path, pg_url: str, redis_url: str,
                                                        s3_endpoint: str, clickhouse_http_url: str) -> None:
    env = {
        **os.environ, "DATABASE_URL": pg_url, "CLICKHOUSE_URL": clickhouse_http_url,
        "CLICKHOUSE_DB": f"scale_{uuid.uuid4().hex[:8]}", "REDIS_URL": redis_url,
        "QUEUE_NAME": f"scale-{uuid.uuid4().hex[:8]}", "S3_BUCKET": make_bucket(s3_endpoint),
        "S3_ENDPOINT": s3_endpoint, "S3_ACCESS_KEY_ID": "testing", "S3_SECRET_ACCESS_KEY": "testing",
        "S3_FORCE_PATH_STYLE": "true", "SALT": "scale-salt", "SESSION_SECRET": "scale-session",
        "LANGFUSE_INIT_ORG_ID": "org-scale", "LANGFUSE_INIT_PROJECT_ID": "proj-scale",
        "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK, "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK,
        "INGEST_FLUSH_INTERVAL_MS": "50",
    }
    ports = [free_port(), free_port()]
    procs = [
        subprocess.Popen([sys.executable, "-m", "owlscope.cli.main", "web", "--port", str(p),
                          "--data-dir", str(tmp_path / f"web{i}")], env=env)
        for i, p in enumerate(ports)
    ]
    procs.append(subprocess.Popen([sys.executable, "-m", "owlscope.cli.main", "worker",
                                   "--data-dir", str(tmp_path / "worker")], env=env))
    try:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        # three processes importing and migrating at once take over 100 s on a loaded 2-core machine
        deadline = time.monotonic() + 240
        for url in urls:
            while True:
                assert all(p.poll() is None for p in procs), "a process exited during startup"
                try:
                    if httpx.get(f"{url}/api/public/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "web did not become healthy"
                time.sleep(0.2)
        now = "2026-02-01T00:00:00.000Z"
        batch = [{"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": now,
                  "body": {"id": f"so-{i}", "name": "scale-out", "timestamp": now}} for i in range(40)]
        # Half through each web process; reads through the other one.
        for i, url in enumerate(urls):
            r = httpx.post(f"{url}/api/public/ingestion", json={"batch": batch[i::2]}, auth=(PK, SK))
            assert r.status_code == 207 and len(r.json()["successes"]) == 20
        total = -1
        while time.monotonic() < deadline + 30:
            r = httpx.get(f"{urls[1]}/api/public/traces", params={"name": "scale-out", "limit": 100},
                          auth=(PK, SK))
            total = r.json()["meta"]["totalItems"] if r.status_code == 200 else -1
            if total == 40:
                break
            time.sleep(0.2)
        assert total == 40
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                assert p.wait(timeout=30) == 0
            except subprocess.TimeoutExpired:
                p.kill()
                raise
