"""`owlscope transfer`: an embedded installation (written by a real `owlscope serve`) copied into
PostgreSQL, ClickHouse over HTTP and S3, interrupted and resumed, verified by counts, then served
from the scale-out stores with the same API key."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from e2e.test_cli_backup import batch, wait_total
from e2e.test_cli_doctor_serving import PK, SK, start_serve, stop

from conftest import LiveServer, free_port, make_bucket
from owlscope.config import load_settings

TRACES = 1500


def test_transfer_resumes_and_serves_the_same_data(tmp_path: Path, pg_url: str, clickhouse_http_url: str,
                                                   s3_endpoint: str) -> None:
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_serve(data, port)
    try:
        for _ in range(TRACES // 250):
            r = httpx.post(f"{url}/api/public/ingestion", json={"batch": batch(250, "t")}, auth=(PK, SK), timeout=60)
            assert r.status_code == 207
        prompt = httpx.post(f"{url}/api/public/v2/prompts", auth=(PK, SK), timeout=30, json={
            "name": "greeting", "type": "text", "prompt": "Hello {{name}}", "labels": ["production"]})
        assert prompt.status_code in (200, 201), prompt.text
        wait_total(url, TRACES, "t", timeout=120)
    finally:
        stop(proc)

    bucket, db = make_bucket(s3_endpoint), f"transfer_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "OWLSCOPE_DATA_DIR": str(data), "S3_ENDPOINT": s3_endpoint,
           "S3_ACCESS_KEY_ID": "testing", "S3_SECRET_ACCESS_KEY": "testing", "S3_FORCE_PATH_STYLE": "true"}
    args = [sys.executable, "-m", "owlscope.cli.main", "transfer", "--to-db", pg_url, "--to-olap",
            clickhouse_http_url, "--to-olap-db", db, "--to-blob", f"s3://{bucket}", "--chunk-rows", "50"]

    # interrupted as soon as the first OLAP chunk is recorded
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = data / "transfer-state.json"
    deadline = time.monotonic() + 180
    while not state.exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL

    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    out = second.stdout
    assert "MISMATCH" not in out
    assert re.search(rf"\[ok\] olap\s+traces\s+{TRACES} -> {TRACES}", out), out
    assert re.search(rf"\[ok\] olap\s+observations\s+{TRACES} -> {TRACES}", out), out
    assert re.search(r"\[ok\] oltp\s+prompts\s+1 -> 1", out), out
    assert re.search(r"\[ok\] blobs blobs\s+(\d+) -> \1", out), out
    olap_rows = int(re.search(r"olap: (\d+) rows copied", out).group(1))
    assert olap_rows < 2 * TRACES, "the rerun copied everything again instead of resuming"
    assert "blobs [" in out or "blobs " in out  # progress was shown

    # the scale-out stores serve the same data, with the same key (the embedded salt carried over)
    settings = {k.lower(): v for k, v in (line.split("=", 1) for line in
                (data / "scale-out.env").read_text().splitlines())}
    for name in list(os.environ):
        if name in ("DATABASE_URL", "CLICKHOUSE_URL", "REDIS_URL", "BLOB_URL", "S3_BUCKET"):
            os.environ.pop(name)
    target = load_settings(
        data_dir=tmp_path / "web", database_url=settings["database_url"], clickhouse_url=settings["clickhouse_url"],
        clickhouse_db=settings["clickhouse_db"], blob_url=settings["blob_url"], s3_endpoint=s3_endpoint,
        s3_access_key_id="testing", s3_secret_access_key="testing", s3_force_path_style=True,
        salt=settings["salt"], session_secret=settings["session_secret"], encryption_key=settings["encryption_key"])
    with LiveServer(target, run_worker=False) as srv:
        r = httpx.get(f"{srv.url}/api/public/traces", params={"limit": 1, "name": "t"}, auth=(PK, SK), timeout=30)
        assert r.status_code == 200 and r.json()["meta"]["totalItems"] == TRACES
        p = httpx.get(f"{srv.url}/api/public/v2/prompts/greeting", auth=(PK, SK), timeout=30)
        assert p.status_code == 200 and p.json()["prompt"] == "Hello {{name}}"
