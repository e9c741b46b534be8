"""The OLAP read model is defined once: merge SQL and the cost/usage formulas live in owlscope/tracing/."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "owlscope"
READ_MODEL = PACKAGE / "tracing"
# Merging an aggregate state, or totalling a cost/usage map by hand.
MERGE_SQL = re.compile(r"\w+Merge\(|maxMap\(|groupUniqArrayArray\(")
MAP_SUM = re.compile(r"arraySum\(mapValues|(cost|usage)_details\[")


def offenders(pattern: re.Pattern[str], allowed: tuple[Path, ...]) -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if any(path == a or a in path.parents for a in allowed):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.search(line):
                out.append(f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}")
    return out


def test_no_merge_sql_outside_the_read_model() -> None:
    assert offenders(MERGE_SQL, (READ_MODEL, PACKAGE / "storage" / "olap")) == []


def test_cost_and_usage_totals_only_in_the_read_model() -> None:
    # The scalar rollups of migration 0002 (model.ROLLUP_*) are the one definition of a total.
    assert offenders(MAP_SUM, (READ_MODEL / "model.py", PACKAGE / "storage" / "olap")) == []


def test_the_checks_see_a_copy() -> None:
    """The patterns match the SQL a copy would write (so the checks above can fail)."""
    assert MERGE_SQL.search("SELECT argMaxIfMerge(name) AS x")
    assert MERGE_SQL.search("maxMap(metadata_pieces)")
    assert MAP_SUM.search("if(mapContains(c, 'total'), c['total'], arraySum(mapValues(c)))")
    assert MAP_SUM.search("sum(cost_details['total'])")
