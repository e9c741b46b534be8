"""Media upload benchmark against a real `owlscope serve`: the SDK's three steps (POST
/api/public/media, PUT the bytes to the upload URL, PATCH the result), then a download.

    python bench/media.py                          # 1 MB x 20 and 20 MB x 5, 2 clients
    python bench/media.py --sizes 1,20,100 --count 4 --clients 4

Uses the blob store the environment configures (a local directory by default; set BLOB_URL or
S3_* to measure S3 presigned uploads). Prints upload and download MB/s per size, and the latency
of health requests sent while uploads are in flight (the event loop must stay responsive).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import httpx

PK, SK = "pk-lf-bench", "sk-lf-bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(max_mb: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OWLSCOPE_DATA_DIR": tempfile.mkdtemp(prefix="owlscope-bench-media-"),
           "LANGFUSE_INIT_ORG_ID": "bench", "LANGFUSE_INIT_PROJECT_ID": "bench",
           "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK, "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK, "LOG_LEVEL": "warning",
           "MEDIA_MAX_MB": str(max_mb)}
    proc = subprocess.Popen([sys.executable, "-m", "owlscope.cli.main", "serve", "--port", str(port)], env=env)
    deadline = time.monotonic() + 180  # a busy machine starts slowly
    while True:
        try:
            if httpx.get(f"{url}/api/public/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("server did not start")
        time.sleep(0.1)


def upload(client: httpx.Client, url: str, data: bytes, content_type: str = "application/octet-stream") -> str:
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    r = client.post(f"{url}/api/public/media", json={
        "traceId": "bench", "field": "input", "contentType": content_type, "contentLength": len(data),
        "sha256Hash": sha})
    r.raise_for_status()
    ticket = r.json()
    started = time.monotonic()
    put = httpx.put(ticket["uploadUrl"], content=data, headers={"Content-Type": content_type}, timeout=300)
    put.raise_for_status()
    client.patch(f"{url}/api/public/media/{ticket['mediaId']}", json={
        "uploadedAt": "2026-01-01T00:00:00Z", "uploadHttpStatus": put.status_code,
        "uploadTimeMs": int((time.monotonic() - started) * 1000)}).raise_for_status()
    return ticket["mediaId"]


def run(url: str, size_mb: float, count: int, clients: int) -> None:
    size = int(size_mb * 1024 * 1024)
    print(f"preparing {count} x {size_mb:g} MB ...", flush=True)
    blobs = [os.urandom(size) for _ in range(count)]
    todo = list(range(count))
    ids: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    health: list[float] = []

    def worker() -> None:
        with httpx.Client(auth=(PK, SK), timeout=300) as client:
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                media_id = upload(client, url, blobs[i])
                with lock:
                    ids.append(media_id)
                    print(f"\r  uploaded {len(ids)}/{count}", end="", flush=True)

    def probe() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                t = time.monotonic()
                client.get(f"{url}/api/public/ready").raise_for_status()
                health.append(time.monotonic() - t)
                time.sleep(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - start
    stop.set()
    prober.join()
    total_mb = size * count / 1024 / 1024
    print(f"\r{count} x {size_mb:g} MB uploaded in {took:.2f}s: {total_mb / took:,.1f} MB/s "
          f"({count / took:.1f} files/s, {clients} clients)")
    if health:
        ordered = sorted(health)
        print(f"  health during uploads: {len(health)} requests, median {statistics.median(health) * 1000:.1f} ms, "
              f"p95 {ordered[int(len(ordered) * 0.95) - 1] * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms")
    start = time.monotonic()
    with httpx.Client(auth=(PK, SK), timeout=300) as client:
        for media_id in ids:
            info = client.get(f"{url}/api/public/media/{media_id}").json()
            body = httpx.get(info["url"], timeout=300).content
            assert len(body) == size
    took = time.monotonic() - start
    print(f"  downloaded in {took:.2f}s: {total_mb / took:,.1f} MB/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1,20", help="file sizes in MB, comma-separated")
    ap.add_argument("--count", type=int, default=0, help="files per size (default: 20 for <=1 MB, else 5)")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--url", help="use a running server instead of starting one (needs the bench keys)")
    args = ap.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    proc = None
    url = args.url
    if not url:
        proc, url = start_server(max_mb=int(max(sizes)) + 1)
    try:
        for size in sizes:
            run(url, size, args.count or (20 if size <= 1 else 5), args.clients)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
