"""Alembic environment for the OLTP schema.

`owlscope.storage.oltp.migrate` opens a connection, starts a transaction, takes the migration
lock and hands the connection over in `config.attributes["connection"]`; everything below runs
inside that transaction and the caller commits. Invoked any other way (alembic commands given only
a URL), this module takes the same lock itself.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from owlscope.storage.oltp.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    is_sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds the table (inside our transaction).
        render_as_batch=is_sqlite,
        # Our SQLite engine emits BEGIN itself, so SQLite DDL is transactional here too.
        transactional_ddl=True,
        transaction_per_migration=False,
        compare_type=True,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return

    from owlscope.storage.oltp.db import make_engine
    from owlscope.storage.oltp.migrate import locked_transaction

    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with locked_transaction(engine) as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
