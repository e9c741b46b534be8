"""`owlscope doctor` beside a running `owlscope serve` on the same data directory (chDB allows one
process per directory: doctor asks the server instead of opening it), and serve's JSON logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import free_port

PK, SK = "pk-lf-doctor", "sk-lf-doctor"


def start_serve(data_dir: Path, port: int, **env: str) -> subprocess.Popen:
    full = {**os.environ, "OWLSCOPE_DATA_DIR": str(data_dir), "LANGFUSE_INIT_ORG_ID": "org-d",
            "LANGFUSE_INIT_PROJECT_ID": "proj-d", "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK,
            "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK, **env}
    proc = subprocess.Popen([sys.executable, "-m", "owlscope.cli.main", "serve", "--port", str(port)], env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, f"serve exited early:\n{proc.stderr.read()}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/public/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "serve did not become healthy"
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    return err


def doctor(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "owlscope.cli.main", "doctor", *args],
                          env={**os.environ, "OWLSCOPE_DATA_DIR": str(data_dir)},
                          capture_output=True, text=True, timeout=180)


def test_doctor_asks_the_running_server_and_serve_logs_json(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    proc = start_serve(data, port, LOG_FORMAT="json")
    try:
        out = doctor(data)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Cannot lock" not in out.stdout
        assert f"held by owlscope serve (pid {proc.pid})" in out.stdout
        assert f"[ok] server http://127.0.0.1:{port} (owlscope serve, pid {proc.pid}) healthy" in out.stdout
        assert "0 job(s) queued" in out.stdout
        # the server keeps serving after doctor ran beside it
        r = httpx.get(f"http://127.0.0.1:{port}/api/public/projects", auth=(PK, SK), timeout=10)
        assert r.status_code == 200
    finally:
        err = stop(proc)
    assert proc.returncode == 0
    records = [json.loads(line) for line in err.splitlines() if line.strip()]  # every line is JSON
    messages = [r["message"] for r in records]
    assert any(m.startswith("listening on http://127.0.0.1") for m in messages)
    assert any("migrated empty ->" in m for m in messages)
    assert not [r for r in records if r["logger"].startswith("alembic")]  # no per-plugin or per-revision lines
    assert len(records) <= 10, [r["logger"] + ": " + r["message"] for r in records]
    assert {"ts", "level", "logger", "message"} <= set(records[0])

    # once serve has stopped, doctor opens the embedded store itself again
    after = doctor(data)
    assert after.returncode == 0, after.stdout
    assert "chDB (embedded)" in after.stdout and "held by" not in after.stdout and "[ok] server" not in after.stdout


def test_doctor_reports_a_server_that_is_down(tmp_path: Path) -> None:
    out = doctor(tmp_path / "data", "--url", f"http://127.0.0.1:{free_port()}")
    assert out.returncode == 1
    assert "[FAIL] server" in out.stdout and "not answering" in out.stdout
