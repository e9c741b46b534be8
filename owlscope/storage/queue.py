"""The queue seam: huey, on SQLite in embedded mode and on Redis when REDIS_URL is set.

Tasks are registered by name when services are built (not at import), so a task is always found
by the consumer that built the same services. Dequeue is destructive: every job must be idempotent
and re-enqueued by a sweeper from durable state if a process dies while running it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from owlscope.config import Settings

log = logging.getLogger("owlscope.queue")
# Longest a periodic task is kept from running again by a run that is still going (or whose
# process died holding the lock): a full rollup rebuild of a large store takes minutes.
PERIODIC_LOCK_SECONDS = 15 * 60


class _EmbeddedConsumer(Consumer):
    """huey's consumer without its signal handlers: the host process (uvicorn, `owlscope worker`)
    owns SIGTERM/SIGINT and stops the consumer itself, gracefully."""

    def _set_signal_handlers(self) -> None:
        pass


class QueueFull(Exception):
    """More jobs are pending than QUEUE_MAX_PENDING allows."""


class JobQueue:
    def __init__(self, settings: Settings, *, name: str | None = None):
        name = name or settings.queue_name
        self.max_pending = settings.queue_max_pending
        self.backend = "redis" if settings.redis_url else "sqlite"
        if settings.redis_url:
            self.huey: Huey = RedisHuey(name, url=settings.redis_url, utc=True)
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.huey = SqliteHuey(
                name, filename=str(settings.data_dir / "queue.db"), utc=True, timeout=10, journal_mode="wal",
                cache_mb=8, fsync=False,
            )
        self._tasks: dict[str, Any] = {}
        self._consumer: Consumer | None = None
        self._size_cache = (0.0, 0)

    def register(self, name: str, fn: Callable[..., Any], *, retries: int = 0, retry_delay: int = 0) -> None:
        self._tasks[name] = self.huey.task(name=name, retries=retries, retry_delay=retry_delay)(fn)

    def every_minute(self, name: str, fn: Callable[[], Any], *, what: str) -> None:
        """Run `fn` once a minute in the consumer; a failure is logged (as `what`) and the next
        minute tries again. A run that finds the previous one still going (a refresh that takes
        longer than a minute, or the same minute's run of another worker process: each consumer
        schedules it) is skipped instead of doing the same work beside it."""
        guard = self._guard(name)

        def run() -> None:
            if not guard.acquire(blocking=False):
                log.info("%s: the previous run is still going; this one is skipped", what)
                return
            try:
                fn()
            except Exception:  # noqa: BLE001 - the next minute retries
                log.exception("%s failed", what)
            finally:
                with contextlib.suppress(Exception):  # a Redis lock held past its timeout is gone
                    guard.release()

        self._tasks[name] = self.huey.periodic_task(lambda _ts: True, name=name)(run)

    def _guard(self, name: str) -> Any:
        """A lock held while a periodic task runs: in Redis, shared by every process of the
        deployment, with a timeout, so a process that dies holding it blocks the task for at most
        PERIODIC_LOCK_SECONDS; on SQLite (one process) a thread lock."""
        if self.backend == "redis":
            return self.huey.storage.conn.lock(f"owlscope:periodic:{self.huey.name}:{name}",
                                               timeout=PERIODIC_LOCK_SECONDS)
        return threading.Lock()

    def enqueue(self, name: str, *args: Any, delay: float | None = None, check_full: bool = True) -> None:
        if check_full and self.pending() >= self.max_pending:
            raise QueueFull(f"{self.pending()} jobs pending")
        task = self._tasks[name]
        if delay:
            task.schedule(args=args, delay=delay)
        else:
            task(*args)

    def pending(self) -> int:
        """Jobs waiting; cached for 100 ms because it is checked on every ingestion request."""
        at, size = self._size_cache
        now = time.monotonic()
        if now - at > 0.1:
            size = self.huey.pending_count()
            self._size_cache = (now, size)
        return size

    def ping(self) -> bool:
        try:
            self.huey.pending_count()
            return True
        except Exception:  # noqa: BLE001 - reported by the caller
            return False

    def start_consumer(self, workers: int) -> None:
        """Run consumer threads inside this process (embedded `serve`, and `worker`)."""
        self._consumer = _EmbeddedConsumer(
            self.huey, workers=workers, worker_type="thread", periodic=True, initial_delay=0.02, max_delay=0.05,
            backoff=1.15, check_worker_health=True,
        )
        self._consumer.start()

    def stop_consumer(self) -> None:
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None

    def close(self) -> None:
        """Stop the consumer and close the connections to the queue's store."""
        self.stop_consumer()
        if self.backend == "redis":
            self.huey.storage.conn.close()
        else:
            self.huey.storage.close()

    def flush(self) -> None:
        """Drop every pending job (tests only)."""
        self.huey.flush()
