"""Ingestion benchmark: OTLP spans from request to queryable, against a real `owlscope serve`.

Each trace is four realistic spans, as the SDK sends them: a root span (a question in, a 1–2 KB
answer out), a retriever, an LLM generation with 1–2 KB of input and output, and a tool call; the
bench prints the mean input + output per span. Requests carry --per-request spans (default 200),
gzip-compressed, from C concurrent clients.

    python bench/ingest.py --spans 20000 --clients 4              # a burst
    python bench/ingest.py --spans 1000000 --clients 4            # sustained
    python bench/ingest.py --spans 20000 --visibility             # + SDK flush() -> readable during the burst
    python bench/ingest.py --spans 20000 --clients 4 --grpc       # the same over OTLP/gRPC
    python bench/ingest.py --spans 20000 --masking all --pii      # every masking detector on, PII in the text
    python bench/ingest.py --spans 300000 --trace-metadata        # trace metadata on every span (propagate_attributes)

Prints accepted spans/s (client side), the time from the end of the send until the last span is
readable through the API, request-to-queryable spans/s, whether every span sent is readable
(nothing lost), the server's peak memory (VmHWM) and CPU, and where the server's time went per
pipeline stage (µs per span, from its /metrics stage counters). With --visibility, an SDK client
sends a small trace, calls flush() and polls until it is readable, over and over while the burst
is accepted and processed, and the p50/p95 of flush() -> readable are printed.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import os
import pickle
import random
import re
import signal
import socket
import statistics
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


_CORPUS: list[str] = []


def _text(rng: random.Random, size: int) -> str:
    """About `size` characters of words: a slice of a fixed 2 MB text of random words, at a random
    word boundary (fast enough for a million spans, and no more compressible than fresh words)."""
    if not _CORPUS:
        words_rng = random.Random(12345)
        _CORPUS.append(" ".join(words_rng.choice(WORDS) for _ in range(300_000)))
    corpus = _CORPUS[0]
    start = corpus.find(" ", rng.randrange(len(corpus) - size - 100)) + 1
    end = corpus.find(" ", start + size)
    return corpus[start:end]


# Personal data a support chat carries (with --pii): every detector has something to replace.
PII = (" my email is grace.hopper@navy-example.org and my card 4111 1111 1111 1111, call +1 415 555 2671"
       " from 10.20.30.40 with key sk-proj-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1 ")


def _trace_spans(rng: random.Random, t0: int, user: int, pii: bool = False,
                 trace_metadata: bool = False) -> list[Span]:
    trace_id = rng.randbytes(16)
    root_id, ret_id, gen_id, tool_id = (rng.randbytes(8) for _ in range(4))
    common = [_kv("user.id", f"user-{user}"), _kv("session.id", f"session-{user % 500}"),
              _kv("langfuse.trace.name", "support-chat"), _kv("langfuse.environment", "production")]
    if trace_metadata:  # as the v5 SDK's propagate_attributes(metadata=...) sets it on every span
        common += [_kv("langfuse.trace.metadata.tenant", f'"tenant-{user % 40}"'),
                   _kv("langfuse.trace.metadata.plan", '"enterprise"'),
                   _kv("langfuse.trace.metadata.request_id", f'"req-{trace_id.hex()[:12]}"')]
    question = _text(rng, 200) + (PII if pii else "")
    prompt = '[{"role": "system", "content": "Answer from the context."}, {"role": "user", "content": "' + \
        _text(rng, rng.randint(1000, 2000)) + '"}]'
    reply = _text(rng, rng.randint(1000, 2000))
    answer = '{"role": "assistant", "content": "' + reply + '"}'
    ms = 1_000_000

    def span(sid: bytes, parent: bytes | None, name: str, start: int, end: int, attrs: list[KeyValue]) -> Span:
        return Span(trace_id=trace_id, span_id=sid, parent_span_id=parent or b"", name=name,
                    start_time_unix_nano=start, end_time_unix_nano=end, kind=Span.SPAN_KIND_INTERNAL,
                    attributes=common + attrs)

    return [
        span(root_id, None, "support-chat", t0, t0 + 900 * ms, [
            _kv("langfuse.observation.type", "span"), _kv("langfuse.observation.input", f'"{question}"'),
            _kv("langfuse.observation.output", f'"{reply}"')]),
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


def _io_bytes(span: Span) -> int:
    return sum(len(kv.value.string_value) for kv in span.attributes
               if kv.key in ("langfuse.observation.input", "langfuse.observation.output"))


def build_requests(n_spans: int, per_request: int = 200, seed: int = 7, pii: bool = False,
                   stats: dict | None = None, trace_metadata: bool = False) -> list[bytes]:
    """gzip-compressed OTLP export requests of `per_request` spans, `n_spans` in all (a multiple
    of four: whole traces). `stats`, when given, receives the mean input + output bytes per span."""
    rng = random.Random(seed)
    resource = Resource(attributes=[_kv("service.name", "bench")])
    scope = InstrumentationScope(name="langfuse-sdk", version="5.0.4")
    t0 = time.time_ns() - 3600 * 10**9
    bodies: list[bytes] = []
    spans: list[Span] = []
    io = [0, 0]

    def emit(chunk: list[Span]) -> None:
        req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=chunk)])])
        bodies.append(gzip.compress(req.SerializeToString(), compresslevel=1))

    for i in range(n_spans // 4):
        for sp in _trace_spans(rng, t0 + i * 10**6, i % 2000, pii, trace_metadata):
            io[0] += _io_bytes(sp)
            io[1] += 1
            spans.append(sp)
        while len(spans) >= per_request:
            emit(spans[:per_request])
            del spans[:per_request]
    if spans:
        emit(spans)
    if stats is not None:
        stats["io_bytes_per_span"] = io[0] / max(1, io[1])
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


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def wait_healthy(url: str, timeout: float = 600) -> None:
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


# --- the server's stage counters ------------------------------------------------------------------

_STAGE_RE = re.compile(r'^owlscope_ingest_stage_(seconds|items)_total\{([^}]*)\} ([0-9.e+-]+)$', re.M)
STAGE_ROWS = (
    # (stage, what it covers)
    ("accept", "web: the OTLP request handler, body read to answer (wall)"),
    ("accept_decode", "  of which: decompress, parse, validate"),
    ("accept_store", "  of which: blob write + enqueue"),
    ("queue_wait", "accepted -> a worker starts the job (wait, not work)"),
    ("read", "worker: blob read (only when not handed over in process)"),
    ("decode", "worker: decode the blob (only when not handed over)"),
    ("map", "map spans to rows + clamp"),
    ("price", "enrich: prompt links, model match, cost"),
    ("buffer_wait", "rows buffered -> flush starts (wait, not work)"),
    ("arrow", "Arrow build"),
    ("insert", "chDB insert"),
    ("finish", "move blobs to processed/"),
    ("hooks", "after-flush hooks (experiments, evaluator triggers)"),
)
WAIT_STAGES = ("queue_wait", "buffer_wait")


def stage_counters(url: str) -> dict[tuple[str, str], float]:
    """{(stage, "wall"|"cpu"|"items"): value} from the server's /metrics."""
    try:
        text = httpx.get(f"{url}/metrics", timeout=30).text
    except httpx.HTTPError:
        return {}
    out: dict[tuple[str, str], float] = {}
    for kind, labels, value in _STAGE_RE.findall(text):
        lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        out[(lab["stage"], lab.get("clock", "items") if kind == "seconds" else "items")] = float(value)
    for name, value in re.findall(r"^owlscope_olap_result_cache_(hits|misses)_total (\S+)$", text, re.M):
        out[("result_cache", name)] = float(value)
    return out


def print_stage_table(before: dict, after: dict, spans: int, wall: float, cpu: float) -> None:
    def d(stage: str, kind: str) -> float:
        return after.get((stage, kind), 0.0) - before.get((stage, kind), 0.0)

    print(f"\nwhere the server's time went, per span ({spans} spans; wall includes waiting for the GIL"
          " and for I/O, cpu is the stage's own thread CPU time):")
    print(f"  {'stage':<14} {'wall µs/span':>13} {'cpu µs/span':>12}  covers")
    work_cpu: dict[str, float] = {}
    for stage, covers in STAGE_ROWS:
        w, c = d(stage, "wall"), d(stage, "cpu")
        if stage in WAIT_STAGES:
            blobs_or_rows = "per blob" if stage == "queue_wait" else "per buffered blob"
            print(f"  {stage:<14} {'':>13} {'':>12}  {covers}: total {w:,.1f} s ({blobs_or_rows} sum)")
            continue
        if stage in ("accept_decode", "accept_store", "read", "decode") and not w:
            if stage in ("read", "decode"):
                print(f"  {stage:<14} {0:>13.1f} {0:>12.1f}  {covers}")
            continue
        cpu_txt = f"{c / spans * 1e6:12.1f}" if stage != "accept" else f"{'':>12}"
        print(f"  {stage:<14} {w / spans * 1e6:13.1f} {cpu_txt}  {covers}")
        if stage not in ("accept",):
            work_cpu[stage] = c
    total = sum(work_cpu.values())
    print(f"  {'sum of stages':<14} {'':>13} {total / spans * 1e6:12.1f}  (cpu; the rest of the process: HTTP, "
          "polling, merges)")
    if cpu == cpu:
        print(f"  server process: {cpu / spans * 1e6:,.1f} µs CPU per span, {cpu / wall:.2f} cores busy on average "
              f"over {wall:.1f} s")
    if work_cpu:
        bound = max(work_cpu, key=work_cpu.get)
        print(f"  largest stage: {bound} ({work_cpu[bound] / max(total, 1e-9):.0%} of the stages' CPU)")


# --- visibility probe during the burst ------------------------------------------------------------


class VisibilityProbe(threading.Thread):
    """SDK-style small trace + flush(), then poll until readable; repeated until stopped."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.visible: list[float] = []
        self.flushes: list[float] = []
        self.stop = threading.Event()
        self.error: str | None = None
        self.polls = 0  # reads of a probe trace, each until it is readable

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by the bench
            self.error = repr(exc)

    def _run(self) -> None:
        from langfuse import Langfuse

        lf = Langfuse(public_key=PK, secret_key=SK, base_url=self.url, flush_interval=60)
        i = 0
        try:
            with httpx.Client(auth=(PK, SK), timeout=30) as client:
                while not self.stop.is_set():
                    with lf.start_as_current_observation(name=f"visibility-{i}", input={"i": i}) as root:
                        trace_id = root.trace_id
                        with lf.start_as_current_observation(name="llm", as_type="generation", model="gpt-4o",
                                                             usage_details={"input": 12, "output": 3}) as gen:
                            gen.update(output="ok")
                        root.update(output={"done": i})
                    t0 = time.monotonic()
                    lf.flush()
                    flushed = time.monotonic()
                    while True:
                        r = client.get(f"{self.url}/api/public/traces/{trace_id}")
                        self.polls += 1
                        if r.status_code == 200 and len(r.json()["observations"]) >= 2:
                            break
                        if time.monotonic() - flushed > 120:
                            raise RuntimeError(f"trace {trace_id} not readable after 120 s")
                        time.sleep(0.02)
                    if i:  # the first one warms up the connections
                        self.flushes.append(flushed - t0)
                        self.visible.append(time.monotonic() - flushed)
                    i += 1
        finally:
            lf.shutdown()


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))] if s else float("nan")


# --- the run ---------------------------------------------------------------------------------------


def count_observations(c: httpx.Client, url: str) -> int:
    r = c.get(f"{url}/api/public/v2/metrics", params={"query": (
        '{"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}], '
        '"fromTimestamp": "2000-01-01T00:00:00Z", "toTimestamp": "2100-01-01T00:00:00Z"}')})
    return int(r.json()["data"][0]["count_count"]) if r.status_code == 200 and r.json()["data"] else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--per-request", type=int, default=200, help="spans per request (default 200)")
    ap.add_argument("--url", help="use a running server instead of starting one (needs the bench keys)")
    ap.add_argument("--grpc", action="store_true", help="send over OTLP/gRPC (the server's --otlp-grpc-port)")
    ap.add_argument("--grpc-target", help="host:port of a running server's gRPC receiver (with --url)")
    ap.add_argument("--masking", default="", metavar="DETECTORS",
                    help="MASKING_DETECTORS of the started server (e.g. all, all:hash; default: none)")
    ap.add_argument("--pii", action="store_true", help="put an e-mail, card, phone, IP and API key in every question")
    ap.add_argument("--trace-metadata", action="store_true",
                    help="trace metadata on every span, as propagate_attributes(metadata=...) sends it")
    ap.add_argument("--visibility", action="store_true",
                    help="probe SDK flush() -> readable repeatedly while the burst is processed")
    ap.add_argument("--cache-dir", help="keep the built requests in this directory and reuse them next time")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="an extra setting for the started server (repeatable)")
    args = ap.parse_args()

    print(f"building {args.spans} spans{' with PII' if args.pii else ''} ...", flush=True)
    stats: dict = {}
    cached = Path(args.cache_dir) / \
        f"ingest-{args.spans}-{args.per_request}-{int(args.pii)}-{int(args.trace_metadata)}.pickle" \
        if args.cache_dir else None
    if cached and cached.exists():
        stats, bodies = pickle.loads(cached.read_bytes())
    else:
        bodies = build_requests(args.spans, per_request=args.per_request, pii=args.pii, stats=stats,
                                trace_metadata=args.trace_metadata)
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(pickle.dumps((stats, bodies)))
    payload_mb = sum(map(len, bodies)) / 1e6
    print(f"{len(bodies)} requests of {args.per_request} spans, {payload_mb:.1f} MB gzip, "
          f"{stats['io_bytes_per_span']:,.0f} bytes of input + output per span on average", flush=True)
    try:
        print(f"load average before the run: {' '.join(Path('/proc/loadavg').read_text().split()[:3])} "
              f"({os.cpu_count()} cores)", flush=True)
    except OSError:
        pass

    proc = None
    data_dir = tempfile.mkdtemp(prefix="owlscope-bench-")
    url = args.url
    if not url:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "OWLSCOPE_DATA_DIR": data_dir, "LANGFUSE_INIT_ORG_ID": "bench",
               "LANGFUSE_INIT_PROJECT_ID": "bench", "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK,
               "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK, "LOG_LEVEL": "warning", "MASKING_DETECTORS": args.masking}
        env.update(kv.split("=", 1) for kv in args.env)
        grpc_port = _free_port()
        args.grpc_target = f"127.0.0.1:{grpc_port}"
        # Started in the data directory: `python -m` puts its working directory first on the path,
        # ahead of PYTHONPATH, so from a checkout it would run that checkout whatever PYTHONPATH says.
        proc = subprocess.Popen([sys.executable, "-m", "owlscope.cli.main", "serve", "--port", str(port),
                                 "--otlp-grpc-port", str(grpc_port)], env=env, cwd=data_dir)
        try:
            wait_healthy(url)
        except BaseException:
            proc.kill()
            raise

    auth = (PK, SK)
    headers = {"content-type": "application/x-protobuf", "content-encoding": "gzip",
               "x-langfuse-sdk-version": "5.0.4"}
    todo = list(range(len(bodies) - 1, -1, -1))  # popped from the end: sent in order
    lock = threading.Lock()
    retries = [0]

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

    probe = None
    if args.visibility:
        probe = VisibilityProbe(url)
        probe.start()
        time.sleep(1.0)  # its first (warm-up) trace is through before the burst starts
    before = stage_counters(url)
    cpu_before = _cpu_seconds(proc.pid) if proc else float("nan")
    n = args.spans
    start = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted_at = time.monotonic()
    print(f"accepted {n} spans over {'gRPC' if args.grpc else 'HTTP'} in {accepted_at - start:.2f}s: "
          f"{n / (accepted_at - start):,.0f} spans/s ({retries[0]} retries after 429/503)", flush=True)

    probe_traces = 0
    count = 0
    with httpx.Client(auth=auth, timeout=30) as c:
        while True:
            count = count_observations(c, url)
            probe_traces = len(probe.visible) + 1 if probe else 0
            if count >= n + 2 * probe_traces:
                break
            if time.monotonic() - accepted_at > 3600:
                print(f"gave up: {count} of {n} queryable")
                break
            # a count over every observation is work for the server too: poll it often only at the end
            time.sleep(0.05 if count >= 0.95 * n else 0.25)
        queryable_at = time.monotonic()
        if probe:
            probe.stop.set()
            probe.join(timeout=150)
            count = count_observations(c, url)
            probe_traces = len(probe.visible) + 1
    wall = queryable_at - start
    after = stage_counters(url)
    cpu = (_cpu_seconds(proc.pid) - cpu_before) if proc else float("nan")
    expected = n + 2 * probe_traces
    print(f"last span readable {queryable_at - accepted_at:.2f}s after the send ended")
    print(f"end to end: {n / wall:,.0f} spans/s (request to queryable)")
    print(f"nothing lost: {'yes' if count == expected else 'NO'} ({count} observations readable, {expected} sent)")
    if proc:
        print(f"server peak memory: {_peak_rss_mb(proc.pid):,.0f} MB")
    if probe:
        if probe.error:
            print(f"visibility probe failed: {probe.error}")
        if probe.visible:
            ms = [v * 1000 for v in probe.visible]
            fl = [v * 1000 for v in probe.flushes]
            print(f"visibility during the burst ({len(ms)} probes): flush() -> readable p50 {_pct(ms, 50):.0f} ms, "
                  f"p95 {_pct(ms, 95):.0f} ms, max {max(ms):.0f} ms; flush() itself p50 {_pct(fl, 50):.0f} ms, "
                  f"p95 {_pct(fl, 95):.0f} ms (mean {statistics.fmean(ms):.0f} ms)")
            hits, misses = (after.get(("result_cache", k), 0) - before.get(("result_cache", k), 0)
                            for k in ("hits", "misses"))
            print(f"  {probe.polls} reads of a probe trace until readable; the server's result cache over the "
                  f"run (every read, the bench's own counts too): {hits:,.0f} hits, {misses:,.0f} misses")
    if before or after:
        print_stage_table(before, after, n, wall, cpu)
    if proc:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)


if __name__ == "__main__":
    main()
