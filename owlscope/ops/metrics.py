"""Prometheus metrics (`GET /metrics` on web and serve, `METRICS_PORT` on a worker).

Counters and histograms live in prometheus-client's process-wide registry and are updated where
the work happens. Queue depth and backlog age are read from the stores at scrape time by
`QueueCollector`, so every process reports the shared queue as it is, not as it saw it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

if TYPE_CHECKING:
    from owlscope.services import Services

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


def observe_flush(seconds: float, counts: dict[str, int]) -> None:
    FLUSH_SECONDS.observe(seconds)
    for table, n in counts.items():
        if n:
            ROWS_INSERTED.labels(table).inc(n)


class QueueCollector(Collector):
    """Backlog gauges read at scrape time: jobs waiting in the queue, and the age of the oldest
    accepted event blob not yet inserted (the sweeper's view of the backlog, so lost jobs count)."""

    def __init__(self, services: Services):
        self.services = services

    def collect(self) -> Iterator[Metric]:
        from owlscope.pipeline.blobs import PENDING

        depth = GaugeMetricFamily("owlscope_queue_depth", "Jobs waiting in the queue", labels=["backend"])
        queue = self.services.queue
        depth.add_metric([queue.backend], float(queue.huey.pending_count()))
        yield depth
        oldest: float | None = None
        count = 0
        for info in self.services.blobs.list(PENDING):
            count += 1
            ts = info.last_modified.timestamp()
            oldest = ts if oldest is None else min(oldest, ts)
        age = GaugeMetricFamily(
            "owlscope_queue_oldest_job_age_seconds",
            "Age of the oldest accepted event blob not yet inserted (0 when there is none)",
        )
        age.add_metric([], max(0.0, time.time() - oldest) if oldest is not None else 0.0)
        yield age
        pending = GaugeMetricFamily("owlscope_ingest_pending_blobs", "Accepted event blobs not yet inserted")
        pending.add_metric([], float(count))
        yield pending


def render(services: Services) -> bytes:
    """The process-wide metrics followed by this installation's queue gauges."""
    local = CollectorRegistry(auto_describe=False)
    local.register(QueueCollector(services))
    return generate_latest(REGISTRY) + generate_latest(local)


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


def serve_worker_metrics(services: Services, port: int) -> Any:
    """A worker has no web server: expose its metrics on their own port."""
    from prometheus_client import start_http_server

    class _Both(Collector):
        def collect(self) -> Iterator[Metric]:
            yield from REGISTRY.collect()
            yield from QueueCollector(services).collect()

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Both())
    server, _thread = start_http_server(port, addr="0.0.0.0", registry=registry)
    return server
