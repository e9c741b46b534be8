"""Dialect-specific SQL kept in one small builder: insert-or-ignore on SQLite and PostgreSQL
(write transactions: owlscope.storage.oltp.db.write_transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


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
