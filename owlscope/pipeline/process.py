"""The worker side of ingestion: read a blob, map it to event rows, insert in batches.

Rows from many blobs are buffered and inserted together (once they have waited
INGEST_FLUSH_INTERVAL_MS, or sooner when the buffer is large or a small request's rows wait):
ClickHouse wants few large inserts, not many small ones. A
blob is moved to `processed/` only after its rows are inserted; if the process dies first, the
sweeper enqueues it again and the engine's merge makes the replay harmless.
"""

from __future__ import annotations

import itertools
import logging
import queue
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import orjson

from owlscope.ingestion.batch import map_batch_events
from owlscope.ingestion.limits import clamp_rows
from owlscope.ingestion.otel import decode_otlp, map_otlp, span_count
from owlscope.ingestion.rows import TABLES, Rows
from owlscope.pipeline import blobs
from owlscope.pipeline.accept import INGEST_TASK
from owlscope.pipeline.enrich import Enricher
from owlscope.pipeline.handoff import Handoff
from owlscope.pipeline.retention import purge_processed
from owlscope.telemetry import StageTimer, add_stage, observe_flush

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.worker")
# One insert takes at most FLUSH_ROWS rows holding at most FLUSH_TEXT_CHARS characters of JSON text
# (input, output, metadata: most of a row's memory). Large inserts make large parts, which the engine
# merges less often: merging the aggregate states again and again was the largest CPU cost of
# sustained ingestion with 20,000-row inserts (docs/performance.md).
FLUSH_ROWS = 100_000
FLUSH_TEXT_CHARS = 64 * 1024 * 1024
# While an insert runs, the job threads go on mapping into the buffer up to this many times those
# bounds; beyond, a job thread waits for the running insert and inserts the buffer itself.
BUFFER_INSERTS = 2
MIN_FLUSH_GAP_SECONDS = 0.1
# Every insert costs the engine a new part in each table it writes, and the merges that fold those
# parts into the large ones: about 0.1 s of CPU per insert whatever its size, so ten small inserts a
# second kept a core busy (docs/performance.md). Buffered bulk rows therefore wait for the flush
# interval, unless the buffer holds one insert's worth, rows of an interactive request wait, or
# the worker went idle with at least this many rows buffered (a burst ending: its tail is not kept
# waiting).
IDLE_FLUSH_ROWS = 4_000
# A request of at most this many spans/events is interactive (an SDK's flush() of a few traces): its
# job goes ahead of bulk ones and its rows are inserted without waiting for the flush interval.
INTERACTIVE_ITEMS = 50
MOVE_RETRY_SECONDS = 5.0
PURGE_INTERVAL_SECONDS = 600.0


def decode_envelope(env: blobs.Envelope) -> tuple[Any, int]:
    """The decoded payload of one blob (an OTLP request or a list of events) and its size in
    spans/events."""
    if env.kind == "otel":
        # accepted by the web under its limits; a limit lowered since must not strand the blob
        req = decode_otlp(env.payload, env.content_type or "application/x-protobuf", env.content_encoding,
                          max_spans=sys.maxsize)
        return req, span_count(req)
    if env.kind == "batch":
        events = orjson.loads(blobs.unpack(env.payload, env.content_encoding))
        return events, len(events) if isinstance(events, list) else 0
    raise ValueError(f"unknown blob kind {env.kind!r}")


def map_decoded(env: blobs.Envelope, decoded: Any) -> Rows:
    """The rows of a decoded blob, every value within the stored ranges (see ingestion.limits)."""
    if env.kind == "otel":
        return clamp_rows(map_otlp(decoded, env.project_id, env.sdk_version))
    return clamp_rows(map_batch_events(decoded, env.project_id))


def map_envelope(env: blobs.Envelope) -> Rows:
    """The rows of one blob, every value within the stored ranges (see ingestion.limits)."""
    return map_decoded(env, decode_envelope(env)[0])


def _groups(pending: list[tuple[str, Rows]], max_rows: int, max_chars: int) -> list[list[tuple[str, Rows]]]:
    """Consecutive blobs grouped into inserts of at most max_rows rows and max_chars characters of
    text (a bigger blob alone)."""
    groups: list[list[tuple[str, Rows]]] = []
    rows = chars = 0
    for item in pending:
        n, c = len(item[1]), item[1].text_chars
        if not groups or rows + n > max_rows or chars + c > max_chars:
            groups.append([])
            rows = chars = 0
        groups[-1].append(item)
        rows += n
        chars += c
    return groups


class IngestProcessor:
    def __init__(self, services: Services):
        self.services = services
        self.enricher = Enricher(services)
        self._lock = threading.Lock()  # guards the buffer and the key sets
        self._flush_lock = threading.Lock()  # one bulk insert at a time
        # ...and at most one insert of small requests beside it (the interactive lane)
        self._interactive_lock = threading.Lock()
        self._pending: list[tuple[str, Rows]] = []  # (blob key, its rows), in arrival order
        self._buffered_at: list[float] = []  # perf_counter when each pending blob was buffered
        self._interactive: set[str] = set()  # pending blobs of small requests: inserted first
        self.handoff = Handoff(services.settings.handoff_max_spans)
        self._buffered_rows = 0
        self._buffered_chars = 0
        self._flusher_running = False
        self._small_at = 0.0  # perf_counter when the last insert of small requests' rows started
        self._bulk_inserting = False  # the flush thread is inserting bulk rows
        self._inflight: set[str] = set()
        self._unmoved: dict[str, float] = {}  # rows in, move to processed/ failed: key -> next retry
        self._swept: dict[str, float] = {}  # key -> when the sweeper last enqueued it
        self._stop = threading.Event()
        self._wake = threading.Event()  # flush now: the worker went idle or interactive rows wait
        self._threads: list[threading.Thread] = []
        # Jobs of requests accepted by this process, when its worker runs here (`owlscope serve`):
        # (lane, order, key), small requests first (an SDK's flush() must not wait behind a
        # bulk backlog). Not durable, like any dequeued job: the blobs are, and the sweeper
        # finds a blob whose job was lost.
        self._local: queue.PriorityQueue[tuple[int, int, str | None]] = queue.PriorityQueue()  # None: wake up
        self._local_keys: set[str] = set()
        self._local_order = itertools.count()
        self._local_on = False
        self.flushed_rows = 0
        self.failed_blobs = 0  # blobs parked in failed/ by this process (a metric)

    # ---- jobs ---------------------------------------------------------------------------
    def process_key(self, key: str, *, interactive: bool = False) -> None:
        with self._lock:
            if key in self._inflight or key in self._unmoved:
                return
            self._inflight.add(key)
        timer = StageTimer()
        handed = self.handoff.take(key)
        data: bytes | None = None
        if handed is not None:
            env, decoded, items = handed
        else:
            try:
                data = self.services.blobs.get(key)
            except FileNotFoundError:
                with self._lock:
                    self._inflight.discard(key)
                return  # already processed by another worker
            timer.lap("read")
        try:
            if handed is None:
                env = blobs.decode(data)
                decoded, items = decode_envelope(env)
                timer.lap("decode", items)
            add_stage("queue_wait", max(0.0, time.time() - env.received_at))
            timer.skip()
            rows = map_decoded(env, decoded)
            del decoded
        except Exception as exc:
            # The web validated this payload, so it cannot be mapped on any retry: park it.
            log.exception("cannot map blob %s; moved to %s", key, blobs.FAILED)
            if data is None:
                data = self._read_or_none(key)
            if data is not None:
                self._park(key, data, f"cannot map: {exc}")
            with self._lock:
                self._inflight.discard(key)
            return
        timer.lap("map", items)
        try:
            self.enricher.enrich(rows)
        except Exception:
            # Enrichment reads the OLTP store; a failure there is transient: leave the blob
            # pending and let the sweeper retry it.
            log.exception("cannot enrich blob %s; it stays pending", key)
            with self._lock:
                self._inflight.discard(key)
            return
        timer.lap("price", items)
        with self._lock:
            self._pending.append((key, rows))
            self._buffered_at.append(time.perf_counter())
            if interactive:
                self._interactive.add(key)
            self._buffered_rows += len(rows)
            self._buffered_chars += rows.text_chars
            full, at_cap = self._holds(1), self._holds(BUFFER_INSERTS)
        if full:
            if self._flusher_running and not at_cap:
                self._wake.set()  # the flusher inserts it; this thread goes on mapping
            else:
                self.flush()  # waits for a running insert: the buffer stays bounded
        elif interactive:
            if self._bulk_inserting or (self._flush_lock.locked() and not self.services.settings.small_flush_gap_ms):
                # a bulk insert is running: this small request's rows go in beside it now
                # instead of after it (an SDK's flush() must not wait for a bulk backlog); with a
                # small flush gap, an insert of small requests running is left to the flusher
                self._insert_interactive()
            else:
                self._wake.set()

    def _holds(self, inserts: int) -> bool:
        """Whether the buffer holds this many inserts' worth of rows or text (under `_lock`)."""
        return (self._buffered_rows >= inserts * FLUSH_ROWS
                or self._buffered_chars >= inserts * FLUSH_TEXT_CHARS)

    def _read_or_none(self, key: str) -> bytes | None:
        try:
            return self.services.blobs.get(key)
        except Exception:  # noqa: BLE001 - gone or unreadable: nothing to park
            return None

    def flush(self) -> int:
        with self._flush_lock:
            with self._lock:
                pending, buffered_at, interactive = self._pending, self._buffered_at, self._interactive
                self._pending, self._buffered_at, self._interactive = [], [], set()
                self._buffered_rows = self._buffered_chars = 0
            self._retry_moves()
            if not pending:
                return 0
            started = time.perf_counter()
            add_stage("buffer_wait", sum(started - t for t in buffered_at))
            # the rows of small requests go in a first, small insert of their own: readable
            # without waiting for the bulk rows buffered beside them
            small = [p for p in pending if p[0] in interactive]
            bulk = [p for p in pending if p[0] not in interactive]
            if small:
                self._small_at = started
            groups = ([small] if small else []) + _groups(bulk, FLUSH_ROWS, FLUSH_TEXT_CHARS)
            inserted: list[tuple[str, Rows]] = []
            for group in groups:
                self._bulk_inserting = group is not small
                try:
                    inserted.extend(self._insert_group(group))
                finally:
                    self._bulk_inserting = False
                urgent = self._take_interactive()
                if urgent:  # buffered while this flush ran: in before the next large group
                    inserted.extend(self._insert_group(urgent))
            return self._finish(inserted, started)

    def _insert_interactive(self) -> None:
        """Insert the buffered rows of small requests on this thread, beside a running bulk
        insert. One such insert at a time, never waited for: when another thread is inserting
        small requests it takes these too on its next round; when a backup has paused inserts,
        the flusher inserts them after the pause."""
        while self._interactive_lock.acquire(blocking=False):
            try:
                urgent = self._take_interactive()
                if urgent:
                    started = self._small_at = time.perf_counter()
                    self._finish(self._insert_group(urgent), started)
            finally:
                self._interactive_lock.release()
            with self._lock:
                if not self._interactive:  # none arrived while this round ran
                    return
        self._wake.set()

    def _finish(self, inserted: list[tuple[str, Rows]], started: float) -> int:
        """After an insert: metrics, the blobs moved to processed/, the after-flush hooks."""
        done = Rows()
        for _key, rows in inserted:
            done.extend(rows)
        observe_flush(time.perf_counter() - started, {
            "observation_events": len(done.observations), "trace_events": len(done.traces),
            "scores": len(done.scores)})
        timer = StageTimer()
        self._move_processed([key for key, _ in inserted])
        timer.lap("finish", len(inserted))
        with self._lock:
            self.flushed_rows += len(done)
        if len(done):
            self._after_flush(done)
            timer.lap("hooks", len(done))
        return len(done)

    def _take_interactive(self) -> list[tuple[str, Rows]]:
        """The buffered blobs of small requests, taken out of the buffer."""
        with self._lock:
            if not self._interactive:
                return []
            urgent = [p for p in self._pending if p[0] in self._interactive]
            kept = [(p, at) for p, at in zip(self._pending, self._buffered_at, strict=True)
                    if p[0] not in self._interactive]
            self._pending = [p for p, _ in kept]
            self._buffered_at = [at for _, at in kept]
            self._buffered_rows -= sum(len(rows) for _, rows in urgent)
            self._buffered_chars -= sum(rows.text_chars for _, rows in urgent)
            self._interactive = set()
        return urgent

    def _insert(self, parts: list[Rows]) -> None:
        """Insert the rows of several blobs, per table in slices of at most FLUSH_ROWS rows: memory
        per insert is bounded whatever the size of one request."""
        olap = self.services.olap
        for table, attr, to_arrow, key in TABLES:
            items = [row for rows in parts for row in getattr(rows, attr)]
            for i in range(0, len(items), FLUSH_ROWS):
                timer = StageTimer()
                batch = items[i : i + FLUSH_ROWS]
                data = to_arrow(batch)
                timer.lap("arrow", data.num_rows)
                olap.insert_arrow(table, data, projects={row.project_id for row in batch},
                                  keys=None if key is None else frozenset(getattr(row, key) for row in batch))
                timer.lap("insert", data.num_rows)

    def _insert_group(self, group: list[tuple[str, Rows]]) -> list[tuple[str, Rows]]:
        """Insert the rows of several blobs at once; on failure, split the group in halves so the
        good blobs land and a poison blob is parked in failed/ with the reason. When the store
        itself is down, nothing is parked: the blobs stay pending for the sweeper."""
        try:
            self._insert([rows for _, rows in group])
            return group
        except Exception as exc:  # noqa: BLE001 - classified below
            error = exc
        if not self._olap_healthy():
            log.error("insert failed and the OLAP store is unreachable (%s); %d blobs stay pending",
                      error, len(group))
            self._release([key for key, _ in group])
            return []
        if len(group) == 1:
            key = group[0][0]
            time.sleep(0.5)  # one more try alone: an engine hiccup (memory, parts) is not poison
            try:
                self._insert([group[0][1]])
                return group
            except Exception as exc:  # noqa: BLE001
                error = exc
            log.error("insert of blob %s failed (%s); moved to %s", key, error, blobs.FAILED)
            try:
                data = self.services.blobs.get(key)
            except Exception:  # noqa: BLE001 - gone or unreadable: nothing to park
                data = None
            if data is not None:
                self._park(key, data, f"cannot insert: {error}")
            self._release([key])
            return []
        half = len(group) // 2
        return self._insert_group(group[:half]) + self._insert_group(group[half:])

    def _olap_healthy(self) -> bool:
        try:
            return bool(self.services.olap.ping())
        except Exception:  # noqa: BLE001
            return False

    def _park(self, key: str, data: bytes, reason: str) -> None:
        """Move a blob that can never be stored to failed/, with the reason in its header."""
        try:
            self.services.blobs.put(blobs.moved(key, blobs.FAILED), blobs.with_error(data, reason))
            self.services.blobs.delete(key)
        except Exception:  # noqa: BLE001 - it stays pending and is retried; logged
            log.exception("cannot move blob %s to %s", key, blobs.FAILED)
            return
        self.failed_blobs += 1

    def _release(self, keys: list[str]) -> None:
        with self._lock:
            self._inflight.difference_update(keys)

    def _move_processed(self, keys: list[str]) -> None:
        failed: list[str] = []
        for key in keys:
            try:
                self.services.blobs.rename(key, blobs.moved(key, blobs.PROCESSED))
            except FileNotFoundError:
                pass
            except Exception as exc:  # noqa: BLE001 - e.g. a read-only store: retried later
                log.warning("cannot move %s to %s (%s); retrying later", key, blobs.PROCESSED, exc)
                failed.append(key)
        retry_at = time.monotonic() + MOVE_RETRY_SECONDS
        with self._lock:
            for key in failed:
                self._unmoved[key] = retry_at
            self._inflight.difference_update(keys)

    def _retry_moves(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [k for k, at in self._unmoved.items() if at <= now]
            for k in due:
                del self._unmoved[k]
        if due:
            with self._lock:
                self._inflight.update(due)
            self._move_processed(due)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No insert starts while inside (accepting and buffering go on): a consistent cut of the
        OLAP tables for a backup."""
        with self._flush_lock, self._interactive_lock:
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
        self.handoff.enabled = self.handoff.max_items > 0
        self._started_at = time.time()
        # Crash recovery: blobs left pending by a previous process (their jobs died with it)
        # are enqueued now, not after the sweeper's grace period.
        try:
            self.sweep(before=self._started_at)
        except Exception:  # noqa: BLE001 - the sweeper loop retries
            log.exception("startup sweep failed")
        targets = [self._flush_loop, self._sweep_loop]
        self._local_on = self.services.settings.local_ingest_threads > 0
        if self._local_on:
            targets += [self._local_loop] * self.services.settings.local_ingest_threads
        for target in targets:
            t = threading.Thread(target=target, name=f"owlscope-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        self._local_on = False
        self._wake.set()
        self.handoff.enabled = False
        for _ in range(self.services.settings.local_ingest_threads):
            self._local.put((-1, next(self._local_order), None))  # wakes a waiting job thread now
        for t in self._threads:
            t.join(timeout=10)
        self._threads.clear()
        self.flush()
        self.handoff.clear()  # what it held is read from the blobs
        self._requeue_local()

    def _requeue_local(self) -> None:
        """Jobs accepted here and not started go to the shared queue (their blobs are durable; the
        next start's sweep would find them too)."""
        left: list[str] = []
        while True:
            try:
                key = self._local.get_nowait()[2]
            except queue.Empty:
                break
            if key is not None:
                left.append(key)
        with self._lock:
            self._local_keys.clear()
        for key in left:
            try:
                self.services.queue.enqueue(INGEST_TASK, key, check_full=False)
            except Exception:  # noqa: BLE001 - the blob stays pending; the next sweep finds it
                log.warning("could not enqueue %s at shutdown; the sweeper will pick it up", key)

    # ---- jobs of this process ------------------------------------------------------------
    def submit(self, key: str, items: int) -> bool:
        """Queue the job of a blob accepted by this process for this process's worker threads;
        False when no worker runs here (the caller enqueues it on the shared queue)."""
        if not self._local_on:
            return False
        with self._lock:
            self._local_keys.add(key)
        lane = 0 if items <= INTERACTIVE_ITEMS else 1
        self._local.put((lane, next(self._local_order), key))
        return True

    def backlog(self) -> int:
        """Jobs queued in this process and not started."""
        return self._local.qsize()

    def _local_loop(self) -> None:
        while not self._stop.is_set():
            try:
                lane, _, key = self._local.get(timeout=0.5)
            except queue.Empty:
                continue
            if key is None:  # stop() woke this thread
                continue
            with self._lock:
                self._local_keys.discard(key)
            try:
                self.process_key(key, interactive=lane == 0)
            except Exception:  # noqa: BLE001 - the blob stays pending; the sweeper retries it
                log.exception("ingest job %s failed", key)
            if self._local.empty():
                self._wake.set()  # nothing else is waiting: insert what is buffered now

    def _flush_loop(self) -> None:
        """Insert what is buffered when it is due (`_due_in`): once its oldest rows have waited
        INGEST_FLUSH_INTERVAL_MS, or sooner for rows of an interactive request, a full buffer, or
        an idle worker holding a large buffer; at most once per MIN_FLUSH_GAP_SECONDS. Few, large
        inserts under a steady load; a small request's rows and a burst's tail are not kept waiting."""
        interval = self.services.settings.flush_interval_ms / 1000
        gap = min(MIN_FLUSH_GAP_SECONDS, interval)
        last = 0.0
        self._flusher_running = True
        try:
            while not self._stop.is_set():
                self._wake.wait(self._due_in(interval))
                self._wake.clear()
                if self._stop.is_set():
                    return
                if self._due_in(interval) > 0:
                    continue  # woken by an idle worker holding a few rows: they wait for the interval
                wait = last + gap - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                last = time.monotonic()
                try:
                    self.flush()
                except Exception:  # noqa: BLE001 - keep the loop alive; the error is logged
                    log.exception("flush failed")
        finally:
            self._flusher_running = False

    def _due_in(self, interval: float) -> float:
        """Seconds until the buffer is to be inserted: when its oldest rows will have waited
        `interval`; sooner for rows of a small request (at once, or INGEST_SMALL_FLUSH_GAP_MS after
        the last insert of such rows); at once when it holds one insert's worth, or when this
        process's worker is idle and it holds IDLE_FLUSH_ROWS rows."""
        with self._lock:
            if not self._pending:
                return interval
            if self._holds(1):
                return 0.0
            if self._buffered_rows >= IDLE_FLUSH_ROWS and self._local_on and self._local.empty():
                return 0.0
            now = time.perf_counter()
            due = self._buffered_at[0] + interval - now
            if self._interactive:
                due = min(due, self._small_at + self.services.settings.small_flush_gap_ms / 1000 - now)
            return max(0.0, due)

    def _sweep_loop(self) -> None:
        purged_at = 0.0
        while not self._stop.wait(min(5.0, self.services.settings.sweeper_grace_seconds / 2)):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001
                log.exception("sweep failed")
            if time.monotonic() - purged_at > PURGE_INTERVAL_SECONDS:
                purged_at = time.monotonic()
                try:
                    purge_processed(self.services)
                except Exception:  # noqa: BLE001
                    log.exception("purging processed raw events failed")

    def sweep(self, grace_seconds: float | None = None, *, before: float | None = None) -> int:
        """Enqueue blobs still pending after the grace period (their job was lost), or every
        blob written before `before` (at startup).

        It runs whether or not the queue is empty: under steady load the queue never is, and a
        stranded blob must still be found. A blob is enqueued again at most once per grace period
        (a blob still waiting in a long backlog is then processed twice, which is harmless)."""
        grace = self.services.settings.sweeper_grace_seconds if grace_seconds is None else grace_seconds
        now = time.time()
        cutoff = before if before is not None else now - grace
        count = 0
        with self._lock:
            self._swept = {k: t for k, t in self._swept.items() if now - t < grace}
        for info in self.services.blobs.list(blobs.PENDING):
            if info.last_modified.timestamp() > cutoff:
                continue
            with self._lock:
                if (info.key in self._inflight or info.key in self._unmoved or info.key in self._swept
                        or info.key in self._local_keys):
                    continue
                self._swept[info.key] = now
            self.services.queue.enqueue(INGEST_TASK, info.key, check_full=False)
            count += 1
        if count:
            log.info("sweeper re-enqueued %d pending blobs", count)
        return count
