"""Visibility benchmark: after the SDK's flush() returns, how long until its data is readable?

Against a real `owlscope serve` (started here, keys from LANGFUSE_INIT_*), the official langfuse v5
SDK sends N small traces one by one (a root span with a generation inside, then `flush()`). After
each flush returns, GET /api/public/traces/{id} is polled every 20 ms until the trace and both its
observations are there. Prints p50/p95/max of flush-return -> readable, and of flush() itself.

    python bench/visibility.py                          # N=50, the server's default flush interval
    python bench/visibility.py -n 200 --flush-interval-ms 50
    python bench/visibility.py --url http://127.0.0.1:3000   # a running server with the bench keys

The rows of a small request like this one (at most 50 spans) are inserted as soon as the worker
has them; only bulk requests wait for INGEST_FLUSH_INTERVAL_MS (default 500 ms). What this measures
is queue pickup, mapping and the insert.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

PK, SK = "pk-lf-visibility", "sk-lf-visibility"
POLL_S = 0.02


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(flush_interval_ms: int | None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OWLSCOPE_DATA_DIR": tempfile.mkdtemp(prefix="owlscope-visibility-"),
           "LANGFUSE_INIT_ORG_ID": "bench", "LANGFUSE_INIT_PROJECT_ID": "bench",
           "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK, "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK, "LOG_LEVEL": "warning"}
    if flush_interval_ms is not None:
        env["INGEST_FLUSH_INTERVAL_MS"] = str(flush_interval_ms)
    # cwd: `python -m` puts the working directory ahead of PYTHONPATH (a checkout would win over it)
    proc = subprocess.Popen([sys.executable, "-m", "owlscope.cli.main", "serve", "--port", str(port)], env=env,
                            cwd=env["OWLSCOPE_DATA_DIR"])
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/public/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("server did not start")
        time.sleep(0.1)


def wait_readable(client: httpx.Client, url: str, trace_id: str, n_obs: int, timeout: float = 30) -> float:
    """Poll every 20 ms; return the monotonic time at which the trace was complete."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"{url}/api/public/traces/{trace_id}")
        now = time.monotonic()
        if r.status_code == 200 and len(r.json()["observations"]) >= n_obs:
            return now
        if now > deadline:
            raise SystemExit(f"trace {trace_id} not readable after {timeout}s: {r.status_code} {r.text[:200]}")
        time.sleep(POLL_S)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def summary(label: str, seconds: list[float]) -> str:
    ms = [v * 1000 for v in seconds]
    return (f"{label}: p50 {pct(ms, 50):6.0f} ms   p95 {pct(ms, 95):6.0f} ms   max {max(ms):6.0f} ms   "
            f"mean {statistics.fmean(ms):6.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=50, help="traces to send (default 50)")
    ap.add_argument("--flush-interval-ms", type=int, help="INGEST_FLUSH_INTERVAL_MS of the started server")
    ap.add_argument("--url", help="use a running server instead of starting one (needs the bench keys)")
    args = ap.parse_args()

    proc = None
    url = args.url
    if not url:
        proc, url = start_server(args.flush_interval_ms)
    from langfuse import Langfuse

    # flush_interval high: only our explicit flush() sends, as in a short-lived script
    langfuse = Langfuse(public_key=PK, secret_key=SK, base_url=url, flush_interval=60)
    visible, flushes = [], []
    try:
        with httpx.Client(auth=(PK, SK), timeout=30) as client:
            for i in range(args.n + 1):  # the first trace warms up connections and is not counted
                with langfuse.start_as_current_observation(name=f"visibility-{i}", input={"i": i}) as root:
                    trace_id = root.trace_id
                    with langfuse.start_as_current_observation(name="llm", as_type="generation", model="gpt-4o",
                                                               usage_details={"input": 12, "output": 3}) as gen:
                        gen.update(output="ok")
                    root.update(output={"done": i})
                t0 = time.monotonic()
                langfuse.flush()
                flushed = time.monotonic()
                readable = wait_readable(client, url, trace_id, 2)
                if i:
                    flushes.append(flushed - t0)
                    visible.append(readable - flushed)
    finally:
        langfuse.shutdown()
        if proc:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)

    interval = args.flush_interval_ms or "default (200)"
    print(f"{args.n} traces, one by one, server flush interval {interval} ms, polled every {POLL_S * 1000:.0f} ms")
    print(summary("flush() -> readable", visible))
    print(summary("flush() itself     ", flushes))


if __name__ == "__main__":
    main()
