"""Numbered SQL migrations for the OLAP store.

Each file in `migrations/` is `NNNN_name.sql`; its statements are idempotent (`IF NOT EXISTS`), and
the file is recorded in `schema_migrations` only after all of them succeeded. A migration killed
half-way is therefore simply run again, from the top, on the next start: there is no dirty state.
Cluster mode is a setting: `{on_cluster}` and `{replicated}` are filled in here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from owlscope.storage.olap.client import Olap

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([\w-]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        text = "\n".join(
            line for line in self.path.read_text().splitlines() if not line.lstrip().startswith("--")
        )
        return [s.strip() for s in re.split(r";\s*(?:\n|$)", text) if s.strip()]


def list_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for p in sorted(directory.iterdir()):
        m = _NAME.match(p.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), p))
    return found


def _render(olap: Olap, statement: str) -> str:
    on_cluster = f"ON CLUSTER {olap.cluster}" if olap.cluster else ""
    replicated = "Replicated" if olap.cluster else ""
    return olap.sql(statement).replace("{on_cluster}", on_cluster).replace("{replicated}", replicated)


def _ensure_bookkeeping(olap: Olap) -> None:
    olap.command(_render(olap, "CREATE DATABASE IF NOT EXISTS {db} {on_cluster}"))
    olap.command(_render(olap, (
        "CREATE TABLE IF NOT EXISTS {db}.schema_migrations {on_cluster} "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = {replicated}ReplacingMergeTree ORDER BY version"
    )))


def applied_versions(olap: Olap) -> set[int]:
    exists = olap.query(
        "SELECT count() FROM system.tables WHERE database = {d:String} AND name = 'schema_migrations'",
        {"d": olap.database},
    )[0][0]
    if not exists:
        return set()
    return {int(r[0]) for r in olap.query("SELECT DISTINCT version FROM {db}.schema_migrations")}


def pending(olap: Olap, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    done = applied_versions(olap)
    return [m for m in list_migrations(directory) if m.version not in done]


def migrate(
    olap: Olap,
    directory: Path = MIGRATIONS_DIR,
    on_statement: Callable[[Migration, int, int], None] | None = None,
) -> list[Migration]:
    """Apply every pending migration; return those applied."""
    _ensure_bookkeeping(olap)
    applied = []
    for m in pending(olap, directory):
        statements = m.statements()
        for i, statement in enumerate(statements):
            olap.command(_render(olap, statement))
            if on_statement:
                on_statement(m, i + 1, len(statements))
        olap.command(
            "INSERT INTO {db}.schema_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
            {"v": m.version, "n": m.name},
        )
        applied.append(m)
    return applied


def head_version(directory: Path = MIGRATIONS_DIR) -> int:
    ms = list_migrations(directory)
    return ms[-1].version if ms else 0
