"""Dialect-specific SQL kept in one small builder: insert-or-ignore on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker


def insert_ignore(session: Session, model: type, rows: Sequence[dict[str, Any]], *, conflict: Sequence[str],
                  returning: Any = None) -> list[Any]:
    """Insert rows, skipping those that collide on the unique columns `conflict`.

    With `returning` (a column), return its value for the rows actually inserted."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = builder(model).values(list(rows)).on_conflict_do_nothing(index_elements=list(conflict))
    if returning is None:
        session.execute(stmt)
        return []
    return list(session.execute(stmt.returning(returning)).scalars())


@contextmanager
def write_tx(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session in a transaction committed on exit. On SQLite it takes the write lock up front
    (BEGIN IMMEDIATE): a read-then-write would otherwise fail at once ("database is locked") when
    another connection committed since its snapshot, which concurrent judge workers do all the time."""
    with sessions() as session, session.begin():
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session
