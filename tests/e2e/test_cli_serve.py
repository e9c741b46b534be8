"""`owlscope serve` as users run it: a real process on a loopback port."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import free_port

PK, SK = "pk-lf-cli-test", "sk-lf-cli-test"
AUTH = "Basic " + base64.b64encode(f"{PK}:{SK}".encode()).decode()


def _start(data_dir: Path, port: int) -> subprocess.Popen:
    env = {
        **os.environ, "OWLSCOPE_DATA_DIR": str(data_dir), "LANGFUSE_INIT_ORG_ID": "org-cli",
        "LANGFUSE_INIT_PROJECT_ID": "proj-cli", "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK,
        "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK, "INGEST_FLUSH_INTERVAL_MS": "2000",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "owlscope.cli.main", "serve", "--port", str(port)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            r = httpx.get(f"{url}/api/public/health", timeout=1)
            if r.status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("serve did not become healthy")


def _trace_batch(n: int) -> list[dict]:
    now = "2026-01-01T00:00:00.000Z"
    return [
        {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": now,
         "body": {"id": f"cli-trace-{i}", "name": "cli", "timestamp": now, "userId": "u"}}
        for i in range(n)
    ]


def test_serve_is_healthy_fast_and_sigterm_keeps_accepted_data(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _start(tmp_path / "data", port)
    try:
        took = _wait_healthy(url, proc)
        assert took < 20
        health = httpx.get(f"{url}/api/public/health").json()
        assert health["status"] == "OK" and health["version"]
        assert httpx.get(f"{url}/api/public/projects").status_code == 401
        projects = httpx.get(f"{url}/api/public/projects", headers={"Authorization": AUTH}).json()
        assert projects["data"][0]["id"] == "proj-cli"
        # The flush interval is 2 s: SIGTERM right after the answer must still keep these events.
        r = httpx.post(f"{url}/api/public/ingestion", json={"batch": _trace_batch(25)},
                       headers={"Authorization": AUTH})
        assert r.status_code == 207 and len(r.json()["successes"]) == 25
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    proc = _start(tmp_path / "data", port)
    try:
        _wait_healthy(url, proc)
        deadline = time.monotonic() + 20
        total = -1
        while time.monotonic() < deadline:
            r = httpx.get(f"{url}/api/public/traces", params={"limit": 100}, headers={"Authorization": AUTH})
            if r.status_code == 200:
                total = r.json()["meta"]["totalItems"]
                if total == 25:
                    break
            time.sleep(0.2)
        assert total == 25
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_invalid_configuration_is_reported_at_once_and_exits_non_zero(tmp_path: Path) -> None:
    env = {**os.environ, "OWLSCOPE_DATA_DIR": str(tmp_path), "PORT": "x", "ENCRYPTION_KEY": "abc",
           "DATABASE_URL": "mysql://nope"}
    r = subprocess.run([sys.executable, "-m", "owlscope.cli.main", "serve"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    for name in ("PORT", "ENCRYPTION_KEY", "DATABASE_URL"):
        assert name in r.stderr
    assert "fix:" in r.stderr


@pytest.mark.parametrize("cmd", ["web", "worker"])
def test_scale_out_commands_refuse_embedded_chdb(tmp_path: Path, cmd: str) -> None:
    env = {**os.environ, "OWLSCOPE_DATA_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "owlscope.cli.main", cmd], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and "CLICKHOUSE_URL" in r.stderr
