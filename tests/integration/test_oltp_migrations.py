"""OLTP migrations on SQLite and PostgreSQL: every revision up and down, concurrent starts,
failed and killed migrations (nothing half-applied, lock released)."""

from __future__ import annotations

import multiprocessing as mp
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from owlscope.storage.oltp import Base, current_revision, downgrade, head_revision, make_engine, upgrade
from owlscope.storage.oltp.migrate import SCRIPT_LOCATION, make_config
from owlscope.storage.oltp.models import TABLES

SIGNAL_ENV = "OWLSCOPE_TEST_MIGRATION_SIGNAL"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nested' / 'owlscope.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _revisions_base_to_head() -> list[str]:
    script = ScriptDirectory.from_config(make_config())
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def test_head_revision_is_the_last_revision() -> None:
    revisions = _revisions_base_to_head()
    assert revisions[0] == "0001"
    assert head_revision() == revisions[-1]


def test_every_revision_up_and_down(engine: Engine) -> None:
    assert current_revision(engine) is None
    revisions = _revisions_base_to_head()
    for rev in revisions:
        assert upgrade(engine, rev) == rev
        assert current_revision(engine) == rev
    assert _tables(engine) == set(TABLES)

    for expected in [*reversed(revisions[:-1]), None]:
        assert downgrade(engine, "-1") == expected
        assert current_revision(engine) == expected
    assert _tables(engine) == set()

    assert upgrade(engine) == head_revision()
    assert _tables(engine) == set(TABLES)
    assert downgrade(engine, "base") is None
    assert _tables(engine) == set()
    assert upgrade(engine) == head_revision()


def test_upgrade_accepts_a_url_and_is_idempotent(db_url: str, engine: Engine) -> None:
    assert upgrade(db_url) == head_revision()
    assert upgrade(db_url) == head_revision()
    assert current_revision(engine) == head_revision()


def test_migrations_match_the_models(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_project_owned_indexes_lead_with_project_id(engine: Engine) -> None:
    upgrade(engine)
    insp = inspect(engine)
    for table in TABLES:
        columns = {c["name"] for c in insp.get_columns(table)}
        if "project_id" not in columns:
            continue
        leading = [ix["column_names"][0] for ix in insp.get_indexes(table)]
        leading += [uq["column_names"][0] for uq in insp.get_unique_constraints(table)]
        leading += insp.get_pk_constraint(table)["constrained_columns"][:1]
        assert "project_id" in leading, f"{table} has no index that starts with project_id"


# ---- concurrency and crashes ---------------------------------------------------------------------


def _child_upgrade(url: str, script_location: str | None, barrier, signal_path: str | None) -> None:
    import os

    if signal_path:
        os.environ[SIGNAL_ENV] = signal_path
    if barrier is not None:
        barrier.wait(60)
    upgrade(url, script_location=script_location)


def test_two_processes_upgrading_at_once_both_succeed(db_url: str, engine: Engine) -> None:
    ctx = mp.get_context("spawn")
    for _ in range(2):  # a fresh database, then again from base
        barrier = ctx.Barrier(3)
        procs = [ctx.Process(target=_child_upgrade, args=(db_url, None, barrier, None)) for _ in range(2)]
        for p in procs:
            p.start()
        barrier.wait(60)
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0, 0]
        assert current_revision(engine) == head_revision()
        assert _tables(engine) == set(TABLES)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        downgrade(engine, "base")


_BAD_REVISION = '''
import os
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("INSERT INTO organizations (id, name, created_at, updated_at) "
               "VALUES ('half', 'half', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
    {action}


def downgrade():
    op.drop_table("half_done")
'''

_RAISE = 'raise RuntimeError("boom in the middle of a migration")'
_HANG = f'Path(os.environ["{SIGNAL_ENV}"]).write_text("in"); time.sleep(300)'


def _scripts_with(tmp_path: Path, action: str) -> str:
    """A copy of the shipped migrations plus a revision 9001 that stops half-way."""
    location = tmp_path / "scripts"
    shutil.copytree(SCRIPT_LOCATION, location, ignore=shutil.ignore_patterns("__pycache__"))
    (location / "versions" / "9001_half_done.py").write_text(
        _BAD_REVISION.format(head=head_revision(), action=action)
    )
    return str(location)


def _assert_nothing_of_9001(engine: Engine) -> None:
    assert "half_done" not in _tables(engine)
    if "organizations" in _tables(engine):
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM organizations WHERE id = 'half'")).scalar() == 0


def test_failing_migration_is_rolled_back_entirely(engine: Engine, tmp_path: Path) -> None:
    scripts = _scripts_with(tmp_path, _RAISE)
    # From scratch: the whole run (0001 included) is one transaction, so nothing is left at all.
    with pytest.raises(RuntimeError, match="boom"):
        upgrade(engine, script_location=scripts)
    assert current_revision(engine) is None
    assert _tables(engine) == set()

    # From the shipped head: the database stays exactly at head.
    upgrade(engine)
    with pytest.raises(RuntimeError, match="boom"):
        upgrade(engine, script_location=scripts)
    assert current_revision(engine) == head_revision()
    _assert_nothing_of_9001(engine)
    assert _tables(engine) == set(TABLES)
    assert upgrade(engine) == head_revision()


def test_killed_migration_leaves_no_dirty_state_and_frees_the_lock(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    upgrade(engine)
    scripts = _scripts_with(tmp_path, _HANG)
    signal = tmp_path / "inside-migration"
    ctx = mp.get_context("spawn")
    child = ctx.Process(target=_child_upgrade, args=(db_url, scripts, None, str(signal)))
    child.start()
    try:
        deadline = time.monotonic() + 60
        while not signal.exists():
            assert child.is_alive() and time.monotonic() < deadline, "child never reached the migration"
            time.sleep(0.05)

        # A second migrator waits for the lock held by the hanging one...
        outcome: dict[str, object] = {}

        def second() -> None:
            try:
                outcome["rev"] = upgrade(db_url)
            except BaseException as exc:  # surfaced by the assertion below
                outcome["error"] = exc

        waiter = threading.Thread(target=second, daemon=True)
        waiter.start()
        waiter.join(1.5)
        assert waiter.is_alive(), f"second migrator did not wait for the lock: {outcome}"

        # ...and proceeds once the holder is killed mid-migration.
        child.kill()
        child.join(30)
        waiter.join(60)
        assert not waiter.is_alive(), "lock was not released by the killed process"
        assert outcome == {"rev": head_revision()}
    finally:
        if child.is_alive():
            child.kill()
            child.join(30)

    assert current_revision(engine) == head_revision()
    _assert_nothing_of_9001(engine)
    assert _tables(engine) == set(TABLES)
    # The same database can still go up and down.
    assert downgrade(engine, "base") is None
    assert upgrade(engine) == head_revision()


def test_sqlite_migration_uses_a_lock_file_next_to_the_database(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "owlscope.db"
    upgrade(f"sqlite:///{db}")
    assert db.exists()
    assert (db.parent / "owlscope.db.migrate.lock").exists()


def test_sqlite_foreign_keys_are_enforced_again_after_migrating(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'fk.db'}")
    try:
        upgrade(eng)
        with eng.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        eng.dispose()
