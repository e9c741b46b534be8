"""The container image as people run it: built by `.ci/container` (podman, from a Debian base made
with debootstrap, since public base images cannot be pulled here) and named by OWLSCOPE_TEST_IMAGE.
Runs `serve` (the default), checks the non-root user, the health check and the role arguments,
and sends a trace with the official langfuse SDK that is then read back through the API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from conftest import free_port

IMAGE = os.environ.get("OWLSCOPE_TEST_IMAGE")
pytestmark = pytest.mark.skipif(not IMAGE or not shutil.which("podman"),
                                reason="no image to test: set OWLSCOPE_TEST_IMAGE (see .ci/container)")
# This machine runs podman with runc and without raising resource limits (no CAP_SYS_RESOURCE).
RUN = ["podman", "run", "--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
PK, SK = "pk-lf-container", "sk-lf-container"

SDK_SCRIPT = """
from langfuse import get_client, observe

@observe(name="container-smoke")
def answer(question):
    @observe(name="lookup", as_type="generation")
    def lookup(q):
        return "42"
    return {"trace": get_client().get_current_trace_id(), "answer": lookup(question)}

out = answer("meaning of life")
get_client().flush()
print(out["trace"])
"""


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def container():
    port, name = free_port(), f"owlscope-test-{uuid.uuid4().hex[:8]}"
    started = subprocess.run([*RUN, "-d", "--name", name, "--network", "host", "-e", f"PORT={port}",
                              "-e", "LANGFUSE_INIT_ORG_ID=org-c", "-e", "LANGFUSE_INIT_PROJECT_ID=proj-c",
                              "-e", f"LANGFUSE_INIT_PROJECT_PUBLIC_KEY={PK}", "-e", f"LANGFUSE_INIT_PROJECT_SECRET_KEY={SK}",
                              IMAGE], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/api/public/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, podman("logs", name).stderr[-3000:]
            time.sleep(0.5)
        yield name, url
    finally:
        podman("rm", "-f", name)


def test_image_serves_the_sdk_as_a_non_root_user(container) -> None:
    name, url = container
    assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
    assert podman("exec", name, "owlscope", "healthcheck").returncode == 0
    config = podman("image", "inspect", IMAGE, "--format",
                    "{{.Config.Entrypoint}} {{.Config.Cmd}} {{.Config.Healthcheck.Test}}").stdout
    assert "[owlscope] [serve]" in config and "healthcheck" in config

    env = {**os.environ, "LANGFUSE_PUBLIC_KEY": PK, "LANGFUSE_SECRET_KEY": SK, "LANGFUSE_HOST": url,
           "LANGFUSE_BASE_URL": url}
    sent = subprocess.run([sys.executable, "-c", SDK_SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert sent.returncode == 0, sent.stderr
    trace_id = sent.stdout.strip().splitlines()[-1]
    deadline = time.monotonic() + 30
    while True:
        r = httpx.get(f"{url}/api/public/traces/{trace_id}", auth=(PK, SK), timeout=10)
        if r.status_code == 200 and len(r.json()["observations"]) == 2:
            break
        assert time.monotonic() < deadline, r.text
        time.sleep(0.3)
    body = r.json()
    assert body["name"] == "container-smoke"
    assert {o["name"] for o in body["observations"]} == {"container-smoke", "lookup"}
    assert "42" in str(body["output"])
    # the image leaves out libraries nothing in it loads (Dockerfile); a backup of the running
    # server, another path through the engine and Arrow, works without them
    missing = podman("exec", name, "python3", "-c", "import importlib.util as u; "
                     "print(sorted(m for m in ('pandas', 'numpy') if u.find_spec(m) is None))")
    assert missing.stdout.strip() == "['numpy', 'pandas']", missing.stdout + missing.stderr
    backup = podman("exec", name, "owlscope", "backup", "/data/backup-1", timeout=300)
    assert backup.returncode == 0 and "traces 1" in backup.stdout, backup.stdout + backup.stderr


def test_role_is_chosen_by_argument() -> None:
    # `web` and `worker` need a ClickHouse server: without one they explain and exit 1.
    for role in ("web", "worker"):
        r = subprocess.run([*RUN, "--rm", IMAGE, role], capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and "needs a ClickHouse server" in r.stderr + r.stdout, r.stderr
    version = subprocess.run([*RUN, "--rm", IMAGE, "--version"], capture_output=True, text=True, timeout=120)
    assert version.stdout.startswith("owlscope ")
