"""The dashboard's score widgets: the one-read path (each name's distinct values counted, everything
computed from them) returns what the two reads return (statistics per name, then bins and values),
on both engines; a name with more distinct values than the one read keeps takes the two reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from owlscope.ingestion.rows import ScoreEvent
from owlscope.storage.olap.client import Olap
from owlscope.tracing import dashboard as dash
from read_fixtures import fixture_read_olap, insert  # noqa: F401  (fixtures)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def load(olap: Olap, p: str) -> None:
    scores, i = [], 0

    def add(name: str, data_type: str, value: float | None = None, text: str | None = None,
            env: str = "default", at: datetime = T0) -> None:
        nonlocal i
        i += 1
        scores.append(ScoreEvent(p, f"s{i}", at, at + timedelta(minutes=i), name, data_type, value=value,
                                 string_value=text, trace_id=f"t{i % 7}", environment=env))

    levels = [0.0, 0.25, 0.5, 0.75, 1.0, -0.5, 0.1, 0.2, 0.3, 0.9, 0.95, 0.05, 0.6]
    for k in range(60):  # numeric: 13 levels, every third score at 1.0, one negative level
        add("quality", "NUMERIC", levels[k % 13 if k % 3 else 4])
    for k in range(25):
        add("helpful", "BOOLEAN", float(k % 3 == 0))
    for k in range(30):
        add("tone", "CATEGORICAL", text=["polite", "neutral", "rude", ""][k % 4])
    for k in range(9):  # one name of two types
        add("mixed", "NUMERIC" if k % 2 else "CATEGORICAL", value=float(k) if k % 2 else None,
            text=None if k % 2 else "label")
    for _ in range(4):
        add("constant", "NUMERIC", 3.0)
    add("quality", "NUMERIC", 0.99, env="langfuse-eval")  # an internal environment
    add("late", "NUMERIC", 0.5, at=T0 + timedelta(days=3))  # outside the range
    insert(olap, scores=scores[:50])
    insert(olap, scores=scores[50:])
    # a score sent again with a new value (the newer version counts)
    insert(olap, scores=[ScoreEvent(p, "s1", T0 + timedelta(hours=1), T0 + timedelta(minutes=1), "quality",
                                    "NUMERIC", value=0.7, trace_id="t1")])


@pytest.fixture
def project(read_olap: Olap) -> str:
    p = f"dsc-{uuid.uuid4().hex[:8]}"
    load(read_olap, p)
    return p


@pytest.mark.parametrize("hide_internal", [False, True])
def test_one_read_equals_two_reads(read_olap: Olap, project: str, hide_internal: bool) -> None:
    q = dash._Sql(project, T0 - timedelta(hours=1), T0 + timedelta(days=1), None, hide_internal)
    with pytest.MonkeyPatch.context() as m:  # a few distinct values per name: one read answers
        m.setattr(dash, "_scores_two_reads", lambda *a: pytest.fail("took the two reads"))
        one = dash._scores(read_olap, q)
    two = dash._scores_two_reads(read_olap, dash._Sql(project, T0 - timedelta(hours=1), T0 + timedelta(days=1),
                                                      None, hide_internal), q.scores())
    assert one == two
    by = {s["name"]: s for s in one}
    assert [s["name"] for s in one] == ["quality", "tone", "helpful", "mixed", "constant"]
    quality = by["quality"]
    assert quality["count"] == (60 if hide_internal else 61) and quality["min"] == -0.5
    assert quality["max"] == 1.0  # the internal score (0.99) is below it either way
    assert sum(b[2] for b in quality["bins"]) == quality["count"] and len(quality["bins"]) == dash.NUMERIC_BINS
    assert by["helpful"]["values"] == [["False", 16], ["True", 9]]
    assert by["tone"]["values"][0][1] == 8 and sum(n for _, n in by["tone"]["values"]) == 30
    assert by["mixed"]["kind"] == "histogram" and by["mixed"]["values"] == [["label", 5]]
    assert by["constant"]["bins"] == [[3.0, 3.0, 4.0]]


def test_many_distinct_values_take_two_reads(read_olap: Olap, project: str, monkeypatch: pytest.MonkeyPatch) -> None:
    q = dash._Sql(project, T0 - timedelta(hours=1), T0 + timedelta(days=1), None)
    want = dash._scores(read_olap, q)
    monkeypatch.setattr(dash, "DISTINCT_VALUES", 3)
    called = []
    two_reads = dash._scores_two_reads
    monkeypatch.setattr(dash, "_scores_two_reads", lambda *a: called.append(1) or two_reads(*a))
    assert dash._scores(read_olap, dash._Sql(project, T0 - timedelta(hours=1), T0 + timedelta(days=1), None)) == want
    assert called
