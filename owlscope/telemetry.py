"""Prometheus counters and histograms, in prometheus-client's process-wide registry, updated where
the work happens (the pipeline, the evaluator runner, the HTTP middleware). Rendering them with the
queue gauges read at scrape time is `owlscope.ops.metrics`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram

if TYPE_CHECKING:
    pass

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

INGEST_ROUTES = frozenset({"/api/public/ingestion", "/api/public/otel/v1/traces", "/api/public/scores"})

HTTP_LATENCY = Histogram(
    "owlscope_http_request_duration_seconds", "HTTP request latency by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INGEST_REQUESTS = Counter(
    "owlscope_ingest_requests_total", "Ingestion requests by endpoint and HTTP status", ["route", "status"],
)
EVENTS_ACCEPTED = Counter(
    "owlscope_ingest_events_accepted_total",
    "Events accepted and stored durably (OTLP spans, ingestion events, server-made scores)", ["kind"],
)
FLUSH_SECONDS = Histogram(
    "owlscope_ingest_flush_duration_seconds", "Time to insert one buffered batch into the OLAP store",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ROWS_INSERTED = Counter("owlscope_olap_rows_inserted_total", "Rows inserted into the OLAP store", ["table"])
EVAL_EXECUTIONS = Counter(
    "owlscope_evaluator_executions_total", "Evaluator executions finished, by final status", ["status"],
)


# Where the ingestion time goes, per pipeline stage: wall seconds (perf_counter) and this thread's
# CPU seconds (thread_time: excludes waiting for the GIL or I/O), and the spans/events each stage
# handled. Updated once per request, blob or flush (not per span), so it is always on.
STAGE_SECONDS = Counter(
    "owlscope_ingest_stage_seconds", "Seconds spent per ingestion stage (clock: wall or cpu)", ["stage", "clock"],
)
STAGE_ITEMS = Counter("owlscope_ingest_stage_items", "Spans/events handled per ingestion stage", ["stage"])
INGEST_STAGES = ("accept", "accept_decode", "accept_store", "queue_wait", "read", "decode", "map", "price",
                 "buffer_wait", "arrow", "insert", "hooks", "finish")
_stage_children = {
    name: (STAGE_SECONDS.labels(name, "wall"), STAGE_SECONDS.labels(name, "cpu"), STAGE_ITEMS.labels(name))
    for name in INGEST_STAGES
}


class StageTimer:
    """Times consecutive stages of one piece of work: `lap("decode", n)` books the time since the
    previous lap (or since creation) to `decode`."""

    __slots__ = ("_cpu", "_wall")

    def __init__(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.thread_time()

    def lap(self, stage: str, items: int = 0) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        add_stage(stage, wall - self._wall, cpu - self._cpu, items)
        self._wall, self._cpu = wall, cpu

    def skip(self) -> None:
        """Start the next lap now (time since the last lap is booked nowhere)."""
        self._wall, self._cpu = time.perf_counter(), time.thread_time()


def add_stage(stage: str, wall: float, cpu: float | None = None, items: int = 0) -> None:
    w, c, n = _stage_children[stage]
    w.inc(wall)
    if cpu is not None:
        c.inc(cpu)
    if items:
        n.inc(items)


def observe_flush(seconds: float, counts: dict[str, int]) -> None:
    FLUSH_SECONDS.observe(seconds)
    for table, n in counts.items():
        if n:
            ROWS_INSERTED.labels(table).inc(n)


class MetricsMiddleware:
    """Pure ASGI middleware: latency by route template (not raw path, which would explode label
    cardinality with ids), and ingestion request counts."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            code = str(status["code"])
            HTTP_LATENCY.labels(scope["method"], template, code).observe(time.perf_counter() - started)
            if template in INGEST_ROUTES:
                INGEST_REQUESTS.labels(template, code).inc()
