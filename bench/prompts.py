"""Prompt fetch benchmark: GET /api/public/v2/prompts/{name}?label=... through a real server.

    python bench/prompts.py                         # embedded `owlscope serve`, in-process cache
    python bench/prompts.py --redis-url redis://127.0.0.1:6379/14   # the Redis prompt cache
    python bench/prompts.py --requests 5000

Starts `owlscope serve` in a subprocess on a free loopback port with a fresh data directory,
creates a few prompts (text, chat, a folder name, one composed of two others), then sends the
GETs from one httpx client with keep-alive, rotating over the prompts, and prints p50/p95/p99 (ms)
of the label fetches (the cached path the SDKs use) and, for comparison, of `resolve=false`
fetches (which always read the database). The first 200 requests of each series warm up and are
not counted. The server and its data directory are removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx

PK, SK = "pk-lf-bench-prompts", "sk-lf-bench-prompts"
AUTH = "Basic " + base64.b64encode(f"{PK}:{SK}".encode()).decode()
WARMUP = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int, redis_url: str | None) -> subprocess.Popen:
    env = {
        **os.environ, "OWLSCOPE_DATA_DIR": str(data_dir), "LANGFUSE_INIT_ORG_ID": "org-bench",
        "LANGFUSE_INIT_PROJECT_ID": "proj-bench", "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK,
        "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK, "LOG_LEVEL": "warning",
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return subprocess.Popen(
        [sys.executable, "-m", "owlscope.cli.main", "serve", "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early:\n{proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/api/public/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not become healthy")


def seed(client: httpx.Client) -> list[str]:
    bodies = [
        {"name": "summarize", "prompt": "Summarize {{text}} in {{n}} words.", "labels": ["production"],
         "config": {"model": "gpt-4o", "temperature": 0.2}, "tags": ["docs"]},
        {"name": "team/support/triage", "type": "chat", "labels": ["production"], "prompt": [
            {"role": "system", "content": "You triage support tickets for {{product}}."},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{ticket}}"}]},
        {"name": "shared/tone", "prompt": "Be concise and friendly.", "labels": ["production"]},
        {"name": "shared/format", "prompt": "Answer in Markdown.", "labels": ["production"]},
        {"name": "composed", "labels": ["production"],
         "prompt": "@@@langfusePrompt:name=shared/tone|label=production@@@ "
                   "@@@langfusePrompt:name=shared/format|label=production@@@ Question: {{q}}"},
    ]
    for body in bodies:
        for _ in range(3):  # a few versions each; the last one carries `production`
            r = client.post("/api/public/v2/prompts", json=body)
            r.raise_for_status()
    return [b["name"] for b in bodies]


def measure(client: httpx.Client, names: list[str], n: int, params: dict[str, str]) -> list[float]:
    paths = [f"/api/public/v2/prompts/{quote(name, safe='')}" for name in names]
    times: list[float] = []
    for i in range(n + WARMUP):
        path = paths[i % len(paths)]
        t0 = time.perf_counter()
        r = client.get(path, params=params)
        elapsed = (time.perf_counter() - t0) * 1000
        if r.status_code != 200:
            raise SystemExit(f"GET {path} -> {r.status_code}: {r.text}")
        if i >= WARMUP:
            times.append(elapsed)
    return times


def report(label: str, times: list[float]) -> None:
    q = statistics.quantiles(times, n=100, method="inclusive")
    print(f"{label:<34} n={len(times):>5}  p50={q[49]:6.2f} ms  p95={q[94]:6.2f} ms  "
          f"p99={q[98]:6.2f} ms  mean={statistics.fmean(times):6.2f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000, help="measured GETs per series (default 2000)")
    ap.add_argument("--redis-url", help="use the Redis prompt cache (REDIS_URL) instead of the in-process one")
    args = ap.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="owlscope-bench-prompts-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(data_dir, port, args.redis_url)
    try:
        wait_healthy(url, proc)
        with httpx.Client(base_url=url, headers={"Authorization": AUTH}, timeout=10) as client:
            names = seed(client)
            mode = "redis" if args.redis_url else "in-process"
            print(f"owlscope serve on {url}, {len(names)} prompts, prompt cache: {mode}")
            report("GET ?label=production (cached)", measure(client, names, args.requests, {"label": "production"}))
            report("GET (default label, cached)", measure(client, names, args.requests, {}))
            report("GET ?resolve=false (database)", measure(client, names, args.requests, {"resolve": "false"}))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
