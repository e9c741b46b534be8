"""The typed bundle of engines, clients, pools and caches, built once per process in the app's
lifespan (or by a CLI command) and handed to routes and jobs. Nothing here runs at import time.

`build_services` builds every part before the bundle exists; the only part made from the bundle
itself is the ingest processor (it calls the after-flush hooks with it), made by the constructor.
`close()` stops and releases everything the bundle owns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from owlscope.auth.keys import ApiKeyCache
from owlscope.auth.ratelimit import SignInLimiter
from owlscope.cache import TTLCache
from owlscope.config import Settings
from owlscope.evals.queueing import JudgePool
from owlscope.ingestion.rows import Rows
from owlscope.pipeline.process import IngestProcessor
from owlscope.prompts.store import PromptStore
from owlscope.storage.blob import BlobStore
from owlscope.storage.olap.client import Olap
from owlscope.storage.queue import JobQueue

log = logging.getLogger("owlscope")

# Called with (services, rows) after each batch of rows is inserted; each must be idempotent (a
# replayed blob calls it again with the same rows).
AfterFlushHook = Callable[["Services", Rows], None]


@dataclass(frozen=True)
class ReadCaches:
    """OLAP reads the UI shows on many pages and that may be a little stale, per process."""

    environments: TTLCache[str, list[str]] = field(default_factory=lambda: TTLCache(60.0, 10_000))
    filter_options: TTLCache[str, dict[str, list[str]]] = field(default_factory=lambda: TTLCache(60.0, 5_000))
    dashboards: TTLCache[tuple[Any, ...], dict[str, Any]] = field(default_factory=lambda: TTLCache(30.0, 1_000))


@dataclass
class Services:
    settings: Settings
    db: Engine
    sessions: sessionmaker[Session]
    olap: Olap
    blobs: BlobStore
    queue: JobQueue
    keys: ApiKeyCache
    prompts: PromptStore
    judges: JudgePool
    after_flush: Sequence[AfterFlushHook] = ()
    read_caches: ReadCaches = field(default_factory=ReadCaches)
    sign_in_limiter: SignInLimiter = field(default_factory=SignInLimiter)
    # project id -> its Masker (None: nothing masked); see pipeline.masking
    maskers: TTLCache[str, Any] = field(default_factory=lambda: TTLCache(30.0, 10_000))
    processor: IngestProcessor = field(init=False)

    def __post_init__(self) -> None:
        self.processor = IngestProcessor(self)

    def close(self) -> None:
        """Stop the worker threads (consumer, flusher, sweeper, judges), then release connections."""
        self.queue.stop_consumer()
        self.processor.stop()
        self.judges.shutdown()
        self.prompts.cache.close()
        self.queue.close()
        self.olap.close()
        self.db.dispose()


def after_flush_hooks() -> tuple[AfterFlushHook, ...]:
    """What reacts to newly stored rows: dataset runs from experiment spans, then evaluators on new
    traces, observations and run items (after the recorder, so the run items of these traces exist)."""
    from owlscope.datasets.recording import record_experiments
    from owlscope.evals.jobs import schedule_new_targets

    return (record_experiments, schedule_new_targets)


def make_private(data_dir: Path) -> None:
    """The data directory holds users, key hashes and raw events: only its owner may enter it, and
    its top-level files (databases, secrets) are the owner's alone."""
    try:
        data_dir.chmod(0o700)
        for path in data_dir.iterdir():
            if path.is_file():
                path.chmod(0o600)
    except OSError as exc:  # e.g. a mounted volume owned by someone else: keep going, say so
        log.warning("cannot restrict the permissions of %s: %s", data_dir, exc)


def build_services(settings: Settings, *, migrate: bool = True, olap_database: str | None = None) -> Services:
    """Connect every seam, run pending migrations, and apply headless initialization."""
    from owlscope.accounts.bootstrap import init_from_settings
    from owlscope.config import ConfigError
    from owlscope.evals.crypto import check_encryption
    from owlscope.integrations.webhooks import prompt_listener
    from owlscope.prompts.cache import build_prompt_cache
    from owlscope.storage.olap.migrate import migrate as migrate_olap
    from owlscope.storage.oltp.db import make_engine, make_session_factory
    from owlscope.storage.oltp.migrate import upgrade
    from owlscope.worker.tasks import register_tasks

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    if migrate:
        upgrade(engine)
    sessions = make_session_factory(engine)
    problems = check_encryption(settings, sessions)
    if problems:
        engine.dispose()
        raise ConfigError(problems)
    olap = Olap(settings, database=olap_database)
    if migrate:
        migrate_olap(olap)
    if olap.embedded:
        # The first query after open loads marks and is slow: pay it now, not on a user's request.
        olap.query("SELECT count() FROM {db}.traces")
    services = Services(
        settings=settings, db=engine, sessions=sessions, olap=olap, blobs=BlobStore(settings),
        queue=JobQueue(settings), keys=ApiKeyCache(sessions, settings.salt or ""),
        prompts=PromptStore(sessions, build_prompt_cache(settings.redis_url, settings.prompt_cache_ttl_seconds)),
        judges=JudgePool(), after_flush=after_flush_hooks(),
    )
    services.prompts.listeners = (prompt_listener(services),)
    try:
        register_tasks(services)
        init_from_settings(sessions, settings)
    except BaseException:
        services.close()
        raise
    make_private(settings.data_dir)
    return services
