"""Scale-out sizing: `owlscope web` and `owlscope worker` as separate processes on PostgreSQL,
ClickHouse over HTTP, Redis and S3, fed OTLP spans (the same spans as bench/ingest.py: a root span,
a retriever, an LLM generation with 1–2 KB of input and output, and a tool call per trace).

    python bench/scale_out.py --workers 1 2 4 --web 2 --spans 20000
    python bench/scale_out.py --workers 1 --web 1 --backlog     # accept first, then the workers alone

One point per `--workers` value, each on fresh stores: a new PostgreSQL database, a new ClickHouse
server (the chDB-over-HTTP stand-in from tests/fixtures), a new S3 server (moto) and a new Redis
queue. C clients send requests of R spans (gzip protobuf, the OTLP/HTTP exporter's format), taking
turns over the web processes. By default the workers run while the clients send (steady state);
with --backlog the (warmed-up) workers are paused while every request is accepted, then drain
the backlog alone.

Needs PostgreSQL and Redis (OWLSCOPE_TEST_PG_URL, OWLSCOPE_TEST_REDIS_URL). Prints for each point:
the machine's load, accepted spans/s, request-to-queryable spans/s, CPU seconds used by each kind
of process (web, worker, ClickHouse server, Redis, PostgreSQL backends of this run, moto) from
/proc/<pid>/stat during the run, their peak RSS (VmHWM), spans per worker-CPU-second, and checks
that the count of spans readable through the API is exactly the count sent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from ingest import PK, SK, _free_port, _peak_rss_mb, build_requests, wait_healthy  # noqa: E402

from fixtures.servers import create_s3_bucket, start_chdb_http_server, start_moto_s3, stop_process  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
HEADERS = {"content-type": "application/x-protobuf", "content-encoding": "gzip", "x-langfuse-sdk-version": "5.0.4"}
COUNT_QUERY = ('{"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}], '
               '"fromTimestamp": "2000-01-01T00:00:00Z", "toTimestamp": "2100-01-01T00:00:00Z"}')
KINDS = ("web", "worker", "clickhouse", "redis", "postgres", "s3")


# ---- /proc accounting -------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, in seconds (None when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def runqueue_wait(pid: int) -> float:
    """Seconds the process's live threads spent runnable but waiting for a core (schedstat): large
    when the machine is short of CPU, whoever uses it."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tasks:
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def redis_pids() -> list[int]:
    return [p for p in _all_pids() if _comm(p).startswith("redis-server")]


def pg_backends(database: str) -> list[int]:
    """PostgreSQL backends connected to `database` (their title is `postgres: user db host state`)."""
    out = []
    for p in _all_pids():
        title = _cmdline(p)
        if title.startswith("postgres:") and f" {database} " in title:
            out.append(p)
    return out


@dataclass
class Meter:
    """CPU seconds and peak RSS per kind of process over a run. Fixed processes are read at the
    start and the end; PostgreSQL backends come and go, so they are sampled while the run lasts
    (the last reading of each backend counts; one that ends between samples loses < 0.5 s)."""

    fixed: dict[str, list[int]]
    database: str
    start: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    wait_start: dict[int, float] = field(default_factory=dict)
    wait_last: dict[int, float] = field(default_factory=dict)
    pg_first: dict[int, float] = field(default_factory=dict)
    pg_last: dict[int, float] = field(default_factory=dict)
    pg_rss: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def begin(self) -> None:
        for pids in self.fixed.values():
            for pid in pids:
                self.start[pid] = cpu_seconds(pid) or 0.0
                self.wait_start[pid] = runqueue_wait(pid)
        self._sample_pg(first=True)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _sample_pg(self, first: bool = False) -> None:
        for pid in pg_backends(self.database):
            cpu = cpu_seconds(pid)
            if cpu is None:
                continue
            # a backend first seen during the run started during it: all its time counts
            self.pg_first.setdefault(pid, cpu if first else 0.0)
            self.pg_last[pid] = cpu
            self.pg_rss[pid] = _peak_rss_mb(pid)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._sample_pg()

    def end(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._sample_pg()
        for pids in self.fixed.values():
            for pid in pids:
                self.last[pid] = cpu_seconds(pid) or self.start[pid]
                self.wait_last[pid] = runqueue_wait(pid)

    def cpu(self, kind: str) -> float:
        if kind == "postgres":
            return sum(self.pg_last[p] - self.pg_first[p] for p in self.pg_last)
        return sum(self.last[p] - self.start[p] for p in self.fixed.get(kind, []))

    def waited(self, kind: str) -> float:
        """Run-queue wait of the kind's processes (not measured for PostgreSQL backends)."""
        return sum(max(0.0, self.wait_last[p] - self.wait_start[p]) for p in self.fixed.get(kind, []))

    def rss(self, kind: str) -> list[float]:
        if kind == "postgres":
            return [max(self.pg_rss.values(), default=float("nan"))]
        return [_peak_rss_mb(p) for p in self.fixed.get(kind, [])]


# ---- one point of the sweep ------------------------------------------------------------------
def _send_all(urls: list[str], bodies: list[bytes], clients: int) -> tuple[float, int]:
    """Post every body from `clients` threads, request i to urls[i % len(urls)]; (seconds, retries)."""
    todo = list(range(len(bodies)))
    lock = threading.Lock()
    retries = [0]
    errors: list[BaseException] = []

    def client() -> None:
        try:
            with httpx.Client(auth=(PK, SK), timeout=120) as c:
                while True:
                    with lock:
                        if not todo:
                            return
                        i = todo.pop(0)
                    while True:
                        r = c.post(f"{urls[i % len(urls)]}/api/public/otel/v1/traces", content=bodies[i],
                                   headers=HEADERS)
                        if r.status_code in (429, 503):  # backpressure: honour Retry-After, as the SDKs do
                            with lock:
                                retries[0] += 1
                            time.sleep(float(r.headers.get("retry-after", "1")))
                            continue
                        r.raise_for_status()
                        break
        except BaseException as exc:  # noqa: BLE001 - re-raised by the caller
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.monotonic() - started, retries[0]


def _count(c: httpx.Client, url: str) -> int:
    r = c.get(f"{url}/api/public/v2/metrics", params={"query": COUNT_QUERY})
    data = r.json().get("data") if r.status_code == 200 else None
    return int(data[0]["count_count"]) if data else 0


def _scrape(ports: list[int]) -> tuple[float, float, float]:
    """Summed over the workers' metrics endpoints: (observation rows inserted, seconds spent in
    OLAP inserts, number of inserts)."""
    rows = secs = n = 0.0
    for port in ports:
        for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
            if line.startswith('owlscope_olap_rows_inserted_total{table="observation_events"}'):
                rows += float(line.split()[-1])
            elif line.startswith("owlscope_ingest_flush_duration_seconds_sum"):
                secs += float(line.split()[-1])
            elif line.startswith("owlscope_ingest_flush_duration_seconds_count"):
                n += float(line.split()[-1])
    return rows, secs, n


def _wait_ready(url: str, timeout: float = 120) -> None:
    """A worker is up once its metrics port answers (it listens after the consumer started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def run_point(args: argparse.Namespace, n_workers: int, bodies: list[bytes]) -> dict:
    pg_admin = os.environ.get("OWLSCOPE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    redis = os.environ.get("OWLSCOPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    tmp = Path(tempfile.mkdtemp(prefix="owlscope-scale-"))
    name = f"owlscope_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    ch_proc, ch_port = start_chdb_http_server(tmp / "ch")
    s3_proc, s3 = start_moto_s3(tmp / "s3")
    create_s3_bucket(s3, "bench")
    env = {**os.environ, "DATABASE_URL": pg_admin.rsplit("/", 1)[0] + f"/{name}",
           "CLICKHOUSE_URL": f"http://127.0.0.1:{ch_port}", "CLICKHOUSE_DB": name, "REDIS_URL": redis,
           "QUEUE_NAME": name, "S3_BUCKET": "bench", "S3_ENDPOINT": s3, "S3_ACCESS_KEY_ID": "x",
           "S3_SECRET_ACCESS_KEY": "x", "S3_FORCE_PATH_STYLE": "true", "SALT": "bench", "SESSION_SECRET": "bench",
           "LOG_LEVEL": "warning", "LANGFUSE_INIT_ORG_ID": "bench", "LANGFUSE_INIT_PROJECT_ID": "bench",
           "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": PK, "LANGFUSE_INIT_PROJECT_SECRET_KEY": SK,
           "WORKER_THREADS": str(args.threads)}
    cli = [sys.executable, "-m", "owlscope.cli.main"]
    procs: list[subprocess.Popen] = []
    result: dict = {"workers": n_workers}
    try:
        subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
        ports = [_free_port() for _ in range(args.web)]
        webs = [subprocess.Popen([*cli, "web", "--data-dir", str(tmp / f"web{i}")], env={**env, "PORT": str(p)})
                for i, p in enumerate(ports)]
        procs += webs
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for url in urls:
            wait_healthy(url, timeout=180)

        mports: list[int] = []
        warm = build_requests(4, per_request=4, seed=99)  # one trace, other ids than the measured spans
        warm_spans = 0

        def start_workers() -> list[subprocess.Popen]:
            nonlocal warm_spans
            ports_ = [_free_port() for _ in range(n_workers)]
            ws = [subprocess.Popen([*cli, "worker", "--data-dir", str(tmp / f"worker{i}")],
                                   env={**env, "METRICS_PORT": str(m)}) for i, m in enumerate(ports_)]
            procs.extend(ws)
            mports.extend(ports_)
            for m in ports_:
                _wait_ready(f"http://127.0.0.1:{m}/metrics")
            # Warm-up: a few one-trace requests until every worker has inserted once (its first
            # insert pays one-time costs: imports, the price list, the ClickHouse connection).
            deadline = time.monotonic() + 300
            while True:
                with httpx.Client(auth=(PK, SK), timeout=60) as c:
                    for i in range(n_workers * args.threads):
                        c.post(f"{urls[i % len(urls)]}/api/public/otel/v1/traces", content=warm[0],
                               headers=HEADERS).raise_for_status()
                        warm_spans = 4  # the same trace each time: it counts once in the API
                time.sleep(1.0)
                per_worker = [_scrape([m])[2] for m in ports_]
                if all(per_worker) or time.monotonic() > deadline:
                    break
            return ws

        workers = start_workers()
        spies: list[subprocess.Popen] = []

        def profile(pids: list[int]) -> None:  # py-spy on the first worker and the ClickHouse server
            if args.profile:
                for what, pid in (("worker", pids[0]), ("clickhouse", ch_proc.pid)):
                    out = f"{args.profile}-{n_workers}w-{what}.txt"
                    spies.append(subprocess.Popen([args.py_spy, "record", "--pid", str(pid), "--format", "raw",
                                                   "--rate", "50", "--nonblocking", "-o", out],
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        base = _scrape(mports)
        if args.backlog:  # warmed up, then paused while the clients send
            for w in workers:
                w.send_signal(signal.SIGSTOP)
        else:
            profile([w.pid for w in workers])
        fixed = {"web": [w.pid for w in webs], "worker": [w.pid for w in workers], "clickhouse": [ch_proc.pid],
                 "redis": redis_pids(), "s3": [s3_proc.pid]}
        meter = Meter(fixed, name)
        load_before = os.getloadavg()
        meter.begin()
        started = time.monotonic()
        accept_s, retries = _send_all(urls, bodies, args.clients)
        if args.backlog:  # then the workers alone on the backlog (they resume within the sweeper's grace)
            meter.end()
            result["accept_cpu"] = {k: meter.cpu(k) for k in KINDS}
            meter = Meter(fixed, name)
            meter.begin()
            started = time.monotonic()
            for w in workers:
                w.send_signal(signal.SIGCONT)
            profile([w.pid for w in workers])
        # Progress from the workers' own counters (cheap), not from queries that would load the
        # ClickHouse server being measured; the API count afterwards checks the result.
        first: tuple[float, float] | None = None
        while True:
            now = _scrape(mports)
            done = now[0] - base[0]
            if done > 0 and first is None:
                first = (time.monotonic(), done)
            if done >= args.spans:
                break
            if time.monotonic() - started > args.timeout:
                raise SystemExit(f"gave up waiting for the workers ({done:.0f} of {args.spans} spans inserted)")
            time.sleep(0.1)
        ended = time.monotonic()
        took = ended - started
        meter.end()
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=30)
        with httpx.Client(auth=(PK, SK), timeout=60) as c:
            count = _count(c, urls[-1])
            deadline = time.monotonic() + 60
            while count < args.spans + warm_spans and time.monotonic() < deadline:
                time.sleep(0.5)
                count = _count(c, urls[-1])
        assert first is not None
        steady = (args.spans - first[1]) / max(ended - first[0], 1e-9)
        result.update(
            accept_s=accept_s, retries=retries, took=took, count=count - warm_spans, steady=steady,
            inserts=(now[1] - base[1], now[2] - base[2]),
            cpu={k: meter.cpu(k) for k in KINDS}, waited={k: meter.waited(k) for k in KINDS},
            rss={k: meter.rss(k) for k in KINDS}, load=(load_before, os.getloadavg()),
        )
    finally:
        for p in procs:
            p.send_signal(signal.SIGCONT)  # in case it was paused (--backlog)
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        stop_process(ch_proc)
        stop_process(s3_proc)
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        import redis as redis_lib

        r = redis_lib.Redis.from_url(redis)
        keys = list(r.scan_iter(f"*{name}*"))
        if keys:
            r.delete(*keys)
        r.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def report(args: argparse.Namespace, res: dict) -> None:
    n, spans = res["workers"], args.spans
    lb, la = res["load"]
    print(f"\n== {n} worker(s) x {args.threads} threads, {args.web} web, {args.clients} clients x "
          f"{args.per_request} spans/request ({'backlog' if args.backlog else 'concurrent'}) ==")
    print(f"load average before {lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f}, after {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} "
          f"({os.cpu_count()} cores)")
    print(f"accepted: {spans} spans in {res['accept_s']:.1f}s = {spans / res['accept_s']:,.0f} spans/s "
          f"({res['retries']} 429/503 retries)")
    what = "workers resumed on the backlog to queryable" if args.backlog else "first request to queryable"
    print(f"queryable: {spans} spans in {res['took']:.1f}s ({what}) = {spans / res['took']:,.0f} spans/s, "
          f"{spans / res['took'] / n:,.0f} per worker")
    print(f"  from the first insert on: {res['steady']:,.0f} spans/s; {res['inserts'][1]:.0f} inserts taking "
          f"{res['inserts'][0]:.1f}s in total ({res['inserts'][0] / res['took'] / n:.0%} of each worker's time)")
    ok = "OK" if res["count"] == spans else "MISMATCH"
    print(f"readable through the API: {res['count']} of {spans} sent: {ok}")
    cpu = res["cpu"]
    total = sum(cpu.values())
    print(f"CPU seconds during it (wall {res['took']:.1f}s x {os.cpu_count()} cores = "
          f"{res['took'] * (os.cpu_count() or 1):.1f} available; redis is shared with other users of the server):")
    for k in KINDS:
        rss = ", ".join(f"{m:,.0f}" for m in res["rss"][k])
        waited = "" if k == "postgres" else f"{res['waited'][k]:6.1f} s"
        print(f"  {k:<10} {cpu[k]:7.1f} s  {cpu[k] / res['took']:5.2f} cores  {100 * cpu[k] / total:4.0f}%  "
              f"waited for a core {waited:>8}   peak RSS MB: {rss}")
    if "accept_cpu" in res:
        acc = res["accept_cpu"]
        print("  while accepting (before the workers): " + ", ".join(f"{k} {acc[k]:.1f}s" for k in KINDS))
        print(f"  web: {spans / max(acc['web'], 1e-9):,.0f} spans per web-CPU-second")
    print(f"spans per worker-CPU-second: {spans / max(cpu['worker'], 1e-9):,.0f}; "
          f"per ClickHouse-CPU-second: {spans / max(cpu['clickhouse'], 1e-9):,.0f}"
          + ("" if "accept_cpu" in res else f"; per web-CPU-second: {spans / max(cpu['web'], 1e-9):,.0f}"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="one point per value")
    ap.add_argument("--threads", type=int, default=2, help="WORKER_THREADS per worker")
    ap.add_argument("--web", type=int, default=2, help="web processes; clients take turns over them")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--per-request", type=int, default=200, help="spans per request")
    ap.add_argument("--backlog", action="store_true", help="pause the workers while every request is accepted, then let them drain it")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--profile", metavar="PREFIX",
                    help="sample the first worker and the ClickHouse server with py-spy (collapsed stacks "
                         "to PREFIX-<n>w-<process>.txt)")
    ap.add_argument("--py-spy", default="py-spy", help="the py-spy executable")
    args = ap.parse_args()
    bodies = build_requests(args.spans, per_request=args.per_request)
    args.spans = args.spans // 4 * 4
    size = sum(map(len, bodies))
    print(f"{len(bodies)} requests of {args.per_request} spans, {size / 1e6:.1f} MB gzip "
          f"({size / args.spans:,.0f} B/span compressed); spans per trace: root, retriever, "
          "generation (1–2 KB input and output), tool", flush=True)
    results = []
    for n in args.workers:
        res = run_point(args, n, bodies)
        report(args, res)
        results.append(res)
        sys.stdout.flush()
    print("\n| workers | load (1 min) | accepted spans/s | queryable spans/s | per worker | speed-up | "
          "CPU s web / worker / ClickHouse / Redis / PG / S3 | spans per worker-CPU-s | readable |")
    print("|---|---|---|---|---|---|---|---|---|")
    base = args.spans / results[0]["took"]
    for res in results:
        n, c = res["workers"], res["cpu"]
        rate = args.spans / res["took"]
        print(f"| {n} | {res['load'][0][0]:.1f}–{res['load'][1][0]:.1f} | {args.spans / res['accept_s']:,.0f} | "
              f"{rate:,.0f} | {rate / n:,.0f} | {rate / base:.2f}x | "
              + " / ".join(f"{c[k]:.1f}" for k in KINDS)
              + f" | {args.spans / max(c['worker'], 1e-9):,.0f} | {res['count']}/{args.spans} |")
    if any(r["count"] != args.spans for r in results):
        raise SystemExit("some spans were not readable exactly once")


if __name__ == "__main__":
    main()
