"""Prometheus metrics (`GET /metrics` on web and serve, `METRICS_PORT` on a worker): the
process-wide series of `owlscope.telemetry`, and queue depth and backlog age read from the stores at
scrape time by `QueueCollector`, so every process reports the shared queue as it is, not as it saw it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from owlscope.pipeline.blobs import FAILED, PENDING

if TYPE_CHECKING:
    from owlscope.services import Services


class QueueCollector(Collector):
    """Gauges read at scrape time: jobs waiting in the queue, the age of the oldest accepted event
    blob not yet inserted (the sweeper's view of the backlog, so lost jobs count), and, embedded,
    the OLAP result cache's hits, misses and bytes held."""

    def __init__(self, services: Services):
        self.services = services

    def collect(self) -> Iterator[Metric]:
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
        failed = GaugeMetricFamily(
            "owlscope_ingest_failed_blobs",
            "Accepted event blobs that can never be stored, parked in events/failed/ with the reason",
        )
        failed.add_metric([], float(sum(1 for _ in self.services.blobs.list(FAILED))))
        yield failed
        cache = self.services.olap.result_cache
        if cache is not None:  # embedded: reads answered from memory until a write that can change them
            for name, doc, value in (("hits", "Reads answered by the result cache", cache.hits),
                                     ("misses", "Cacheable reads sent to the engine", cache.misses)):
                counter = CounterMetricFamily(f"owlscope_olap_result_cache_{name}", doc)
                counter.add_metric([], float(value))
                yield counter
            held = GaugeMetricFamily("owlscope_olap_result_cache_bytes", "Estimated bytes of results held")
            held.add_metric([], float(cache.bytes_held))
            yield held


def render(services: Services) -> bytes:
    """The process-wide metrics followed by this installation's queue gauges."""
    local = CollectorRegistry(auto_describe=False)
    local.register(QueueCollector(services))
    return generate_latest(REGISTRY) + generate_latest(local)


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
