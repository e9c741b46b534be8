"""Ingestion benchmark: OTLP spans from request to queryable, against a real `owlscope serve`.

Each trace is four realistic spans, as the SDK sends them: a root span, a retriever, an LLM
generation with 1–2 KB of input and output, and a tool call. Requests carry 512 spans (the SDK's
export batch), gzip-compressed, from C concurrent clients.

    python bench/ingest.py --spans 20000 --clients 4
    python bench/ingest.py --spans 100000 --clients 4
    python bench/ingest.py --spans 20000 --clients 4 --grpc   # the same over OTLP/gRPC
    python bench/ingest.py --spans 20000 --masking all --pii  # every masking detector on, PII in the text

Prints accepted spans/s (client side), the time until every span is queryable through the API,
end-to-end spans/s, and the server's peak memory (VmHWM).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

PK, SK = "pk-lf-bench", "sk-lf-bench"
WORDS = ("the quick brown fox jumps over a lazy dog while retrieval augmented generation answers "
         "questions about invoices refunds shipping policies and account settings").split()


def _kv(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _text(rng: random.Random, size: int) -> str:
    out, n = [], 0
    while n < size:
        w = rng.choice(WORDS)
        out.append(w)
        n += len(w) + 1
    return " ".join(out)


# Personal data a support chat carries (with --pii): every detector has something to replace.
PII = (" my email is grace.hopper@navy-example.org and my card 4111 1111 1111 1111, call +1 415 555 2671"
       " from 10.20.30.40 with key sk-proj-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1 ")


def _trace_spans(rng: random.Random, t0: int, user: int, pii: bool = False) -> list[Span]:
    trace_id = rng.randbytes(16)
    root_id, ret_id, gen_id, tool_id = (rng.randbytes(8) for _ in range(4))
    common = [_kv("user.id", f"user-{user}"), _kv("session.id", f"session-{user % 500}"),
              _kv("langfuse.trace.name", "support-chat"), _kv("langfuse.environment", "production")]
    question = _text(rng, 200) + (PII if pii else "")
    prompt = '[{"role": "system", "content": "Answer from the context."}, {"role": "user", "content": "' + \
        _text(rng, rng.randint(1000, 2000)) + '"}]'
    answer = '{"role": "assistant", "content": "' + _text(rng, rng.randint(1000, 2000)) + '"}'
    ms = 1_000_000

    def span(sid: bytes, parent: bytes | None, name: str, start: int, end: int, attrs: list[KeyValue]) -> Span:
        return Span(trace_id=trace_id, span_id=sid, parent_span_id=parent or b"", name=name,
                    start_time_unix_nano=start, end_time_unix_nano=end, kind=Span.SPAN_KIND_INTERNAL,
                    attributes=common + attrs)

    return [
        span(root_id, None, "support-chat", t0, t0 + 900 * ms, [
            _kv("langfuse.observation.type", "span"), _kv("langfuse.observation.input", f'"{question}"'),
            _kv("langfuse.observation.output", '"done"')]),
        span(ret_id, root_id, "search-docs", t0 + 5 * ms, t0 + 80 * ms, [
            _kv("langfuse.observation.type", "retriever"), _kv("langfuse.observation.input", f'"{question}"'),
            _kv("langfuse.observation.output", '["doc-1", "doc-7", "doc-9"]')]),
        span(gen_id, root_id, "llm", t0 + 90 * ms, t0 + 800 * ms, [
            _kv("langfuse.observation.type", "generation"), _kv("langfuse.observation.model.name", "gpt-4o"),
            _kv("langfuse.observation.input", prompt), _kv("langfuse.observation.output", answer),
            _kv("langfuse.observation.usage_details", '{"input": 850, "output": 320}'),
            _kv("langfuse.observation.model.parameters", '{"temperature": 0.2}')]),
        span(tool_id, root_id, "create-ticket", t0 + 810 * ms, t0 + 880 * ms, [
            _kv("langfuse.observation.type", "tool"), _kv("langfuse.observation.input", '{"priority": "high"}'),
            _kv("langfuse.observation.output", '{"ticket": 42}')]),
    ]


def build_requests(n_spans: int, per_request: int = 512, seed: int = 7, pii: bool = False) -> list[bytes]:
    rng = random.Random(seed)
    spans: list[Span] = []
    t0 = time.time_ns() - 3600 * 10**9
    for i in range(n_spans // 4):
        spans.extend(_trace_spans(rng, t0 + i * 10**6, i % 2000, pii))
    bodies = []
    resource = Resource(attributes=[_kv("service.name", "bench")])
    scope = InstrumentationScope(name="langfuse-sdk", version="5.0.4")
    for i in range(0, len(spans), per_request):
        req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=spans[i:i + per_request])])])
        bodies.append(gzip.compress(req.SerializeToString(), compresslevel=1))
    return bodies


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def wait_healthy(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/api/public/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not become healthy")
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--url", help="use a running server instead of starting one (needs the bench keys)")
    ap.add_argument("--grpc", action="store_true", help="send over OTLP/gRPC (the server's --otlp-grpc-port)")
    ap.add_argument("--grpc-target", help="host:port of a running server's gRPC receiver (with --url)")
    ap.add_argument("--masking", default="", metavar="DETECTORS",
                    help="MASKING_DETECTORS of the started server (e.g. all, all:hash; default: none)")
    ap.add_argument("--pii", action="store_true", help="put an e-mail, card, phone, IP and API key in every question")
    args = ap.parse_args()

    print(f"building {args.spans} spans{' with PII' if args.pii else ''} ...", flush=True)
    bodies = build_requests(args.spans, pii=args.pii)
    payload_mb = sum(map(len, bodies)) / 1e6
    print(f"{len(bodies)} requests, {payload_mb:.1f} MB gzip", flush=True)

    proc = None
    data_dir = tempfile.mkdtemp(prefix="owlscope-bench-")
    url = args.url
    if not url:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "OWLSCOPE_DATA_DIR": data_dir, "LANGFUSE_INIT_ORG_ID": "bench",
               "LANGFUSE_INIT_PROJECT_ID": "bench", "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK,
               "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK, "LOG_LEVEL": "warning", "MASKING_DETECTORS": args.masking}
        grpc_port = _free_port()
        args.grpc_target = f"127.0.0.1:{grpc_port}"
        proc = subprocess.Popen([sys.executable, "-m", "owlscope.cli.main", "serve", "--port", str(port),
                                 "--otlp-grpc-port", str(grpc_port)], env=env)
        wait_healthy(url)

    auth = (PK, SK)
    headers = {"content-type": "application/x-protobuf", "content-encoding": "gzip",
               "x-langfuse-sdk-version": "5.0.4"}
    todo = list(range(len(bodies)))
    lock = threading.Lock()
    retries = [0]
    done_spans = [0]

    def grpc_client() -> None:
        import grpc

        metadata = (("authorization", "Basic " + base64.b64encode(f"{PK}:{SK}".encode()).decode()),
                    ("x-langfuse-sdk-version", "5.0.4"))
        with grpc.insecure_channel(args.grpc_target, compression=grpc.Compression.Gzip) as channel:
            export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                raw = gzip.decompress(bodies[i])  # gRPC compresses the message itself
                while True:
                    try:
                        export(raw, metadata=metadata, timeout=60)
                        break
                    except grpc.RpcError as exc:
                        if exc.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
                            raise
                        with lock:
                            retries[0] += 1
                        time.sleep(1)
                with lock:
                    done_spans[0] += 512

    def client() -> None:
        if args.grpc:
            return grpc_client()
        with httpx.Client(auth=auth, timeout=60) as c:
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                while True:
                    r = c.post(f"{url}/api/public/otel/v1/traces", content=bodies[i], headers=headers)
                    if r.status_code in (429, 503):
                        with lock:
                            retries[0] += 1
                        time.sleep(float(r.headers.get("retry-after", "1")))
                        continue
                    r.raise_for_status()
                    break
                with lock:
                    done_spans[0] += 512

    start = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted_at = time.monotonic()
    n = args.spans
    print(f"accepted {n} spans over {'gRPC' if args.grpc else 'HTTP'} in {accepted_at - start:.2f}s: "
          f"{n / (accepted_at - start):,.0f} spans/s ({retries[0]} retries after 429/503)", flush=True)

    last = -1
    with httpx.Client(auth=auth, timeout=30) as c:
        while True:
            r = c.get(f"{url}/api/public/v2/metrics", params={"query": (
                '{"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}], '
                '"fromTimestamp": "2000-01-01T00:00:00Z", "toTimestamp": "2100-01-01T00:00:00Z"}')})
            count = int(r.json()["data"][0]["count_count"]) if r.status_code == 200 and r.json()["data"] else 0
            if count >= n:
                break
            if count != last:
                last = count
            if time.monotonic() - accepted_at > 600:
                print(f"gave up: {count} of {n} queryable")
                break
            time.sleep(0.1)
    queryable_at = time.monotonic()
    print(f"all queryable {queryable_at - accepted_at:.2f}s after the last request was accepted")
    print(f"end to end: {n / (queryable_at - start):,.0f} spans/s (request to queryable)")
    if proc:
        print(f"server peak memory: {_peak_rss_mb(proc.pid):,.0f} MB")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
