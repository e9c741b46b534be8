"""Playground benchmark: what the playground adds to a streamed model call, through a real server.

    python bench/playground.py                 # 100 runs per series
    python bench/playground.py --runs 300 --columns 4

Starts `owlscope serve` in a subprocess on a free loopback port with a fresh data directory and a
headless user, and the deterministic OpenAI-compatible test server in this process (a 6-word
answer, streamed word by word). It adds an LLM connection through the public API, signs in, then
measures, from one client with keep-alive:
- direct: the `openai` client streaming from the test server (the floor);
- playground: POST /project/<id>/playground/run (decrypt the connection, call, stream the events
  as server-sent events, price, trace);
- side by side: `--columns` runs of the same messages at once, as the page sends them.
It prints p50/p95 (ms) of the time to the first token and to the end of the answer. The first 10
runs of each series warm up and are not counted. The server and its data directory are removed.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from prompts import free_port, start_server, wait_healthy  # noqa: E402  (bench/prompts.py)

from support.fake_openai import FakeOpenAI  # noqa: E402

PK, SK = "pk-lf-bench-prompts", "sk-lf-bench-prompts"
EMAIL, PASSWORD = "bench@example.com", "bench-password-123"
PROJECT = "proj-bench"
WARMUP = 10
MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "one two three four"}]


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else values[0]


def report(name: str, first: list[float], total: list[float]) -> None:
    print(f"{name:<28} first token p50 {pct(first, 50):7.1f} ms  p95 {pct(first, 95):7.1f} ms   "
          f"answer p50 {pct(total, 50):7.1f} ms  p95 {pct(total, 95):7.1f} ms   (n={len(total)})")


def direct(base_url: str) -> tuple[float, float]:
    client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)
    start = time.perf_counter()
    first = None
    for chunk in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    end = time.perf_counter()
    return ((first or end) - start) * 1000, (end - start) * 1000


def playground(client: httpx.Client, token: str) -> tuple[float, float]:
    body = {"messages": MESSAGES, "model": {"provider": "bench", "model": "gpt-4o"}}
    start = time.perf_counter()
    first = None
    with client.stream("POST", f"/project/{PROJECT}/playground/run", json=body,
                       headers={"X-CSRF-Token": token}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if first is None and line == "event: delta":
                first = time.perf_counter()
            if line == "event: error":
                raise SystemExit("a run failed")
    end = time.perf_counter()
    return ((first or end) - start) * 1000, (end - start) * 1000


def sign_in(url: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=url, timeout=60)
    page = client.get("/auth/sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/auth/sign-in", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303, r.text
    page = client.get(f"/project/{PROJECT}/playground")
    assert page.status_code == 200, page.text
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text).group(1)
    return client, token


def series(name: str, runs: int, call) -> None:
    results = [call() for _ in range(runs + WARMUP)][WARMUP:]
    report(name, [r[0] for r in results], [r[1] for r in results])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--columns", type=int, default=4)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="owlscope-bench-playground-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    os.environ.update(LANGFUSE_INIT_USER_EMAIL=EMAIL, LANGFUSE_INIT_USER_PASSWORD=PASSWORD)  # the server's env
    proc = start_server(data_dir, port, None)
    try:
        with FakeOpenAI() as llm:
            wait_healthy(url, proc)
            auth = "Basic " + base64.b64encode(f"{PK}:{SK}".encode()).decode()
            r = httpx.put(f"{url}/api/public/llm-connections", headers={"Authorization": auth}, json={
                "provider": "bench", "adapter": "openai", "secretKey": "sk-bench-0123456789",
                "baseURL": llm.base_url})
            r.raise_for_status()
            client, token = sign_in(url)
            series("direct (openai client)", args.runs, lambda: direct(llm.base_url))
            series("playground run", args.runs, lambda: playground(client, token))

            def side_by_side() -> tuple[float, float]:
                with ThreadPoolExecutor(args.columns) as pool:
                    got = list(pool.map(lambda _: playground(client, token), range(args.columns)))
                return max(g[0] for g in got), max(g[1] for g in got)

            series(f"{args.columns} columns at once (slowest)", max(10, args.runs // args.columns), side_by_side)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
