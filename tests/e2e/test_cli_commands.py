"""`owlscope migrate`, `doctor` and `init` as users run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "owlscope.cli.main", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)


def test_doctor_migrate_init_on_embedded_storage(tmp_path: Path) -> None:
    env = {"OWLSCOPE_DATA_DIR": str(tmp_path / "data")}
    before = _run(["doctor"], env)
    assert before.returncode == 1  # nothing migrated yet
    assert "run `owlscope migrate`" in before.stdout
    migrated = _run(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert "OLTP: now at" in migrated.stdout and "OLAP: up to date" in migrated.stdout
    assert "0001_traces_observations_scores [####################]" in migrated.stdout  # progress
    after = _run(["doctor"], env)
    assert after.returncode == 0, after.stdout
    for seam in ("oltp", "olap", "queue", "blob"):
        assert f"[ok] {seam}" in after.stdout
    assert "SQLite" in after.stdout and "chDB (embedded)" in after.stdout and "migrated" in after.stdout
    refused = _run(["init", "--email", "a@example.com", "--password", "x"], env)
    assert refused.returncode == 1  # as the sign-up form refuses it
    assert "The password must have at least 8 characters" in refused.stderr
    assert "LANGFUSE_SECRET_KEY" not in refused.stdout
    init = _run(["init", "--org-name", "Acme", "--project-name", "Chat", "--email", "a@example.com",
                 "--password", "correct horse battery"], env)
    assert init.returncode == 0, init.stderr
    assert "LANGFUSE_PUBLIC_KEY=pk-lf-" in init.stdout and "LANGFUSE_SECRET_KEY=sk-lf-" in init.stdout
    assert "a@example.com (OWNER)" in init.stdout


def test_doctor_reports_each_seam_of_a_scale_out_setup(tmp_path: Path, pg_url: str, redis_url: str,
                                                       s3_endpoint: str, clickhouse_http_url: str) -> None:
    from conftest import make_bucket

    env = {
        "OWLSCOPE_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": pg_url, "CLICKHOUSE_URL": clickhouse_http_url,
        "CLICKHOUSE_DB": f"doctor_{tmp_path.name[-6:]}".replace("-", "_"), "REDIS_URL": redis_url,
        "S3_BUCKET": make_bucket(s3_endpoint), "S3_ENDPOINT": s3_endpoint, "S3_ACCESS_KEY_ID": "testing",
        "S3_SECRET_ACCESS_KEY": "testing", "S3_FORCE_PATH_STYLE": "true", "SALT": "s", "SESSION_SECRET": "t",
    }
    assert _run(["migrate"], env).returncode == 0
    out = _run(["doctor"], env)
    assert out.returncode == 0, out.stdout
    assert "postgresql" in out.stdout and "PostgreSQL" in out.stdout
    assert "ClickHouse" in out.stdout and "redis" in out.stdout and "s3://" in out.stdout
    assert "(scale-out mode)" in out.stdout


def test_doctor_reports_every_bad_setting_at_once(tmp_path: Path) -> None:
    out = _run(["doctor"], {"OWLSCOPE_DATA_DIR": str(tmp_path), "DATABASE_URL": "postgresql://u@127.0.0.1:1/x"})
    assert out.returncode == 1
    assert "SALT" in out.stdout and "SESSION_SECRET" in out.stdout and "openssl rand" in out.stdout
