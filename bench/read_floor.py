"""Read floor benchmark: the public reads at small scale, over HTTP against a real `owlscope serve`.

    python bench/read_floor.py                     # 20,000 spans (5,000 traces), 200 runs per read
    python bench/read_floor.py --spans 20000 --runs 300 --data-dir /tmp/floor   # keep the data

1. Starts `owlscope serve` on a fresh data directory and loads the spans of bench/ingest.py (4 spans a
   trace with 1-2 KB of input and output, 2,000 users, 500 sessions) through the OTLP endpoint, then
   waits until every trace and observation is readable.
2. Measures p50/p95 over HTTP with the project's API keys (one keep-alive connection, after warm-up):
   the latest 50 traces (default fields, input/output included), one trace, the daily metrics and the
   sessions list. Twice, each time on a server of its own: as shipped (a read repeated before a
   write of its project is answered from the embedded result cache) and with `CHDB_RESULT_CACHE_MB=0`, every
   read sent to the engine (what a read of new data pays); and a third time as shipped while a
   second project (made with `owlscope init`) is written at --writing spans/s (default 2,000): its
   inserts leave this project's kept reads alone. Printed with it: the spans written meanwhile and
   the result cache's hits and misses (from /metrics).
3. Stops the server and opens the same data directory in this process to break each read down
   (result cache off):
   the OLAP queries it runs (count, each one's ms, the sum and how long the SQL kept the request),
   the read model's Python (the function minus its SQL), the API layer (routing, auth, response
   model and serialisation: the app called in-process over ASGI, minus the function) and the HTTP
   stack (the wire time minus the in-process app time).
4. Measures the reads over HTTP a fourth time while the project read is itself written at
   --writing-this spans/s (default 200: a request of 200 spans a second, 0: skipped; last, as it
   adds to the data read): a write drops the kept reads of the tables it writes only, so the read
   after it sends only those tables' statements to the engine; the reads until the next write are
   kept. Printed with the hits and misses, as in 2.

Every number is printed; the machine's load average is printed with them.

    python bench/read_floor.py --data-dir /tmp/floor --against /path/to/other/checkout --rounds 4

compares two builds on one machine: the data is loaded once, then each round starts a server from
this checkout and one from the other (in alternating order), measures the reads over HTTP on the
same data and stops it; printed are each round's p50 and p95 and their medians over the rounds. On a machine
whose speed drifts (shared cores), this is the comparison to trust: the same build measured an hour
apart can differ by a third. `--env NAME=VALUE` sets a setting of every server started (e.g.
`--env CHDB_RESULT_CACHE_MB=0` to compare the engine floor of two builds); `--writing N` measures
the rounds while the second project is written at N spans/s, `--writing-this N` while the project
read is.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parents[1]))  # PYTHONPATH, when set, picks the code measured

from ingest import PK, SK, _free_port, build_requests, wait_healthy  # noqa: E402

PROJECT = "bench"


def pct(times: list[float], q: float) -> float:
    s = sorted(times)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def load(url: str, n_spans: int) -> None:
    bodies = build_requests(n_spans)
    headers = {"content-type": "application/x-protobuf", "content-encoding": "gzip",
               "x-langfuse-sdk-version": "5.0.4"}
    todo = list(range(len(bodies)))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(auth=(PK, SK), timeout=60) as c:
            while True:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                while True:
                    r = c.post(f"{url}/api/public/otel/v1/traces", content=bodies[i], headers=headers)
                    if r.status_code in (429, 503):
                        time.sleep(float(r.headers.get("retry-after", "1")))
                        continue
                    r.raise_for_status()
                    break

    t = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    print(f"accepted {n_spans:,} spans in {time.monotonic() - t:.1f} s", flush=True)
    traces = n_spans // 4
    query = ('{"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}], '
             '"fromTimestamp": "2000-01-01T00:00:00Z", "toTimestamp": "2100-01-01T00:00:00Z"}')
    with httpx.Client(auth=(PK, SK), timeout=30) as c:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            r = c.get(f"{url}/api/public/v2/metrics", params={"query": query})
            obs = int(r.json()["data"][0]["count_count"]) if r.status_code == 200 and r.json()["data"] else 0
            r = c.get(f"{url}/api/public/traces", params={"limit": 1, "fields": "core"})
            tr = r.json()["meta"]["totalItems"] if r.status_code == 200 else 0
            if obs >= n_spans and tr >= traces:
                break
            time.sleep(0.25)
    print(f"readable after {time.monotonic() - t:.1f} s: {tr:,} traces, {obs:,} observations", flush=True)


def requests_of(trace_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "latest 50 traces": ("/api/public/traces", {"limit": 50}),
        "one trace": (f"/api/public/traces/{trace_id}", {}),
        "metrics daily": ("/api/public/metrics/daily", {}),
        "sessions list": ("/api/public/sessions", {}),
    }


def measure_http(url: str, reqs: dict[str, tuple[str, dict[str, Any]]], runs: int, warmup: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    with httpx.Client(auth=(PK, SK), timeout=30) as c:
        for label, (path, params) in reqs.items():
            for _ in range(warmup):
                c.get(url + path, params=params).raise_for_status()
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                r = c.get(url + path, params=params)
                times.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
            out[label] = times
    return out


# ---- in-process breakdown ------------------------------------------------------------------------
class QueryLog:
    """Wraps the OLAP client's query methods to record each query's wall time (ms) and thread."""

    def __init__(self) -> None:
        self.entries: list[tuple[float, float, int]] = []  # (start, ms, thread)
        self.lock = threading.Lock()

    def install(self) -> None:
        from owlscope.storage.olap.client import Olap

        log = self
        for name in ("query", "query_dicts", "query_columns", "command"):
            original = getattr(Olap, name, None)
            if original is None:
                continue

            def wrapped(self_: Any, *a: Any, _orig: Callable = original, **kw: Any) -> Any:
                t = time.perf_counter()
                try:
                    return _orig(self_, *a, **kw)
                finally:
                    with log.lock:
                        log.entries.append((t, (time.perf_counter() - t) * 1000, threading.get_ident()))

            setattr(Olap, name, wrapped)

    def take(self) -> list[tuple[float, float, int]]:
        with self.lock:
            e, self.entries = self.entries, []
        return e


def sql_wall(entries: list[tuple[float, float, int]]) -> float:
    """How long at least one query was running (ms): the union of the query intervals."""
    spans = sorted((s * 1000, s * 1000 + ms) for s, ms, _ in entries)
    total, end = 0.0, float("-inf")
    for a, b in spans:
        if a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


async def asgi_get(app: Any, path: str, params: dict[str, Any]) -> tuple[int, bytes]:
    """One GET through the app, in process. Run every call of a measurement inside one task, as a
    server does: the app's worker threads live as long as the task that started them."""
    from urllib.parse import urlencode

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": urlencode(params, doseq=True).encode(),
        "root_path": "", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1234),
        "headers": [(b"host", b"127.0.0.1"),
                    (b"authorization", b"Basic " + base64.b64encode(f"{PK}:{SK}".encode()))],
    }
    status, body = [0], []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    return status[0], b"".join(body)


def breakdown(data_dir: Path, trace_id: str, runs: int, warmup: int, wire: dict[str, list[float]]) -> None:
    import chdb  # noqa: F401 - import once, early (it changes the working directory while importing)

    from owlscope import tracing
    from owlscope.app import create_app
    from owlscope.config import load_settings
    from owlscope.services import build_services

    qlog = QueryLog()
    qlog.install()
    # every read to the engine: this is where the floor of a read of new data goes
    settings = load_settings(data_dir=data_dir, chdb_result_cache_mb=0)
    services = build_services(settings)
    olap = services.olap
    app = create_app(settings, services=services, run_worker=False)
    app.state.services = services  # the lifespan would set it; it is not started here
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    reqs = requests_of(trace_id)
    functions: dict[str, Callable[[], Any]] = {
        "latest 50 traces": lambda: tracing.list_traces(olap, PROJECT, limit=50),
        "one trace": lambda: tracing.get_trace(olap, PROJECT, trace_id),
        "metrics daily": lambda: tracing.metrics_daily(olap, PROJECT),
        "sessions list": lambda: tracing.list_sessions(olap, PROJECT),
    }
    print(f"\nbreakdown, in process ({runs} runs each, p50 ms; load average {os.getloadavg()[0]:.1f})")
    print(f"{'read':<18} {'queries':>7} {'each query (ms)':<34} {'sum':>6} {'SQL':>6} {'model':>6} "
          f"{'api':>6} {'asgi':>6} {'http':>6} {'wire':>6}")
    try:
        for label, fn in functions.items():
            path, params = reqs[label]
            for _ in range(warmup):
                fn()

            async def timed_asgi(n: int, path: str = path, params: dict[str, Any] = params) -> list[float]:
                out = []
                for _ in range(n):
                    t = time.perf_counter()
                    code, _ = await asgi_get(app, path, params)
                    out.append((time.perf_counter() - t) * 1000)
                    assert code == 200, (path, code)
                return out

            loop.run_until_complete(timed_asgi(warmup))
            qlog.take()
            fn_ms, sql_sum, sql_in, per_query, counts = [], [], [], defaultdict(list), []
            for _ in range(runs):
                t = time.perf_counter()
                fn()
                fn_ms.append((time.perf_counter() - t) * 1000)
                entries = qlog.take()
                counts.append(len(entries))
                sql_sum.append(sum(ms for _, ms, _ in entries))
                sql_in.append(sql_wall(entries))
                for i, (_, ms, _) in enumerate(sorted(entries)):
                    per_query[i].append(ms)
            asgi_ms = loop.run_until_complete(timed_asgi(runs))
            qlog.take()
            p = statistics.median
            each = " ".join(f"{p(v):.1f}" for _, v in sorted(per_query.items()))
            model = p(fn_ms) - p(sql_in)
            api = p(asgi_ms) - p(fn_ms)
            http = p(wire[label]) - p(asgi_ms)
            print(f"{label:<18} {p(counts):>7.0f} {each:<34} {p(sql_sum):>6.1f} {p(sql_in):>6.1f} {model:>6.1f} "
                  f"{api:>6.1f} {p(asgi_ms):>6.1f} {http:>6.1f} {p(wire[label]):>6.1f}")
    finally:
        loop.close()
        services.close()
    print("  queries: OLAP queries per request; each query: p50 of each, in start order; sum: their total;")
    print("  SQL: how long a query was running (parallel queries overlap); model: read-model Python")
    print("  (function minus SQL); api: routing, auth, response model, JSON (app over ASGI minus function);")
    print("  asgi: the whole app in process; http: uvicorn and the socket (wire minus asgi); wire: over HTTP")


def start_server(data_dir: Path, code: str | None = None,
                 extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`owlscope serve` on the data directory, from `code` (a checkout) when given, else from the
    PYTHONPATH this process has, with `extra_env` over the environment; (process, url) once healthy."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OWLSCOPE_DATA_DIR": str(data_dir), "LANGFUSE_INIT_ORG_ID": "bench",
           "LANGFUSE_INIT_PROJECT_ID": PROJECT, "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK,
           "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK, "LOG_LEVEL": "warning"}
    if code is not None:
        env["PYTHONPATH"] = code
    env.update(extra_env or {})
    data_dir.mkdir(parents=True, exist_ok=True)
    # The working directory is set: `python -m` puts it first on the path, ahead of PYTHONPATH, so
    # started from a checkout the server would run that checkout whatever PYTHONPATH says.
    proc = subprocess.Popen([sys.executable, "-m", "owlscope.cli.main", "serve", "--port", str(port)], env=env,
                            cwd=code or data_dir)
    try:
        wait_healthy(url)
    except BaseException:
        proc.kill()
        raise
    return proc, url


def other_project_keys(data_dir: Path, code: str | None = None) -> tuple[str, str]:
    """The API keys of a second project in the data directory (made by `owlscope init` on first
    use, the server stopped, and kept in the directory)."""
    saved = data_dir / "other-project-keys"
    if not saved.exists():
        env = {**os.environ, **({"PYTHONPATH": code} if code else {})}
        out = subprocess.run([sys.executable, "-m", "owlscope.cli.main", "init", "--data-dir", str(data_dir),
                              "--org-name", "other", "--project-name", "other"],
                             env=env, cwd=code or data_dir, capture_output=True, text=True, check=True).stdout
        keys = dict(line.strip().split("=", 1) for line in out.splitlines() if "_KEY=" in line)
        saved.write_text(f"{keys['LANGFUSE_PUBLIC_KEY']}\n{keys['LANGFUSE_SECRET_KEY']}\n")
    pk, sk = saved.read_text().split()
    return pk, sk


class Writer:
    """Sends OTLP requests of 200 spans to the other project, `per_second` spans a second, in a
    thread, while the reads are measured (what a server of several projects does all day)."""

    def __init__(self, url: str, keys: tuple[str, str], per_second: int):
        self.url, self.keys, self.interval = url, keys, 200 / per_second
        self.bodies = build_requests(20_000, seed=11)
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        headers = {"content-type": "application/x-protobuf", "content-encoding": "gzip"}
        with httpx.Client(auth=self.keys, timeout=60) as c:
            due = time.monotonic()
            while not self._stop.is_set():
                r = c.post(f"{self.url}/api/public/otel/v1/traces", headers=headers,
                           content=self.bodies[self.sent % len(self.bodies)])
                if r.status_code == 200:
                    self.sent += 1
                due += self.interval
                self._stop.wait(max(0.0, due - time.monotonic()))

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cache_counts(url: str) -> tuple[float, float]:
    """(hits, misses) of the server's result cache, from /metrics (0, 0 when it has none)."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found = {m[0]: float(m[1]) for m in re.findall(r"^owlscope_olap_result_cache_(hits|misses)_total (\S+)$",
                                                   text, re.M)}
    return found.get("hits", 0.0), found.get("misses", 0.0)


def measure_while_writing(url: str, reqs: dict[str, tuple[str, dict[str, Any]]], runs: int, warmup: int,
                          keys: tuple[str, str], per_second: int) -> tuple[dict[str, list[float]], str]:
    """The reads measured while the project of `keys` is written (another one, or the one read);
    (times, a line on the writes and the result cache)."""
    before = cache_counts(url)
    t = time.monotonic()
    with Writer(url, keys, per_second) as w:
        time.sleep(1)
        wire = measure_http(url, reqs, runs, warmup)
    took = time.monotonic() - t
    hits, misses = (a - b for a, b in zip(cache_counts(url), before, strict=True))
    whose = "this" if keys == (PK, SK) else "the other"
    return wire, (f"{w.sent * 200:,} spans written to {whose} project in {took:.1f} s "
                  f"({w.sent * 200 / took:,.0f}/s); result cache: {hits:,.0f} hits, {misses:,.0f} misses")


def a_trace(url: str) -> str:
    """The id of one of the newest traces (the one-trace read's)."""
    with httpx.Client(auth=(PK, SK), timeout=30) as c:
        return c.get(f"{url}/api/public/traces", params={"limit": 50}).json()["data"][10]["id"]


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def compare(data_dir: Path, spans: int, other: str, rounds: int, runs: int, warmup: int,
            extra_env: dict[str, str], writing: int = 0, writing_this: int = 0) -> None:
    """This checkout against `other`, alternating servers on the same data (see the module doc)."""
    here = str(Path(__file__).resolve().parents[1])
    other = str(Path(other).resolve())
    if not (data_dir / "olap").exists():
        proc, url = start_server(data_dir, here)
        try:
            load(url, spans)
            time.sleep(5)
        finally:
            stop_server(proc)
    keys = (PK, SK) if writing_this else other_project_keys(data_dir, here) if writing else None
    writing = writing_this or writing
    p50s: dict[tuple[str, str], list[float]] = defaultdict(list)
    p95s: dict[tuple[str, str], list[float]] = defaultdict(list)
    names = {here: "this", other: "other"}
    print(f"this: {here}\nother: {other}\n({runs} runs each after {warmup} warm-up, p50 / p95 ms"
          + (f", while {'this' if writing_this else 'another'} project is written, {writing:,} spans/s)"
             if writing else ")"))
    for rnd in range(1, rounds + 1):
        for code in ((here, other) if rnd % 2 else (other, here)):
            proc, url = start_server(data_dir, code, extra_env)
            note = ""
            try:
                if keys:
                    wire, note = measure_while_writing(url, requests_of(a_trace(url)), runs, warmup, keys, writing)
                else:
                    wire = measure_http(url, requests_of(a_trace(url)), runs, warmup)
            finally:
                stop_server(proc)
            line = "  ".join(f"{label} {statistics.median(t):6.1f} / {pct(t, 0.95):6.1f}" for label, t in wire.items())
            print(f"round {rnd} {names[code]:<5} {line}  (load {os.getloadavg()[0]:.1f}) {note}", flush=True)
            for label, t in wire.items():
                p50s[(names[code], label)].append(statistics.median(t))
                p95s[(names[code], label)].append(pct(t, 0.95))
    print(f"\n{'read':<20} {'this':>8} {'other':>8} {'this':>8} {'other':>8}   median of the rounds' p50 | p95, ms")
    for label in requests_of("x"):
        m = statistics.median
        print(f"{label:<20} {m(p50s[('this', label)]):8.1f} {m(p50s[('other', label)]):8.1f}"
              f" {m(p95s[('this', label)]):8.1f} {m(p95s[('other', label)]):8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--data-dir", help="keep the data here (reused when already loaded)")
    ap.add_argument("--no-breakdown", action="store_true", help="only the HTTP numbers")
    ap.add_argument("--against", metavar="CHECKOUT", help="compare with the build in this directory (A/B)")
    ap.add_argument("--rounds", type=int, default=4, help="A/B rounds, each build once per round")
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="a setting of the servers started (repeatable), e.g. CHDB_RESULT_CACHE_MB=0 with --against")
    ap.add_argument("--writing", type=int, metavar="SPANS_PER_S",
                    help="the rate another project is written at while the reads are measured a third time "
                         "(default 2,000 spans/s; 0: not measured); with --against, the rounds measure this way")
    ap.add_argument("--writing-this", type=int, metavar="SPANS_PER_S",
                    help="the rate the project read is itself written at while the reads are measured a fourth "
                         "time (default 200 spans/s, a request a second; 0: not measured): reads of new data "
                         "between kept ones; with --against, the rounds measure this way")
    args = ap.parse_args()

    own = args.data_dir is None
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="owlscope-floor-"))
    extra = dict(kv.split("=", 1) for kv in args.env)
    if args.against:
        try:
            compare(data_dir, args.spans, args.against, args.rounds, args.runs, args.warmup, extra,
                    args.writing or 0, args.writing_this or 0)
        finally:
            if own:
                shutil.rmtree(data_dir, ignore_errors=True)
        return
    fresh = not (data_dir / "olap").exists()
    # Each read measured twice: as shipped, where a read repeated before a write of its project is
    # answered from the result cache, and with that cache off, where every read goes to the engine
    # (the floor a read of new data pays; the breakdown below is of this one). A third time as
    # shipped while another project is written (its writes leave this project's kept reads alone).
    # A fourth time, after the breakdown (it adds to the data read), while the project read is
    # itself written: each request written drops the kept reads of the tables it writes, so a read
    # after it goes to the engine for those tables' statements only.
    # (label, server settings, spans/s written meanwhile, to the project read or another)
    engine = "every read to the engine"
    writing = 2_000 if args.writing is None else args.writing
    writing_this = 200 if args.writing_this is None else args.writing_this
    modes = [("repeated, as shipped", extra, 0, False), (engine, {**extra, "CHDB_RESULT_CACHE_MB": "0"}, 0, False)]
    if writing:
        modes.append((f"repeated, as shipped, while another project is written ({writing:,} spans/s)", extra,
                      writing, False))
    engine_wire: dict[str, list[float]] = {}
    trace_id = ""

    def measure(n: int, mode: str, env: dict[str, str], rate: int, this: bool) -> None:
        nonlocal engine_wire, trace_id
        # (made once the data is loaded: on a fresh directory the first server makes the bench project)
        keys = ((PK, SK) if this else other_project_keys(data_dir)) if rate else None
        proc, url = start_server(data_dir, extra_env=env)
        try:
            if fresh and n == 0:
                load(url, args.spans)
                time.sleep(5)  # let the last small parts merge, as they would on a server running a while
            trace_id = a_trace(url)
            print(f"\nover HTTP, {mode} ({args.runs} runs each after {args.warmup} warm-up; "
                  f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
            if keys:
                wire, note = measure_while_writing(url, requests_of(trace_id), args.runs, args.warmup, keys, rate)
                print(note)
            else:
                wire = measure_http(url, requests_of(trace_id), args.runs, args.warmup)
            if mode == engine:
                engine_wire = wire
            print(f"{'read':<24} {'min':>7} {'p50':>7} {'p95':>7} ms")
            for label, times in wire.items():
                print(f"{label:<24} {min(times):7.1f} {statistics.median(times):7.1f} {pct(times, 0.95):7.1f}")
        finally:
            stop_server(proc)

    try:
        for n, mode in enumerate(modes):
            measure(n, *mode)
        if not args.no_breakdown:
            breakdown(data_dir, trace_id, args.runs, args.warmup, engine_wire)
        if writing_this:
            measure(len(modes), f"as shipped, while this project is written ({writing_this:,} spans/s)", extra,
                    writing_this, True)
    finally:
        if own:
            shutil.rmtree(data_dir, ignore_errors=True)

if __name__ == "__main__":
    main()
