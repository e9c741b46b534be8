"""`owlscope backup` beside a running `owlscope serve` that keeps ingesting, then `owlscope restore`
into an empty data directory and a server started on it: counts verified, keys still valid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from e2e.test_cli_doctor_serving import PK, SK, start_serve, stop

from conftest import free_port


def batch(n: int, tag: str) -> list[dict]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    events = []
    for _ in range(n):
        tid = f"{tag}-{uuid.uuid4().hex}"
        events.append({"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": now,
                       "body": {"id": tid, "name": tag, "input": "q", "output": "a"}})
        events.append({"id": str(uuid.uuid4()), "type": "generation-create", "timestamp": now,
                       "body": {"id": f"g-{tid}", "traceId": tid, "name": "llm", "model": "gpt-4o-mini"}})
    return events


def total(url: str, name: str | None = None) -> int:
    params = {"limit": 1, **({"name": name} if name else {})}
    r = httpx.get(f"{url}/api/public/traces", params=params, auth=(PK, SK), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["meta"]["totalItems"]


def wait_total(url: str, expected: int, name: str | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (got := total(url, name)) != expected:
        assert time.monotonic() < deadline, f"{got} traces, expected {expected}"
        time.sleep(0.3)


def cli(*args: str, data: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "owlscope.cli.main", *args, "--data-dir", str(data)],
                          env={**os.environ, "OWLSCOPE_DATA_DIR": str(data)}, capture_output=True, text=True,
                          timeout=300)


def test_backup_while_serving_and_restore(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_serve(data, port)
    try:
        for _ in range(4):
            r = httpx.post(f"{url}/api/public/ingestion", json={"batch": batch(50, "before")},
                           auth=(PK, SK), timeout=30)
            assert r.status_code == 207
        wait_total(url, 200, "before")

        stop_writing = threading.Event()
        written = []

        def keep_ingesting() -> None:  # the server keeps accepting and inserting during the backup
            while not stop_writing.is_set():
                r = httpx.post(f"{url}/api/public/ingestion", json={"batch": batch(20, "during")},
                               auth=(PK, SK), timeout=30)
                written.append(r.status_code)
                time.sleep(0.05)

        writer = threading.Thread(target=keep_ingesting)
        writer.start()
        try:
            time.sleep(0.5)
            out = cli("backup", str(tmp_path / "backup"), data=data)
        finally:
            stop_writing.set()
            writer.join()
        assert out.returncode == 0, out.stderr
        assert f"written by the running owlscope serve (pid {proc.pid})" in out.stdout
        assert written and set(written) == {207}
        # the server is unharmed and still ingests
        r = httpx.post(f"{url}/api/public/ingestion", json={"batch": batch(1, "after")}, auth=(PK, SK), timeout=30)
        assert r.status_code == 207
    finally:
        stop(proc)

    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["online"] is True
    assert manifest["tables"]["traces"]["records"] >= 200
    assert manifest["tables"]["observations"]["records"] == manifest["tables"]["traces"]["records"]

    restored = tmp_path / "restored"
    out = cli("restore", str(tmp_path / "backup"), data=restored)
    assert out.returncode == 0, out.stderr
    assert "verified" in out.stdout
    again = cli("restore", str(tmp_path / "backup"), data=restored)
    assert again.returncode == 1 and "already holds an installation" in again.stderr

    port2 = free_port()
    proc = start_serve(restored, port2, SWEEPER_GRACE_SECONDS="3600")
    try:
        url2 = f"http://127.0.0.1:{port2}"
        # the OLAP copy as it was cut, read through the API with the same key (salt and secrets restored)
        assert total(url2) == manifest["tables"]["traces"]["records"]
        assert total(url2, "before") == 200
        assert total(url2, "after") == 0
    finally:
        stop(proc)


def test_backup_refuses_a_scale_out_setup(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "owlscope.cli.main", "backup", str(tmp_path / "b")],
                         env={**os.environ, "OWLSCOPE_DATA_DIR": str(tmp_path), "CLICKHOUSE_URL": "http://127.0.0.1:1"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "owlscope transfer" in out.stderr
    assert not (tmp_path / "b").exists()
