"""The OLAP migration files: idempotent statements, and cluster mode as a setting."""

from __future__ import annotations

import re
from types import SimpleNamespace

from owlscope.storage.olap.migrate import _render, list_migrations


def _olap(cluster: str | None) -> SimpleNamespace:
    return SimpleNamespace(cluster=cluster, sql=lambda text: text.replace("{db}", "owlscope"))


def test_every_statement_is_idempotent() -> None:
    migrations = list_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    for m in migrations:
        for statement in m.statements():
            head = statement.split("(")[0].upper()
            if head.startswith(("CREATE", "DROP")) or " ADD COLUMN" in statement.upper():
                assert "IF NOT EXISTS" in statement.upper() or "IF EXISTS" in statement.upper(), statement[:80]


def test_cluster_mode_adds_on_cluster_and_replicated_engines() -> None:
    for m in list_migrations():
        for statement in m.statements():
            single = _render(_olap(None), statement)
            clustered = _render(_olap("prod"), statement)
            for placeholder in ("{db}", "{on_cluster}", "{replicated}"):
                assert placeholder not in single and placeholder not in clustered
            assert "ON CLUSTER" not in single and "Replicated" not in single
            if "ENGINE = " in statement and "MergeTree" in statement:
                assert re.search(r"ENGINE = Replicated(Aggregating|Replacing)?MergeTree", clustered), clustered[:80]
            if statement.upper().startswith(("CREATE TABLE", "CREATE DATABASE", "CREATE MATERIALIZED VIEW")):
                assert "ON CLUSTER prod" in clustered
