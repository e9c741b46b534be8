"""Run the OLTP Alembic migrations safely: one transaction, under a lock.

- PostgreSQL: `pg_advisory_xact_lock` taken first thing in the migration transaction. A second
  process waits, then sees the new head and has nothing to do. DDL is transactional, so a failed
  or killed migration rolls back entirely and the lock goes with the connection.
- SQLite: an exclusive `flock` on `<dbfile>.migrate.lock` (waits indefinitely, released by the OS
  if the holder dies), then `BEGIN IMMEDIATE`; SQLite DDL is transactional because our engine
  emits BEGIN itself. Foreign-key enforcement is switched off for the duration (batch-mode table
  rebuilds would otherwise cascade deletes) and `PRAGMA foreign_key_check` runs before commit.

Alembic is configured in code (`make_config`); no alembic.ini is needed at runtime.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL, Connection

from owlscope.storage.oltp.db import make_engine, sqlite_path

log = logging.getLogger(__name__)

SCRIPT_LOCATION = str(Path(__file__).resolve().parent / "migrations")
# Advisory locks are per database; any fixed 63-bit number will do ("owlscope" in ASCII).
PG_LOCK_KEY = 0x6F776C73636F7065


class MigrationError(RuntimeError):
    """A migration left the database inconsistent (it was rolled back)."""


def make_config(url: str | URL | None = None, *, script_location: str | None = None) -> Config:
    """An Alembic Config for the OLTP migrations (for tooling such as `command.revision`)."""
    cfg = Config()
    cfg.set_main_option("script_location", script_location or SCRIPT_LOCATION)
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return cfg


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: BEGIN IMMEDIATE still serializes writers
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is migrating %s; waiting for it", path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def locked_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that holds the migration lock; commits on success."""
    if engine.dialect.name == "sqlite":
        with _sqlite_locked_transaction(engine) as conn:
            yield conn
        return
    if engine.dialect.name != "postgresql":
        raise ValueError(f"unsupported database {engine.dialect.name!r}")
    with engine.connect() as conn, conn.begin():
        got = conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY}).scalar()
        if not got:
            log.info("another process is migrating the database; waiting for it")
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
        yield conn


@contextmanager
def _sqlite_locked_transaction(engine: Engine) -> Iterator[Connection]:
    path = sqlite_path(engine.url)
    lock_path = path.with_name(path.name + ".migrate.lock") if path is not None else None
    with _file_lock(lock_path) if lock_path else _nothing(), engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        # Only effective outside a transaction, hence on the driver connection before BEGIN.
        raw.execute("PRAGMA foreign_keys = OFF")
        try:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn
                problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise MigrationError(f"migration broke foreign keys: {problems[:10]}")
        finally:
            raw.execute("PRAGMA foreign_keys = ON")


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextmanager
def _engine_for(engine_or_url: Engine | str | URL) -> Iterator[Engine]:
    if isinstance(engine_or_url, Engine):
        yield engine_or_url
        return
    engine = make_engine(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _run(engine_or_url: Engine | str | URL, fn: str, revision: str, script_location: str | None) -> str | None:
    with _engine_for(engine_or_url) as engine:
        cfg = make_config(script_location=script_location)
        with locked_transaction(engine) as conn:
            cfg.attributes["connection"] = conn
            getattr(command, fn)(cfg, revision)
            after = MigrationContext.configure(conn).get_current_revision()
        return after


def upgrade(
    engine_or_url: Engine | str | URL, revision: str = "head", *, script_location: str | None = None
) -> str | None:
    """Upgrade the schema to `revision` (default: the newest). Returns the revision now current.

    Safe to call from several processes at once: one migrates, the others wait and find nothing
    left to do. On any error nothing of this call is applied.
    """
    return _run(engine_or_url, "upgrade", revision, script_location)


def downgrade(
    engine_or_url: Engine | str | URL, revision: str, *, script_location: str | None = None
) -> str | None:
    """Downgrade the schema to `revision` (`"base"` removes every table). Returns the revision now current."""
    return _run(engine_or_url, "downgrade", revision, script_location)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(*, script_location: str | None = None) -> str:
    """The newest revision shipped with this code."""
    head = ScriptDirectory.from_config(make_config(script_location=script_location)).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise MigrationError("no OLTP migrations found")
    return head


