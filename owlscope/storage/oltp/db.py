"""Engines and sessions for the OLTP database: a SQLite file (embedded) or PostgreSQL.

SQLite connections get WAL, a busy timeout, foreign keys and real transactions: the sqlite3
driver's legacy mode would autocommit DDL and never BEGIN before a SELECT, so SQLAlchemy emits
BEGIN itself (see the SQLAlchemy SQLite docs, "Enabling Non-Legacy SQLite Transactional Modes").
A connection may ask for `BEGIN IMMEDIATE` with `execution_options(sqlite_begin="IMMEDIATE")` to
take the write lock up front (migrations do).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL, Connection
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 5000
_BEGIN_MODES = {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"}


def normalise_url(url: str | URL) -> URL:
    """Pick the drivers we ship: psycopg 3 for PostgreSQL, the stdlib sqlite3 for SQLite."""
    u = make_url(url) if isinstance(url, str) else url
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


def sqlite_path(url: str | URL) -> Path | None:
    """The database file of a SQLite URL; None for in-memory databases and other dialects."""
    u = make_url(url) if isinstance(url, str) else url
    if u.get_backend_name() != "sqlite":
        return None
    db = u.database or ""
    if db in ("", ":memory:") or db.startswith("file:") or u.query.get("mode") == "memory":
        return None
    return Path(db)


def make_engine(url: str | URL, *, echo: bool = False, **kwargs: Any) -> Engine:
    """An engine for `url` (`sqlite:///path` or `postgresql://...`), tuned for this application."""
    u = normalise_url(url)
    if u.get_backend_name() == "sqlite":
        return _make_sqlite_engine(u, echo=echo, **kwargs)
    if u.get_backend_name() == "postgresql":
        opts: dict[str, Any] = {
            "pool_size": 10,
            "max_overflow": 10,
            "pool_timeout": 30,
            "pool_recycle": 1800,  # below typical idle-connection cut-offs of proxies and balancers
            "pool_pre_ping": True,
        }
        opts.update(kwargs)
        engine = create_engine(u, echo=echo, **opts)
        return engine
    raise ValueError(f"unsupported database URL {u.render_as_string(hide_password=True)!r}")


def _make_sqlite_engine(u: URL, *, echo: bool, **kwargs: Any) -> Engine:
    path = sqlite_path(u)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("check_same_thread", False)  # the pool hands connections across threads
    # The driver's own timeout is the busy timeout; the pragma below sets it again explicitly.
    connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = create_engine(u, echo=echo, connect_args=connect_args, **kwargs)
    in_memory = path is None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver; the "begin" hook below emits BEGIN.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL needs a lock another process may hold.
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        opts = conn.get_execution_options()
        if opts.get("isolation_level") == "AUTOCOMMIT":
            return
        dbapi_connection = conn.connection.dbapi_connection
        if dbapi_connection is not None and dbapi_connection.isolation_level is not None:
            # Returning from AUTOCOMMIT resets the driver to its legacy mode: take control again.
            dbapi_connection.isolation_level = None
        mode = str(opts.get("sqlite_begin", "DEFERRED")).upper()
        if mode not in _BEGIN_MODES:
            raise ValueError(f"sqlite_begin must be one of {sorted(_BEGIN_MODES)}, got {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def write_transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session in a transaction committed on exit (rolled back on an exception). On SQLite it
    takes the write lock up front (BEGIN IMMEDIATE): a read-then-write transaction would otherwise
    fail at once ("database is locked") when another connection committed since its snapshot, and
    read-check-write rules (a unique name, "keep one owner") could race."""
    with sessions() as session, session.begin():
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (handy for returning what was created)."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def sqlite_optimize(engine: Engine, *, full: bool = False) -> None:
    """Refresh the query planner's statistics (call at startup and now and then, e.g. hourly).

    Until statistics exist SQLite can pick a poor index for point lookups. Runs ANALYZE when
    there are no statistics yet or `full=True`; otherwise `PRAGMA optimize`, which is cheap and
    only re-analyses tables that need it. No-op on other databases.
    """
    if engine.dialect.name != "sqlite":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # Sample at most ~1000 rows per index so this stays fast on large files.
        conn.exec_driver_sql("PRAGMA analysis_limit = 1000")
        has_stats = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        ).first()
        if full or not has_stats:
            conn.exec_driver_sql("ANALYZE")
        else:
            # 0x10002: consider every table, not only those this connection queried.
            conn.exec_driver_sql("PRAGMA optimize = 0x10002")
