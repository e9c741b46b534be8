"""The worker side of ingestion: read a blob, map it to event rows, insert in batches.

Rows from many blobs are buffered and inserted together (at least every INGEST_FLUSH_INTERVAL_MS,
or sooner when the buffer is large): ClickHouse wants few large inserts, not many small ones. A
blob is moved to `processed/` only after its rows are inserted; if the process dies first, the
sweeper enqueues it again and the engine's merge makes the replay harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import orjson

from owlscope.ingestion.batch import map_batch_events
from owlscope.ingestion.otel import decode_otlp, map_otlp
from owlscope.ingestion.rows import Rows, observations_table, scores_table, traces_table
from owlscope.pipeline import blobs
from owlscope.pipeline.enrich import Enricher
from owlscope.telemetry import observe_flush

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.worker")
FLUSH_ROWS = 20_000


def map_envelope(env: blobs.Envelope) -> Rows:
    if env.kind == "otel":
        req = decode_otlp(env.payload, env.content_type or "application/x-protobuf", env.content_encoding)
        return map_otlp(req, env.project_id, env.sdk_version)
    if env.kind == "batch":
        events = orjson.loads(blobs.unpack(env.payload, env.content_encoding))
        return map_batch_events(events, env.project_id)
    raise ValueError(f"unknown blob kind {env.kind!r}")


class IngestProcessor:
    def __init__(self, services: Services):
        self.services = services
        self.enricher = Enricher(services)
        self._lock = threading.Lock()  # guards the buffer
        self._flush_lock = threading.Lock()  # one insert at a time
        self._rows = Rows()
        self._keys: list[str] = []
        self._inflight: set[str] = set()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.flushed_rows = 0

    # ---- jobs ---------------------------------------------------------------------------
    def process_key(self, key: str) -> None:
        with self._lock:
            if key in self._inflight:
                return
            self._inflight.add(key)
        try:
            data = self.services.blobs.get(key)
        except FileNotFoundError:
            with self._lock:
                self._inflight.discard(key)
            return  # already processed by another worker
        try:
            rows = map_envelope(blobs.decode(data))
        except Exception:
            # The web validated this payload, so it cannot be mapped on any retry: park it.
            log.exception("cannot map blob %s; moved to %s", key, blobs.FAILED)
            self.services.blobs.rename(key, blobs.moved(key, blobs.FAILED))
            with self._lock:
                self._inflight.discard(key)
            return
        try:
            self.enricher.enrich(rows)
        except Exception:
            # Enrichment reads the OLTP store; a failure there is transient: leave the blob
            # pending and let the sweeper retry it.
            log.exception("cannot enrich blob %s; it stays pending", key)
            with self._lock:
                self._inflight.discard(key)
            return
        with self._lock:
            self._rows.extend(rows)
            self._keys.append(key)
            big = len(self._rows) >= FLUSH_ROWS
        if big:
            self.flush()

    def flush(self) -> int:
        with self._flush_lock:
            with self._lock:
                rows, keys = self._rows, self._keys
                self._rows, self._keys = Rows(), []
            if not keys:
                return 0
            olap = self.services.olap
            started = time.perf_counter()
            try:
                if rows.observations:
                    olap.insert_arrow("observation_events", observations_table(rows.observations))
                if rows.traces:
                    olap.insert_arrow("trace_events", traces_table(rows.traces))
                if rows.scores:
                    olap.insert_arrow("scores", scores_table(rows.scores))
            except Exception:
                log.exception("insert failed for %d blobs; they stay pending for the sweeper", len(keys))
                with self._lock:
                    self._inflight.difference_update(keys)
                return 0
            observe_flush(time.perf_counter() - started, {
                "observation_events": len(rows.observations), "trace_events": len(rows.traces),
                "scores": len(rows.scores)})
            for key in keys:
                try:
                    self.services.blobs.rename(key, blobs.moved(key, blobs.PROCESSED))
                except FileNotFoundError:
                    pass
            with self._lock:
                self._inflight.difference_update(keys)
            self.flushed_rows += len(rows)
            self._after_flush(rows)
            return len(rows)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No insert starts while inside (accepting and buffering go on): a consistent cut of the
        OLAP tables for a backup."""
        with self._flush_lock:
            yield

    def _after_flush(self, rows: Rows) -> None:
        """Hooks that react to newly stored rows (evaluators on new traces, dataset runs from
        experiment spans). They run after the insert and must be idempotent: a replayed blob
        calls them again with the same rows."""
        for hook in self.services.after_flush:
            try:
                hook(self.services, rows)
            except Exception:  # noqa: BLE001 - one hook's failure must not stop ingestion
                log.exception("after-flush hook %s failed", getattr(hook, "__name__", hook))

    # ---- background loops ---------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        for target in (self._flush_loop, self._sweep_loop):
            t = threading.Thread(target=target, name=f"owlscope-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
        self.flush()

    def _flush_loop(self) -> None:
        interval = self.services.settings.flush_interval_ms / 1000
        while not self._stop.wait(interval):
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - keep the loop alive; the error is logged
                log.exception("flush failed")

    def _sweep_loop(self) -> None:
        while not self._stop.wait(min(15.0, self.services.settings.sweeper_grace_seconds / 2)):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001
                log.exception("sweep failed")

    def sweep(self, grace_seconds: float | None = None) -> int:
        """Enqueue blobs still pending after the grace period (their job was lost)."""
        grace = self.services.settings.sweeper_grace_seconds if grace_seconds is None else grace_seconds
        if self.services.queue.pending() > 0 and grace_seconds is None:
            return 0  # a backlog is being worked off: its blobs are not lost
        cutoff = time.time() - grace
        count = 0
        for info in self.services.blobs.list(blobs.PENDING):
            if info.last_modified.timestamp() > cutoff:
                continue
            with self._lock:
                if info.key in self._inflight:
                    continue
            self.services.queue.enqueue("ingest_blob", info.key, check_full=False)
            count += 1
        if count:
            log.info("sweeper re-enqueued %d pending blobs", count)
        return count
