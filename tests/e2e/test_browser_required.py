"""Browser tests never skip silently where every backend is required (CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_browser_test(require: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OWLSCOPE_CHROMIUM": "/nonexistent/chromium", "OWLSCOPE_REQUIRE_BACKENDS": require}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "tests/e2e/test_browser_accounts.py::test_sign_up_onboard_and_create_api_key"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )


def test_missing_browser_fails_when_backends_are_required() -> None:
    out = _run_browser_test("1")
    assert out.returncode != 0, out.stdout
    assert "1 error" in out.stdout and "skipped" not in out.stdout
    assert "/nonexistent/chromium is missing" in out.stdout


def test_missing_browser_skips_otherwise() -> None:
    out = _run_browser_test("0")
    assert out.returncode == 0, out.stdout
    assert "1 skipped" in out.stdout
