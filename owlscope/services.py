"""The typed bundle of engines and clients, built once per process in the app's lifespan (or by a
CLI command) and handed to routes and jobs. Nothing here runs at import time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from owlscope.auth.keys import ApiKeyCache
from owlscope.auth.ratelimit import SignInLimiter
from owlscope.config import Settings
from owlscope.storage.blob import BlobStore
from owlscope.storage.olap.client import Olap
from owlscope.storage.queue import JobQueue

if TYPE_CHECKING:
    from owlscope.ingestion.rows import Rows
    from owlscope.pipeline.process import IngestProcessor

log = logging.getLogger("owlscope")


@dataclass
class Services:
    settings: Settings
    db: Engine
    sessions: sessionmaker[Session]
    olap: Olap
    blobs: BlobStore
    queue: JobQueue
    keys: ApiKeyCache
    processor: IngestProcessor | None = None
    # Called with (services, rows) after each batch of rows is inserted (evaluators on new traces,
    # dataset runs from experiment spans); each must be idempotent.
    after_flush: list[Callable[[Services, Rows], None]] = field(default_factory=list)
    extras: dict = field(default_factory=dict)
    sign_in_limiter: SignInLimiter = field(default_factory=SignInLimiter)

    def close(self) -> None:
        if self.processor is not None:
            self.processor.stop()
        self.queue.stop_consumer()
        self.olap.close()
        self.db.dispose()


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
    from owlscope.bootstrap import init_from_settings
    from owlscope.pipeline.process import IngestProcessor
    from owlscope.storage.olap.migrate import migrate as migrate_olap
    from owlscope.storage.oltp.db import make_engine, make_session_factory
    from owlscope.storage.oltp.migrate import upgrade
    from owlscope.worker.tasks import register_tasks

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    if migrate:
        upgrade(engine)
    sessions = make_session_factory(engine)
    from owlscope.config import ConfigError
    from owlscope.evals.crypto import check_encryption

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
    )
    services.processor = IngestProcessor(services)
    register_tasks(services)
    init_from_settings(sessions, settings)
    make_private(settings.data_dir)
    return services
