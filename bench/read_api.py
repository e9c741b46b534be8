"""Read-API benchmark: N observations (N/4 traces of 4 spans) over 30 days in one project, embedded chDB.

    python bench/read_api.py                                  # 1,000,000 observations, temp dir
    python bench/read_api.py --observations 10000000 --data-dir /tmp/b10m   # keep the data
    python bench/read_api.py --observations 10000000 --data-dir /tmp/b10m   # again: measure only

Loading goes through the production path: realistic OTLP export requests (512 spans each: a root
span, a retriever, a generation with 1-2 KB of input and output, a model and usage, and a tool call,
as bench/ingest.py sends them), the worker's pure mapping (`ingestion.otel.map_otlp`, then
`ingestion.limits.clamp_rows`), its pricing (`pipeline.enrich.Enricher` with the built-in price
book), score-create events through `ingestion.batch.map_batch_events`, and the worker's Arrow build
and insert (`ingestion.rows.*_table`, `Olap.insert_arrow`) in slices of `pipeline.process.FLUSH_ROWS`.
Generation, mapping and the Arrow build run in a pool of `--procs` processes; one process inserts
(an embedded store belongs to one process).

Prints p50/p95 (ms, `--repeat` warm runs each) of the reads the public API and the UI make, called
through the read-model functions their routes call (no HTTP): latest-50 traces, one trace with its
observations, the 30-day dashboard, v2 metrics (cost and p95 latency by model per day), the traces
table sorted by cost / tokens / latency, full-text search, and the older rows (userId filter, v2
observations, sessions, daily metrics, scores). Run with 1M and 10M observations to see the growth.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from owlscope.config import load_settings  # noqa: E402
from owlscope.storage.olap.client import Olap  # noqa: E402
from owlscope.storage.olap.migrate import migrate  # noqa: E402

PROJECT = "bench-project"
DATABASE = "bench_read"
SPANS_PER_REQUEST = 512  # the SDK's export batch
TRACES_PER_CHUNK = 5_000  # one unit of work for the pool: 20k spans (40 requests), one worker flush
NAMES = ["chat", "rag-answer", "summarize", "classify", "agent-run", "extract", "translate", "qa"]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-20241022"]
TAGS = ["prod", "beta", "experiment", "vip", "mobile", "web"]
# The searches: a word in about one trace in 20,000 and a phrase in about one in 20.
RARE_WORD = "quetzalcoatl"
COMMON_PHRASE = "refund policy"
_VOCAB_SEED = 11


def _vocabulary() -> list[str]:
    """3,000 pseudo-words (so the text index sees a realistic spread of tokens), Zipf-weighted by
    repetition: the first words are common, the tail rare."""
    rng = random.Random(_VOCAB_SEED)
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiou"
    words = set()
    while len(words) < 3_000:
        n = rng.randint(1, 4)
        words.add("".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(n)) + rng.choice(["", "s", "n", "r"]))
    ordered = sorted(words)
    rng.shuffle(ordered)
    weighted: list[str] = []
    for rank, w in enumerate(ordered, 1):
        weighted += [w] * max(1, 300 // rank)
    return weighted


class _Text:
    """Fast text: slices of a long pre-generated passage, cut at word boundaries."""

    def __init__(self, rng: random.Random):
        vocab = _vocabulary()
        self.passage = " ".join(rng.choice(vocab) for _ in range(400_000)) + " "
        self.rng = rng

    def take(self, size: int) -> str:
        p = self.passage
        start = p.index(" ", self.rng.randrange(0, len(p) - size - 64)) + 1
        end = p.index(" ", start + size)
        return p[start:end]


_KV_CACHE: dict[tuple[str, Any], Any] = {}


def _const(key: str, value: Any) -> Any:
    """A KeyValue that many spans share, built once."""
    kv = _KV_CACHE.get((key, value))
    if kv is None:
        kv = _KV_CACHE[(key, value)] = _kv(key, list(value) if isinstance(value, tuple) else value)
    return kv


def _kv(key: str, value: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, list):
        v = AnyValue()
        v.array_value.values.extend(AnyValue(string_value=x) for x in value)
        return KeyValue(key=key, value=v)
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _trace_spans(rng: random.Random, text: _Text, n: int, t0_ns: int) -> list[Any]:
    """The four spans of trace number `n`, starting at t0_ns, as the v5 SDK exports them."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    trace_id = rng.randbytes(16)
    root_id, ret_id, gen_id, tool_id = (rng.randbytes(8) for _ in range(4))
    user = rng.randint(1, 2000)
    name = NAMES[n % len(NAMES)]
    common = [_kv("user.id", f"user-{user}"), _kv("session.id", f"sess-{n // 6:07d}"),
              _const("langfuse.trace.name", name),
              _const("langfuse.environment", "production" if rng.random() < 0.8 else "staging"),
              _const("langfuse.release", f"v1.{n % 10}")]
    tags = rng.sample(TAGS, rng.randint(0, 2))
    if tags:
        common.append(_const("langfuse.trace.tags", tuple(tags)))
    question = text.take(rng.randint(120, 300))
    if rng.random() < 0.05:
        question = f"what is your {COMMON_PHRASE} for {question}"
    if n % 20_000 == 7:
        question += f" {RARE_WORD}"
    prompt = ('[{"role": "system", "content": "Answer from the context."}, {"role": "user", "content": "'
              + text.take(rng.randint(1000, 2000)) + '"}]')
    answer = '{"role": "assistant", "content": "' + text.take(rng.randint(1000, 2000)) + '"}'
    model = MODELS[rng.randrange(len(MODELS))]
    u_in, u_out = rng.randint(50, 4000), rng.randint(10, 800)
    total_ms = rng.randint(500, 8000)
    ms = 1_000_000

    def span(sid: bytes, parent: bytes | None, sname: str, start: int, end: int, attrs: list[Any]) -> Any:
        return Span(trace_id=trace_id, span_id=sid, parent_span_id=parent or b"", name=sname,
                    start_time_unix_nano=start, end_time_unix_nano=end, kind=Span.SPAN_KIND_INTERNAL,
                    attributes=common + attrs)

    return [
        span(root_id, None, name, t0_ns, t0_ns + total_ms * ms, [
            _const("langfuse.observation.type", "span"), _kv("langfuse.observation.input", f'"{question}"'),
            _const("langfuse.observation.output", '"done"')]),
        span(ret_id, root_id, "search-docs", t0_ns + 5 * ms, t0_ns + total_ms // 10 * ms, [
            _const("langfuse.observation.type", "retriever"), _kv("langfuse.observation.input", f'"{question}"'),
            _const("langfuse.observation.output", '["doc-1", "doc-7", "doc-9"]')]),
        span(gen_id, root_id, "llm", t0_ns + total_ms // 10 * ms, t0_ns + total_ms * 9 // 10 * ms, [
            _const("langfuse.observation.type", "generation"), _const("langfuse.observation.model.name", model),
            _kv("langfuse.observation.input", prompt), _kv("langfuse.observation.output", answer),
            _kv("langfuse.observation.usage_details", '{"input": %d, "output": %d}' % (u_in, u_out)),
            _const("langfuse.observation.model.parameters", '{"temperature": 0.2}')]),
        span(tool_id, root_id, "create-ticket", t0_ns + total_ms * 9 // 10 * ms, t0_ns + total_ms * ms - ms, [
            _const("langfuse.observation.type", "tool"), _const("langfuse.observation.input", '{"priority": "high"}'),
            _kv("langfuse.observation.output", '{"ticket": %d}' % n),
            *([_const("langfuse.observation.level", "ERROR")] if rng.random() < 0.02 else [])]),
    ]


class _BenchEnricher:
    """The worker's Enricher with the built-in price book (no project models: no OLTP store here)."""

    def __new__(cls) -> Any:
        from owlscope.ingestion.pricing import PriceBook, load_default_models
        from owlscope.pipeline.enrich import Enricher

        book = PriceBook(load_default_models())

        class _E(Enricher):
            def price_book(self, project_id: str) -> PriceBook:  # noqa: ARG002
                return book

        return _E(None)  # type: ignore[arg-type]


_WORKER: dict[str, Any] = {}


def _init_worker(start_ns: int, span_ns: int, traces: int, seed: int) -> None:
    _WORKER.update(start_ns=start_ns, span_ns=span_ns, traces=traces, seed=seed,
                   text=_Text(random.Random(seed)), enricher=_BenchEnricher())


def _chunk(first: int) -> tuple[int, list[tuple[str, Any]]]:
    """Traces [first, first + TRACES_PER_CHUNK): OTLP requests -> worker mapping -> Arrow tables."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

    from owlscope.ingestion.batch import map_batch_events
    from owlscope.ingestion.limits import clamp_rows
    from owlscope.ingestion.otel import decode_otlp, map_otlp
    from owlscope.ingestion.rows import Rows, observations_table, scores_table, traces_table
    from owlscope.pipeline.process import FLUSH_ROWS

    w = _WORKER
    rng = random.Random(w["seed"] * 1_000_003 + first)
    w["text"].rng = rng
    last = min(first + TRACES_PER_CHUNK, w["traces"])
    spans, score_events = [], []
    for n in range(first, last):
        # arrival follows time, with jitter
        t0 = w["start_ns"] + int((n + rng.random() * 50) / w["traces"] * w["span_ns"])
        trace = _trace_spans(rng, w["text"], n, t0)
        spans.extend(trace)
        ts_iso = datetime.fromtimestamp(t0 / 1e9 + 10, tz=UTC).isoformat()
        tid = trace[0].trace_id.hex()
        if rng.random() < 0.3:
            score_events.append({"id": f"ev-{n}-q", "type": "score-create", "timestamp": ts_iso, "body": {
                "id": f"{rng.getrandbits(64):016x}", "traceId": tid, "name": "quality", "value": round(rng.random(), 3),
                "dataType": "NUMERIC", "source": "EVAL", "timestamp": ts_iso, "environment": "production"}})
        if rng.random() < 0.1:
            score_events.append({"id": f"ev-{n}-h", "type": "score-create", "timestamp": ts_iso, "body": {
                "id": f"{rng.getrandbits(64):016x}", "traceId": tid, "name": "helpful",
                "value": rng.choice(["yes", "no"]), "dataType": "CATEGORICAL", "source": "ANNOTATION",
                "timestamp": ts_iso, "environment": "production"}})
    rows = Rows()
    resource = Resource(attributes=[_kv("service.name", "bench")])
    scope = InstrumentationScope(name="langfuse-sdk", version="5.0.4")
    for i in range(0, len(spans), SPANS_PER_REQUEST):
        req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=spans[i:i + SPANS_PER_REQUEST])])])
        # the blob holds the serialized request; the worker decodes and maps it
        req = decode_otlp(req.SerializeToString(), "application/x-protobuf", None, max_spans=sys.maxsize)
        rows.extend(clamp_rows(map_otlp(req, PROJECT, "5.0.4")))
    rows.extend(clamp_rows(map_batch_events(score_events, PROJECT)))
    w["enricher"].enrich(rows)
    out = []
    for table, items, to_arrow in (("observation_events", rows.observations, observations_table),
                                   ("trace_events", rows.traces, traces_table),
                                   ("scores", rows.scores, scores_table)):
        for i in range(0, len(items), FLUSH_ROWS):
            out.append((table, to_arrow(items[i:i + FLUSH_ROWS])))
    return last - first, out


def load(olap: Olap, observations: int, procs: int, state: Path, seed: int = 7) -> None:
    """Generate, map and insert `observations` observations (4 per trace) spread over 30 days.

    Progress is kept in `state` after every insert: a load that was stopped goes on from there
    (a chunk inserted twice changes nothing: rows of the same id merge)."""
    traces = observations // 4
    saved = json.loads(state.read_text()) if state.exists() else {}
    if saved.get("observations") != observations:
        start = datetime.now(UTC) - timedelta(days=30)
        saved = {"observations": observations, "start_ns": int(start.timestamp() * 1e9), "traces_done": 0,
                 "seconds": 0.0}
    start_ns, resume = saved["start_ns"], saved["traces_done"]
    if resume:
        print(f"  resuming after {resume * 4:,} observations", flush=True)
    span_ns = 30 * 86400 * 10**9 - 3600 * 10**9  # up to an hour ago
    firsts = list(range(resume, traces, TRACES_PER_CHUNK))
    began = time.perf_counter()
    done = resume
    insert_s = 0.0
    ctx = mp.get_context("fork")
    with ctx.Pool(procs, initializer=_init_worker, initargs=(start_ns, span_ns, traces, seed)) as pool:
        chunks: Iterator[tuple[int, list[tuple[str, Any]]]] = pool.imap(_chunk, firsts)
        for n_traces, tables in chunks:
            t = time.perf_counter()
            for table, data in tables:
                olap.insert_arrow(table, data)
            insert_s += time.perf_counter() - t
            done += n_traces
            elapsed = time.perf_counter() - began
            state.write_text(json.dumps({**saved, "traces_done": done, "seconds": saved["seconds"] + elapsed}))
            if done // TRACES_PER_CHUNK % 5 == 0 or done == traces:
                rate = (done - resume) * 4 / elapsed
                eta = (traces - done) * 4 / rate if rate else 0
                print(f"  {done * 4:>11,} observations  {rate:>9,.0f}/s  inserting {insert_s / elapsed:4.0%}"
                      f" of the time  elapsed {elapsed:6.0f} s  ETA {eta:5.0f} s  load {os.getloadavg()[0]:.1f}",
                      flush=True)
    total = saved["seconds"] + time.perf_counter() - began
    print(f"loaded {observations:,} observations in {total:.1f} s ({observations / total:,.0f}/s)", flush=True)


def measure(label: str, fn: Callable[[], object], repeat: int, rows: list[tuple[str, float, float, float]]) -> None:
    fn()  # warm: first call loads marks
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p50 = statistics.median(times)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    print(f"{label:<52} min {times[0]:7.1f}   p50 {p50:7.1f}   p95 {p95:7.1f} ms", flush=True)
    rows.append((label, times[0], p50, p95))


def _refresh_rollups(olap: Olap) -> None:
    try:
        from owlscope.tracing.rollups import refresh_rollups  # type: ignore[import-not-found]
    except ImportError:
        print("no rollups to refresh (owlscope.tracing.rollups.refresh_rollups not present)")
        return
    t = time.perf_counter()
    # settle=0: every insert of the load has returned (the periodic job leaves the last seconds'
    # marks for its next run, which would leave the newest hours dirty here)
    res = refresh_rollups(olap, PROJECT, settle=timedelta(0))
    hours = sum(r.obs_hours + r.trace_hours for r in res)
    print(f"refresh_rollups: {time.perf_counter() - t:.1f} s ({hours} hours recomputed)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--observations", type=int, default=1_000_000, help="4 per trace (default 1,000,000)")
    ap.add_argument("--data-dir", help="keep data here (reused when already loaded)")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--procs", type=int, default=2, help="processes generating and mapping (default 2)")
    ap.add_argument("--only", help="measure only the reads whose label contains one of these texts (comma-separated)")
    ap.add_argument("--optimize", action="store_true",
                    help="merge every table into one part first (the long-run state of old data)")
    args = ap.parse_args()

    from owlscope import tracing
    from owlscope.tracing.dashboard import dashboard
    from owlscope.tracing.trace_table import TraceFilters, list_trace_table

    own = args.data_dir is None
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="owlscope-bench-"))
    # every read repeated here goes to the engine: the result cache would answer the repeats from memory
    settings = load_settings(data_dir=data_dir, clickhouse_url=f"chdb://{data_dir / 'olap'}", chdb_result_cache_mb=0)
    olap = Olap(settings, database=DATABASE)
    try:
        migrate(olap)
        have = olap.query("SELECT count() FROM {db}.observations WHERE project_id = {p:String}", {"p": PROJECT})
        state = data_dir / "bench-load.json"
        saved = json.loads(state.read_text()) if state.exists() else None
        if not have[0][0] or (saved and saved["traces_done"] * 4 < saved["observations"]):
            print(f"loading {args.observations:,} observations / {args.observations // 4:,} traces into {data_dir}"
                  f" ({args.procs} mapping processes, 1 inserting)", flush=True)
            load(olap, args.observations, args.procs, state)
        _refresh_rollups(olap)  # the hours a load (or an earlier interrupted refresh) left dirty
        waited = time.perf_counter()
        while olap.query("SELECT count() FROM system.merges WHERE database = {d:String}", {"d": DATABASE})[0][0]:
            if time.perf_counter() - waited > 300:
                break
            time.sleep(1)  # measure the settled state, not reads racing background merges
        if time.perf_counter() - waited > 1:
            print(f"waited {time.perf_counter() - waited:.0f} s for background merges")
        if args.optimize:
            for table in ("traces", "observations", "scores"):
                olap.command(f"OPTIMIZE TABLE {{db}}.{table} FINAL")
        counts = olap.query(
            "SELECT (SELECT uniqExact(id) FROM {db}.traces WHERE project_id = {p:String}),"
            " (SELECT uniqExact(trace_id, id) FROM {db}.observations WHERE project_id = {p:String}),"
            " (SELECT count() FROM {db}.observations WHERE project_id = {p:String}),"
            " (SELECT count() FROM system.parts WHERE database = {d:String} AND active),"
            " (SELECT sum(bytes_on_disk) FROM system.parts WHERE database = {d:String} AND active)",
            {"p": PROJECT, "d": DATABASE},
        )[0]
        print(f"traces {counts[0]:,}  observations {counts[1]:,} (partial rows {counts[2]:,})"
              f"  active parts {counts[3]}  on disk {counts[4] / 2**30:.1f} GiB")
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
              " (other work inflates the numbers)")

        now = datetime.now(UTC)
        month = now - timedelta(days=30)
        latest = tracing.list_traces(olap, PROJECT, limit=50)
        some = latest["data"][10]
        user = some["userId"]
        rng = random.Random(3)
        ids = [r[0] for r in olap.query(
            "SELECT id FROM {db}.traces WHERE project_id = {p:String} LIMIT 2000", {"p": PROJECT})]
        deep = tracing.list_observations_v2(olap, PROJECT, limit=1000)
        cursor = deep["meta"]["cursor"]
        for _ in range(9):  # walk 10k observations into the list
            cursor = tracing.list_observations_v2(olap, PROJECT, limit=1000, cursor=cursor)["meta"]["cursor"]
        mid = tracing.list_observations_v2(olap, PROJECT, limit=1, to_start_time=now - timedelta(days=15))["meta"]["cursor"]
        metrics_query = {
            "view": "observations", "dimensions": [{"field": "providedModelName"}],
            "metrics": [{"measure": "totalCost", "aggregation": "sum"}, {"measure": "latency", "aggregation": "p95"}],
            "timeDimension": {"granularity": "day"},
            "fromTimestamp": month.isoformat(), "toTimestamp": now.isoformat(),
        }

        def table(order: str) -> Callable[[], object]:
            return lambda: list_trace_table(olap, PROJECT, TraceFilters(hide_internal=True), order_by=order)

        def search(text: str) -> Callable[[], object]:
            return lambda: list_trace_table(olap, PROJECT, TraceFilters(
                search=text, search_type="text", hide_internal=True, start=month, end=now))

        rare = list_trace_table(olap, PROJECT, TraceFilters(search=RARE_WORD, search_type="text", start=month, end=now))
        common = list_trace_table(olap, PROJECT, TraceFilters(search=COMMON_PHRASE, search_type="text", start=month,
                                                              end=now))
        print(f"search {RARE_WORD!r}: {rare.total} traces; {COMMON_PHRASE!r}: {common.total} traces")

        reads: list[tuple[str, Callable[[], object]]] = [
            ("latest-50 traces (GET /traces)", lambda: tracing.list_traces(olap, PROJECT, limit=50)),
            ("latest-50 traces, page 100", lambda: tracing.list_traces(olap, PROJECT, limit=50, page=100)),
            ("one trace by id (GET /traces/{id}), random ids", lambda: tracing.get_trace(olap, PROJECT, rng.choice(ids))),
            ("dashboard, 30 days, all default widgets",
             lambda: dashboard(olap, PROJECT, start=month, end=now, hide_internal=True)),
            ("v2 metrics: cost + p95 latency by model/day, 30 d",
             lambda: tracing.metrics_v2(olap, PROJECT, metrics_query)),
            ("traces table sorted by cost (top 50)", table("totalCost.desc")),
            ("traces table sorted by tokens (top 50)", table("totalTokens.desc")),
            ("traces table sorted by latency (top 50)", table("latency.desc")),
            ("traces table, newest first (UI default)", table("timestamp.desc")),
            (f"full-text search, 30 d, rare word ({RARE_WORD})", search(RARE_WORD)),
            (f"full-text search, 30 d, common phrase ({COMMON_PHRASE})", search(COMMON_PHRASE)),
            ("traces filtered by userId", lambda: tracing.list_traces(olap, PROJECT, user_id=user, limit=50)),
            ("v2 observations latest-50", lambda: tracing.list_observations_v2(olap, PROJECT, limit=50)),
            ("v2 observations cursor page 10k deep",
             lambda: tracing.list_observations_v2(olap, PROJECT, limit=50, cursor=cursor)),
            ("v2 observations cursor page mid-list (15 d)",
             lambda: tracing.list_observations_v2(olap, PROJECT, limit=50, cursor=mid)),
            ("v2 observations type=GENERATION +usage",
             lambda: tracing.list_observations_v2(olap, PROJECT, limit=50, type="GENERATION",
                                                  fields="core,basic,usage")),
            ("sessions list (GET /sessions)", lambda: tracing.list_sessions(olap, PROJECT, limit=50)),
            ("metrics daily (30 days)", lambda: tracing.metrics_daily(olap, PROJECT, limit=50)),
            ("v2 scores latest-50", lambda: tracing.list_scores_v2(olap, PROJECT, limit=50)),
            ("v3 scores latest-50", lambda: tracing.list_scores_v3(olap, PROJECT, limit=50)),
        ]
        print(f"\nread-model functions, {args.repeat} warm runs each (ms)")
        results: list[tuple[str, float, float, float]] = []
        for label, fn in reads:
            if args.only and not any(part in label for part in args.only.split(",")):
                continue
            measure(label, fn, args.repeat, results)
        print(f"\n| read ({counts[1]:,} observations, {counts[0]:,} traces) | p50 ms | p95 ms |\n|---|---:|---:|")
        for label, _, p50, p95 in results:
            print(f"| {label} | {p50:.1f} | {p95:.1f} |")
        print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        olap.close()
        if own:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
