"""Rollups (tracing/rollups.py): every rollup-served answer equals the raw-row answer on the same data,
on both engines, through late and repeated updates, moves between hours and deletions."""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from owlscope.ingestion.rows import ObservationEvent, TraceEvent
from owlscope.storage.olap.client import Olap
from owlscope.tracing import metrics as metrics_mod
from owlscope.tracing import rollups
from owlscope.tracing.dashboard import dashboard
from owlscope.tracing.metrics import metrics_daily, metrics_query
from owlscope.tracing.rollups import Served, cover, refresh_rollups
from owlscope.tracing.traces import delete_traces, delete_untraced_before
from read_fixtures import fixture_read_olap, insert  # noqa: F401  (fixtures)

D = datetime(2026, 2, 3, 0, 0, tzinfo=UTC)


def h(hour: float) -> datetime:
    return D + timedelta(hours=hour)


def z(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


MODELS = ("gpt-4o", "claude-3", "mistral")


def load_base(olap: Olap, p: str) -> None:
    """Traces over a day and a half, several hours, models, prompts, levels and environments."""
    traces, obs = [], []
    for i in range(24):
        t0 = h(1 + i * 1.5 + 0.1)
        tid = f"t{i}"
        traces.append(TraceEvent(p, tid, t0, timestamp=t0, name=f"trace-{i % 3}", user_id=f"u{i % 5}",
                                 environment="prod" if i % 4 else "dev", release=f"r{i % 2}", version="v1"))
        obs.append(ObservationEvent(p, f"{tid}-root", tid, t0, type="SPAN", name="root", start_time=t0,
                                    end_time=t0 + timedelta(seconds=5 + i), environment="prod" if i % 4 else "dev"))
        for k in range(3):
            st = t0 + timedelta(seconds=k + 1)
            obs.append(ObservationEvent(
                p, f"{tid}-g{k}", tid, st, type="GENERATION", name=f"llm-{k}", parent_observation_id=f"{tid}-root",
                start_time=st, end_time=st + timedelta(milliseconds=300 * (i + k + 1)),
                completion_start_time=st + timedelta(milliseconds=50 * (k + 1)), model=MODELS[(i + k) % 3],
                level="ERROR" if (i + k) % 7 == 0 else "DEFAULT", environment="prod" if i % 4 else "dev",
                usage_details={"input": 10 * (i + 1), "output": 5 * (k + 1), "total": 10 * (i + 1) + 5 * (k + 1)},
                cost_details={"input": 0.001 * (i + 1), "output": 0.002 * (k + 1) + 0.0137 * ((i + k) % 3),
                              "total": 0.001 * (i + 1) + 0.002 * (k + 1) + 0.0137 * ((i + k) % 3)},
                prompt_name="p1" if k == 0 else None, prompt_version=(i % 3) + 1 if k == 0 else None))
    insert(olap, traces=traces[:12], observations=obs[:48])
    insert(olap, traces=traces[12:], observations=obs[48:])
    insert(olap, observations=obs[:10])  # a replayed batch


# ---- the reads compared ---------------------------------------------------------------------------
# 30 whole days (the dashboard buckets them by day: whole days come from the day rows), and edges
# inside hours
RANGES = [(h(-24 * 28), h(48)), (h(2.5), h(30.25))]


def obs_queries(start: datetime, end: datetime) -> list[dict[str, Any]]:
    base = {"view": "observations", "fromTimestamp": z(start), "toTimestamp": z(end)}
    return [
        {**base, "dimensions": [{"field": "providedModelName"}], "timeDimension": {"granularity": "day"},
         "metrics": [{"measure": "totalCost", "aggregation": "sum"}, {"measure": "latency", "aggregation": "p95"}]},
        {**base, "dimensions": [{"field": "type"}, {"field": "name"}],
         "metrics": [{"measure": "count", "aggregation": "count"}, {"measure": "errors", "aggregation": "sum"}]},
        {**base, "metrics": [{"measure": m, "aggregation": a} for m in (
            "latency", "timeToFirstToken", "inputTokens", "outputTokens", "totalTokens", "inputCost", "outputCost",
            "totalCost", "errors") for a in ("sum", "avg", "min", "max", "count")]
         + [{"measure": "latency", "aggregation": "p50"}, {"measure": "timeToFirstToken", "aggregation": "p99"}]},
        {**base, "dimensions": [{"field": "environment"}, {"field": "level"}], "timeDimension": {"granularity": "hour"},
         "filters": [{"column": "environment", "operator": "=", "value": "prod", "type": "string"}],
         "metrics": [{"measure": "totalTokens", "aggregation": "sum"}]},
        {**base, "dimensions": [{"field": "promptName"}, {"field": "promptVersion"}, {"field": "startTimeMonth"}],
         "metrics": [{"measure": "count", "aggregation": "count"}, {"measure": "latency", "aggregation": "p50"},
                     {"measure": "totalCost", "aggregation": "sum"}],
         "filters": [{"column": "promptName", "operator": "=", "value": "p1", "type": "string"}]},
        {**base, "timeDimension": {"granularity": "week"}, "metrics": [{"measure": "count", "aggregation": "count"}]},
    ]


def trace_queries(start: datetime, end: datetime) -> list[dict[str, Any]]:
    base = {"view": "traces", "fromTimestamp": z(start), "toTimestamp": z(end)}
    return [
        {**base, "dimensions": [{"field": "name"}], "timeDimension": {"granularity": "day"},
         "metrics": [{"measure": "count", "aggregation": "count"}, {"measure": "totalCost", "aggregation": "sum"},
                     {"measure": "latency", "aggregation": "p95"}]},
        {**base, "dimensions": [{"field": "environment"}, {"field": "release"}], "metrics": [
            {"measure": "uniqueUserIds", "aggregation": "count"}, {"measure": "observationsCount", "aggregation": "sum"},
            {"measure": "totalTokens", "aggregation": "avg"}, {"measure": "errors", "aggregation": "sum"},
            {"measure": "latency", "aggregation": "max"}]},
    ]


def close(a: Any, b: Any, path: str = "") -> None:
    """Equal, floats within 1e-9 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), path
        for k in a:
            close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)}\n{a}\n{b}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None, f"{path}: {a} != {b}"
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def sort_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: repr(sorted((k, v) for k, v in r.items() if not isinstance(v, float))))


def compare_all(olap: Olap, p: str, *, expect_rollup: bool = True, expect_days: bool = False) -> None:
    """Every rollup-served read equals the forced raw read; with `expect_rollup`, rollups served; with
    `expect_days`, the reads by day (or without time) over the whole days of RANGES[0] took day rows."""
    by_day = {0, 1, 2, 5, 6, 7}  # the queries (by index) whose shape fits the day rows
    for r, (start, end) in enumerate(RANGES):
        for i, q in enumerate(obs_queries(start, end) + trace_queries(start, end)):
            served = Served()
            got = metrics_query(olap, p, q, served=served)["data"]
            want = metrics_query(olap, p, q, rollups=False)["data"]
            close(sort_rows(got), sort_rows(want), str(q))
            if expect_rollup:
                assert served.path == "rollup", q
            if expect_days and r == 0:
                assert (served.days > 0) == (i in by_day), (served, q)
        served = Served()
        close(metrics_daily(olap, p, from_timestamp=start, to_timestamp=end, served=served),
              metrics_daily(olap, p, from_timestamp=start, to_timestamp=end, rollups=False))
        if expect_rollup:
            assert served.path == "rollup"
        if expect_days and r == 0:
            assert served.days > 0
        for env in (None, "prod"):
            served = Served()
            close(dashboard(olap, p, start=start, end=end, environment=env, served=served),
                  dashboard(olap, p, start=start, end=end, environment=env, rollups=False))
            if expect_rollup:
                assert served.path == "rollup"
            if expect_days and r == 0:
                assert served.days > 0
    served = Served()
    close(metrics_daily(olap, p, served=served), metrics_daily(olap, p, rollups=False))
    # the traces list's total (every trace; every trace but those of some environments)
    every, shown = olap.query(
        "SELECT count(), countIf(NOT startsWith(env, 'dev')) FROM (SELECT id, argMaxIfMerge(environment) AS env"
        " FROM {db}.traces WHERE project_id = {p:String} GROUP BY id)", {"p": p})[0]
    assert rollups.count_traces(olap, p) == every
    assert rollups.count_traces(olap, p, hide_env_prefix="dev") == shown < every


@pytest.fixture
def project(read_olap: Olap) -> str:
    p = f"roll-{uuid.uuid4().hex[:8]}"
    load_base(read_olap, p)
    return p


def test_rollups_equal_raw_through_updates(read_olap: Olap, project: str, monkeypatch: pytest.MonkeyPatch) -> None:
    olap, p = read_olap, project
    # The first (full) refresh covers more than CHUNK_ROWS rows: it reads the tables in slices of
    # trace ids, here about 25 rows each (several slices, a trace's rows never split), 10 hours per
    # pass; the later refreshes cover a few rows each and find their facts through the hours (the
    # settle test below refreshes everything through the hours).
    monkeypatch.setattr(rollups, "CHUNK_ROWS", 25)
    # reads of up to 3 hours (or days) name their generations, longer ones look them up: both ways
    monkeypatch.setattr(rollups, "CURRENT_AS_VALUES", 3)
    monkeypatch.setattr(rollups, "SLICE_HOURS", 10)
    assert len(rollups.key_ranges(olap, p)) >= 4
    # nothing refreshed yet: every read is raw
    served = Served()
    metrics_query(olap, p, obs_queries(*RANGES[0])[0], served=served)
    assert served.path == "raw"
    (res,) = refresh_rollups(olap, p, settle=timedelta(0))
    assert res.full and res.obs_hours >= 24 and res.trace_hours >= 24
    compare_all(olap, p, expect_days=True)

    # Late updates in the same hour as their observation: a cost changed, a model set late, a
    # replayed update. Their hours read raw (marked) until the refresh, and equal all along.
    upd = [
        ObservationEvent(p, "t3-g0", "t3", h(5.7), cost_details={"input": 1.0, "output": 2.0, "total": 3.0},
                         usage_details={"input": 1000, "output": 10, "total": 1010}),
        ObservationEvent(p, "t5-root", "t5", h(8.7), model="gpt-late", start_time=h(1 + 5 * 1.5 + 0.1)),
    ]
    insert(olap, observations=upd)
    insert(olap, observations=upd[:1])
    compare_all(olap, p)
    refresh_rollups(olap, p, settle=timedelta(0))
    compare_all(olap, p, expect_days=True)

    # Updates whose hour is not the observation's: an update without a start time an hour later (the
    # observation stays in its hour), and an update arriving before its create that starts an hour
    # earlier (the observation moves). Exact after the refresh.
    t7 = h(1 + 7 * 1.5 + 0.1)
    insert(olap, observations=[ObservationEvent(p, "t7-g1", "t7", t7 + timedelta(hours=2),
                                                cost_details={"total": 9.5}, level="ERROR")])
    insert(olap, traces=[TraceEvent(p, "t-move", h(20.2), timestamp=h(20.2), name="trace-1", user_id="u9")],
           observations=[ObservationEvent(p, "mv", "t-move", h(20.2), end_time=h(20.3), model="gpt-4o",
                                          cost_details={"total": 0.5})])
    refresh_rollups(olap, p, settle=timedelta(0))
    compare_all(olap, p, expect_days=True)
    insert(olap, traces=[TraceEvent(p, "t-move", h(19.9), timestamp=h(19.9), name="trace-1")],
           observations=[ObservationEvent(p, "mv", "t-move", h(19.9), type="GENERATION", name="late-create",
                                          start_time=h(19.9), model="gpt-4o")])
    refresh_rollups(olap, p, settle=timedelta(0))
    compare_all(olap, p, expect_days=True)

    # Deletions mark the hours they change: equal before and after the refresh.
    delete_traces(olap, p, ["t4", "t11"])
    compare_all(olap, p, expect_rollup=False)
    refresh_rollups(olap, p, settle=timedelta(0))
    compare_all(olap, p, expect_days=True)
    insert(olap, observations=[ObservationEvent(p, "orphan", "no-trace", h(2.2), start_time=h(2.2),
                                                end_time=h(2.3), model="gpt-4o", cost_details={"total": 7.0})])
    refresh_rollups(olap, p, settle=timedelta(0))
    compare_all(olap, p, expect_days=True)
    delete_untraced_before(olap, p, "2026-02-03 03:00:00.000")
    compare_all(olap, p, expect_rollup=False)
    refresh_rollups(olap, p, settle=timedelta(0))
    compare_all(olap, p, expect_days=True)


def test_settle_leaves_fresh_marks_dirty(read_olap: Olap, project: str) -> None:
    """A refresh does not cover marks younger than `settle`: their hours stay raw."""
    olap, p = read_olap, project
    refresh_rollups(olap, p, settle=timedelta(0))
    insert(olap, observations=[ObservationEvent(p, "t0-g0", "t0", h(1.2), cost_details={"total": 4.0})])
    refresh_rollups(olap, p, settle=timedelta(hours=1))
    assert h(1) not in cover(olap, p, "obs", h(0), h(48)).clean
    assert h(4) in cover(olap, p, "obs", h(0), h(48)).clean
    q = obs_queries(*RANGES[0])[0]
    got = metrics_query(olap, p, q)["data"]
    close(sort_rows(got), sort_rows(metrics_query(olap, p, q, rollups=False)["data"]))
    refresh_rollups(olap, p, settle=timedelta(0))
    assert h(1) in cover(olap, p, "obs", h(0), h(48)).clean
    close(sort_rows(metrics_query(olap, p, q)["data"]), sort_rows(metrics_query(olap, p, q, rollups=False)["data"]))


def test_days_are_built_for_hours_refreshed_before_them(read_olap: Olap, project: str) -> None:
    """A store whose hours were refreshed before the day rows existed (OLAP 0012): the periodic
    refresh picks the project although it has no new mark, and builds its days."""
    olap, p = read_olap, project
    refresh_rollups(olap, p, settle=timedelta(0))
    for sql in ("DELETE FROM {db}.rollup_hours WHERE project_id = {p:String} AND kind IN ('obs_day', 'trace_day')",
                "DELETE FROM {db}.rollup_observations_days WHERE project_id = {p:String}",
                "DELETE FROM {db}.rollup_traces_days WHERE project_id = {p:String}"):
        olap.command(sql, {"p": p})
    q = obs_queries(*RANGES[0])[0]
    served = Served()
    want = metrics_query(olap, p, q, served=served)["data"]
    assert served.path == "rollup" and served.days == 0
    assert p in rollups.projects_to_refresh(olap)
    (res,) = refresh_rollups(olap, p, settle=timedelta(0))
    assert res.obs_hours == res.trace_hours == 0 and res.days == 4  # two days of each kind
    assert p not in rollups.projects_to_refresh(olap)
    served = Served()
    close(sort_rows(metrics_query(olap, p, q, served=served)["data"]), sort_rows(want))
    assert served.days == 2


def test_a_day_that_cannot_be_built_leaves_the_refresh_and_the_reads_whole(
        read_olap: Olap, project: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A day whose build fails (the engine's memory cap on a very large day) stays stale: the hours
    are still refreshed, reads take the day's hours, and the next refresh builds it."""
    olap, p = read_olap, project

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("memory limit")

    monkeypatch.setattr(rollups, "_build_days", fail)
    (res,) = refresh_rollups(olap, p, settle=timedelta(0))
    assert res.obs_hours >= 24 and res.days == 0
    compare_all(olap, p)  # served by the hours, equal to raw
    q = obs_queries(*RANGES[0])[0]
    served = Served()
    metrics_query(olap, p, q, served=served)
    assert served.path == "rollup" and served.days == 0
    monkeypatch.undo()
    (res,) = refresh_rollups(olap, p, settle=timedelta(0))
    assert res.days == 4
    compare_all(olap, p, expect_days=True)


def test_the_current_day_alone_does_not_pick_a_project_for_its_days(read_olap: Olap) -> None:
    """Days are built once they end: a refreshed project whose only data is today is not picked
    again by the periodic refresh until it has new marks."""
    olap, p = read_olap, f"today-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC).replace(microsecond=0)
    insert(olap, traces=[TraceEvent(p, "t", now, timestamp=now, name="chat")],
           observations=[ObservationEvent(p, "o", "t", now, type="SPAN", start_time=now, end_time=now)])
    assert p in rollups.projects_to_refresh(olap)  # new marks
    (res,) = refresh_rollups(olap, p, settle=timedelta(0))
    assert res.obs_hours == 1 and res.days == 0
    assert p not in rollups.projects_to_refresh(olap)


def test_a_read_of_clean_hours_reads_no_raw_table(read_olap: Olap, project: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """With every hour of the range clean, the served statements leave out the raw branch (a branch
    that reads nothing still costs the engine its planning and a look at each table); with a dirty
    hour, the raw rows of that hour are read. Equal to the raw answer either way."""
    olap, p = read_olap, project
    refresh_rollups(olap, p, settle=timedelta(0))
    statements: list[str] = []
    for name in ("query", "query_dicts"):
        original = getattr(Olap, name)

        def logged(self: Olap, text: str, params: Any = None, _orig: Any = original, **kw: Any) -> Any:
            statements.append(text)
            return _orig(self, text, params, **kw)

        monkeypatch.setattr(Olap, name, logged)

    def raw_tables() -> set[str]:
        return {t for s in statements for t in ("observations", "traces") if f"{{db}}.{t} " in s}

    start, end = RANGES[0]
    for env in (None, "prod"):
        statements.clear()
        close(dashboard(olap, p, start=start, end=end, environment=env),
              dashboard(olap, p, start=start, end=end, environment=env, rollups=False))
        statements.clear()
        dashboard(olap, p, start=start, end=end, environment=env)
        assert statements and raw_tables() == set(), statements
        # whole days only: the day rows, no hour rows
        assert not any(f"{{db}}.rollup_{k} " in s for s in statements for k in ("observations", "traces"))
        assert any("{db}.rollup_observations_days " in s for s in statements)
    statements.clear()
    metrics_daily(olap, p)
    assert statements and raw_tables() == set()
    insert(olap, observations=[ObservationEvent(p, "t0-g0", "t0", h(1.2), cost_details={"total": 4.0})])
    want = metrics_daily(olap, p, rollups=False)
    statements.clear()
    close(metrics_daily(olap, p), want)
    assert "observations" in raw_tables()  # the marked hour, raw


def test_a_dirty_hour_refreshed_before_merges_only_the_traces_written_since(read_olap: Olap, project: str) -> None:
    """A project written all the time has its current hour always dirty. Once refreshed, such an hour
    is read from the stored facts of its generation for the traces not written since, and raw for
    those written since: shown here by rows of an untouched trace removed behind the rollups' back
    (a delete that does not go through `delete_traces`, so nothing marks or touches it), which the
    read still counts from the facts, while the new trace of the hour comes from the raw rows."""
    olap, p = read_olap, project
    refresh_rollups(olap, p, settle=timedelta(0))
    # hours 0-12, by hour: hour 5 holds trace t3 alone (4 observations); the others stay clean
    query = {"view": "observations", "fromTimestamp": z(h(0)), "toTimestamp": z(h(12)),
             "timeDimension": {"granularity": "hour"},
             "metrics": [{"measure": "count", "aggregation": "count"}, {"measure": "totalCost", "aggregation": "sum"}]}

    def hour5(served: Served | None = None, **kw: Any) -> tuple[int, float]:
        rows = metrics_query(olap, p, query, served=served, **kw)["data"]
        (row,) = [r for r in rows if r["time_dimension"].startswith(z(h(5))[:13])]
        return int(row["count_count"]), round(float(row["sum_totalCost"]), 9)

    before = hour5()
    assert before == hour5(rollups=False) and before[0] == 4
    insert(olap, traces=[TraceEvent(p, "t-new", h(5.3), timestamp=h(5.3), name="trace-new")],
           observations=[ObservationEvent(p, "new-g", "t-new", h(5.3), type="GENERATION", start_time=h(5.3),
                                          end_time=h(5.4), model="gpt-4o", cost_details={"total": 0.25})])
    assert cover(olap, p, "obs", h(0), h(12)).dirty == [h(5)]  # marked after its generation
    after = (5, round(before[1] + 0.25, 9))
    assert hour5() == hour5(rollups=False) == after
    olap.command("DELETE FROM {db}.observations WHERE project_id = {p:String} AND trace_id = 't3'", {"p": p})
    assert hour5(rollups=False) == (1, 0.25)
    served = Served()
    assert hour5(served) == after and served.path == "rollup"
    # the hour's next refresh reads the raw rows again
    refresh_rollups(olap, p, settle=timedelta(0))
    assert hour5() == hour5(rollups=False) == (1, 0.25)


def test_a_busy_hour_whose_last_refresh_was_costly_waits_and_reads_stay_exact(read_olap: Olap, project: str,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A dirty hour its marks name, whose last recompute took s seconds (at least DEFER_MIN_SECONDS)
    less than DEFER_FACTOR * s ago, is left for a later refresh (a busy current hour is not
    recomputed whole every minute); reads of it stay exact meanwhile. An hour only a touched trace
    names is recomputed however busy."""
    olap, p = read_olap, project
    monkeypatch.setattr(rollups, "_recomputes", {})
    monkeypatch.setattr(rollups, "_waiting", set())
    refresh_rollups(olap, p, settle=timedelta(0))
    query = {"view": "observations", "fromTimestamp": z(h(0)), "toTimestamp": z(h(12)),
             "timeDimension": {"granularity": "hour"},
             "metrics": [{"measure": "count", "aggregation": "count"}, {"measure": "totalCost", "aggregation": "sum"}]}

    def hour5(**kw: Any) -> tuple[int, float]:
        (row,) = [r for r in metrics_query(olap, p, query, **kw)["data"] if r["time_dimension"].startswith(z(h(5))[:13])]
        return int(row["count_count"]), round(float(row["sum_totalCost"]), 9)

    def busy(seconds_ago: float) -> None:
        """Only hour 5's observations look busy: their last recompute took 100 s and ended then."""
        rollups._recomputes.clear()
        rollups._recomputes[(p, "obs", h(5))] = (time.monotonic() - seconds_ago, 100.0)

    # an update without a start time of an observation of hour 5 (t3's) marks hour 20, its event
    # time: only the touched trace names hour 5, which is recomputed however busy
    busy(0)
    insert(olap, observations=[ObservationEvent(p, "t3-g0", "t3", h(20), cost_details={"total": 1.0})])
    (res,) = refresh_rollups(olap, p, settle=timedelta(0))
    assert res.obs_hours == 2 and res.deferred == 0  # hours 5 and 20
    assert cover(olap, p, "obs", h(0), h(12)).dirty == []
    assert hour5() == hour5(rollups=False)
    # a new trace in the busy hour marks it: left for later, and read exactly meanwhile
    busy(0)
    insert(olap, traces=[TraceEvent(p, "t-new", h(5.3), timestamp=h(5.3), name="trace-new")],
           observations=[ObservationEvent(p, "new-g", "t-new", h(5.3), type="GENERATION", start_time=h(5.3),
                                          end_time=h(5.4), model="gpt-4o", cost_details={"total": 0.25})])
    (res,) = refresh_rollups(olap, p, settle=timedelta(0))
    assert res.obs_hours == 0 and res.deferred == 1
    assert cover(olap, p, "obs", h(0), h(12)).dirty == [h(5)]
    assert hour5() == hour5(rollups=False) and hour5()[0] == 5
    # more of that trace (marked, and touched): still left for later
    insert(olap, observations=[ObservationEvent(p, "new-g2", "t-new", h(5.5), type="SPAN", start_time=h(5.5))])
    assert refresh_rollups(olap, p, settle=timedelta(0))[0].deferred == 1
    assert hour5() == hour5(rollups=False) and hour5()[0] == 6
    # no more writes: its marks are older than the last refresh, yet the periodic refresh (all
    # projects) still picks the project, and recomputes the hour three times 100 s later
    assert p in rollups.projects_to_refresh(olap)
    busy(301)
    (res,) = [r for r in refresh_rollups(olap, settle=timedelta(0)) if r.project_id == p]
    assert res.obs_hours == 1 and res.deferred == 0
    assert cover(olap, p, "obs", h(0), h(12)).dirty == []
    assert hour5() == hour5(rollups=False) and hour5()[0] == 6
    assert p not in rollups.projects_to_refresh(olap)


def _deletes_applied(olap: Olap) -> None:
    """Wait until the refreshes' background deletes of older generations have run."""
    deadline = time.monotonic() + 60
    while olap.query("SELECT count() FROM system.mutations WHERE database = {d:String} AND NOT is_done",
                     {"d": olap.database})[0][0]:
        assert time.monotonic() < deadline, "the deletes of older generations did not finish"
        time.sleep(0.05)


def test_a_read_planned_before_a_refresh_reads_the_generations_it_saw(read_olap: Olap, project: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A rollup read names the generations of its `Cover` as values (no look at `rollup_hours` in each
    statement). A refresh that replaces them between the cover and the statements keeps the rows of
    the generation it replaces (until the next refresh of the hour), so the read still finds every
    hour it planned on; older generations are deleted."""
    olap, p = read_olap, project
    refresh_rollups(olap, p, settle=timedelta(0))
    want = metrics_daily(olap, p)
    close(want, metrics_daily(olap, p, rollups=False))
    planned = rollups.covers(olap, p, ("obs", "trace"), None, None)
    # late data in one hour, then a refresh that replaces that hour's and that day's generation
    insert(olap, observations=[ObservationEvent(p, "t0-g0", "t0", h(30), cost_details={"total": 4.0})])
    refresh_rollups(olap, p, settle=timedelta(0))
    _deletes_applied(olap)
    monkeypatch.setattr(metrics_mod, "covers", lambda *args, **kw: planned)
    close(metrics_daily(olap, p), want)  # what the planned snapshot held, every hour found
    monkeypatch.undo()
    changed = metrics_daily(olap, p)
    close(changed, metrics_daily(olap, p, rollups=False))
    assert changed != want
    # a third refresh of the hour: the first generation goes, the second stays with the third
    insert(olap, observations=[ObservationEvent(p, "t0-g0", "t0", h(31), cost_details={"total": 5.0})])
    refresh_rollups(olap, p, settle=timedelta(0))
    _deletes_applied(olap)
    hour = int(h(1).timestamp() // 3600 * 3600)
    per_table = olap.query(
        "SELECT 'obs', uniqExact(generation) FROM {db}.rollup_observations WHERE project_id = {p:String}"
        " AND toUInt32(hour) = {h:UInt32} UNION ALL SELECT 'facts', uniqExact(generation) FROM {db}.rollup_obs_facts"
        " WHERE project_id = {p:String} AND toUInt32(hour) = {h:UInt32}", {"p": p, "h": hour})
    assert sorted(per_table) == [("facts", 2), ("obs", 2)]


def test_a_first_refresh_of_many_hours_names_at_most_a_slice_of_them(read_olap: Olap,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A first (full) refresh of a long history with few rows names the hours it rebuilds at most
    SLICE_HOURS at a time (years of hours named in one statement are more than the engine takes),
    and its rollups equal the raw rows."""
    olap, p = read_olap, f"roll-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(rollups, "SLICE_HOURS", 24)
    starts = [h(-60 + i) for i in range(60)]  # one trace an hour for 60 hours: few rows, many hours
    insert(olap, traces=[TraceEvent(p, f"s{i}", t, timestamp=t, name="sparse") for i, t in enumerate(starts)],
           observations=[ObservationEvent(p, f"s{i}-g", f"s{i}", t, type="GENERATION", name="llm", start_time=t,
                                          end_time=t + timedelta(seconds=2), model="gpt-4o",
                                          cost_details={"total": 0.01 * (i + 1)}) for i, t in enumerate(starts)])
    named: list[int] = []
    epochs = rollups._epochs
    monkeypatch.setattr(rollups, "_epochs", lambda hours: named.append(len(hours)) or epochs(hours))
    (res,) = refresh_rollups(olap, p, settle=timedelta(0))
    assert res.full and res.obs_hours == 60 and res.trace_hours == 60
    assert named and max(named) <= 24, sorted(named)[-5:]
    served = Served()
    close(metrics_daily(olap, p, served=served), metrics_daily(olap, p, rollups=False))
    assert served.path == "rollup"
