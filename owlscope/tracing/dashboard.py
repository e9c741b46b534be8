"""The project dashboard: traces, cost and tokens over time, latency percentiles, cost by model, top
users and score distributions for a time range and an optional environment.

Every query first narrows to the rows whose own start lies in the range (a one-column filter on
the partial rows) and merges only the traces or observations those rows belong to, so a short range
stays cheap however much history a project has. The queries run side by side.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from owlscope.errors import InvalidRequest
from owlscope.storage.olap.client import Olap
from owlscope.tracing.common import Params, finite, parallel, utc
from owlscope.tracing.model import (
    OBS_ENV,
    TRACE,
    TRACE_ENV,
    not_internal,
    obs_exprs,
    rollups_fast,
    select_list,
    trace_aggregates_sql,
)
from owlscope.tracing.rollups import Served, Shape, cover, merge_expr, serve, user_rows

MAX_SCORE_NAMES = 8
DISTINCT_VALUES = 2000  # per score name, for the dashboard's one-read score widgets
TOP_USERS = 10
TOP_MODELS = 12
NUMERIC_BINS = 10
_MS = "toUnixTimestamp64Milli"
# Merging observations GROUP BY (trace_id, id) follows the table's sort key: aggregating in that order
# streams instead of holding every key (a month of a busy project would not fit the memory cap).
_IN_ORDER = "SETTINGS optimize_aggregation_in_order = 1"


def bucket_seconds(start: datetime, end: datetime) -> int:
    """Chart resolution: about 24-100 points for any range."""
    span = (end - start).total_seconds()
    for step in (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400):
        if span / step <= 100:
            return step
    return 30 * 86400


def buckets(start: datetime, end: datetime, step: int) -> list[datetime]:
    """Bucket starts (aligned like ClickHouse's toStartOfInterval on the epoch) covering [start, end)."""
    first = int(start.timestamp()) // step * step
    out, t = [], first
    while t < end.timestamp():
        out.append(datetime.fromtimestamp(t, tz=UTC))
        t += step
    return out


def _row_expr(merged: str) -> str:
    """A merged-value expression (see obs_select.MERGED) evaluated on one row's own states."""
    return merged.replace("argMaxIfMerge(", "finalizeAggregation(").replace("min(sort_ts)", "sort_ts").replace(
        "min(scalars_complete)", "scalars_complete")


class _Sql:
    def __init__(self, project_id: str, start: datetime, end: datetime, environment: str | None,
                 hide_internal: bool = False):
        self.p = Params(project_id=project_id)
        self.s, self.e = self.p.time(start), self.p.time(end)
        self.env = self.p.text(environment) if environment else None
        self.hide_internal = hide_internal and not environment
        self.exprs = obs_exprs(False)  # merged observation values (obs_exprs(True): no pre-0002 rows)

    def observations(self, aliases: set[str]) -> str:
        """Merged observations that start in the range (and are in the environment).

        Most observations are one row (an OTel span; pieces of legacy events get merged by the
        engine in the background): their values are read from that row's states directly, and only
        keys with several rows are merged with a GROUP BY, which costs far more. A key is read
        directly when its only row starts in the range: keys with more rows at or after the start,
        and keys with a row before it (those start before the range), are excluded from that path."""
        names = sorted(aliases | {"o_env"})
        merged = "".join(f", {self.exprs[a]} AS {a}" for a in names)
        row = "".join(f", {_row_expr(self.exprs[a])} AS {a}" for a in names)
        p, s, e = "project_id = {project_id:String}", self.s, self.e
        multi = (f"SELECT trace_id, id FROM {{db}}.observations WHERE {p} AND sort_ts >= {s}"
                 f" GROUP BY trace_id, id HAVING count() > 1 AND min(sort_ts) < {e}")
        older = (f"SELECT trace_id, id FROM {{db}}.observations WHERE {p} AND sort_ts < {s} AND trace_id IN"
                 f" (SELECT trace_id FROM {{db}}.observations WHERE {p} AND sort_ts >= {s} AND sort_ts < {e})")
        single = (f"SELECT trace_id, id, sort_ts AS o_sort{row} FROM {{db}}.observations WHERE {p}"
                  f" AND sort_ts >= {s} AND sort_ts < {e} AND (trace_id, id) NOT IN ({multi})"
                  f" AND (trace_id, id) NOT IN ({older})")
        several = (f"SELECT trace_id, id, min(sort_ts) AS o_sort{merged} FROM {{db}}.observations WHERE {p}"
                   f" AND (trace_id, id) IN ({multi}) GROUP BY trace_id, id HAVING o_sort >= {s} AND o_sort < {e}")
        env = f" WHERE {OBS_ENV} = {self.env}" if self.env else (
            f" WHERE {not_internal(OBS_ENV)}" if self.hide_internal else "")
        return f"SELECT * FROM ({single} UNION ALL {several}){env}"

    def traces(self, olap: Olap) -> str:
        """Merged traces that start in the range (and are in the environment).

        The traces with a row in the range are merged (a set of their ids narrows the read); when
        most rows are in the range that set would be nearly every id, and every trace is merged
        instead (the HAVING on the merged start keeps the same ones), in key order."""
        having = [f"t_ts >= {self.s}", f"t_ts < {self.e}"]
        if self.env:
            having.append(f"{TRACE_ENV} = {self.env}")
        elif self.hide_internal:
            having.append(not_internal(TRACE_ENV))
        inside, rows = olap.query(
            f"SELECT countIf(timestamp >= {self.s} AND timestamp < {self.e}), count() FROM {{db}}.traces"
            " WHERE project_id = {project_id:String}", self.p.values)[0]
        narrow = "" if inside * 2 >= rows else (
            " AND id IN (SELECT id FROM {db}.traces WHERE project_id = {project_id:String}"
            f" AND timestamp >= {self.s} AND timestamp < {self.e})")
        return (
            f"SELECT id{select_list({'t_ts', 't_user', 't_env'}, TRACE)} FROM {{db}}.traces"
            f" WHERE project_id = {{project_id:String}}{narrow} GROUP BY id HAVING {' AND '.join(having)}"
        )

    def scores(self) -> str:
        where = [f"timestamp >= {self.s}", f"timestamp < {self.e}"]
        if self.env:
            where.append(f"environment = {self.env}")
        elif self.hide_internal:
            where.append(not_internal("environment"))
        return " AND ".join(where)


def _observations_rollup(olap: Olap, q: _Sql, step: int, start: datetime, end: datetime,
                        served: Served | None) -> tuple[dict[datetime, tuple[float, int, int]],
                                                        list[dict[str, Any]]] | None:
    """`_observations_pass` from rollups (clean whole hours; the rest raw), when the buckets are whole
    hours; None otherwise. Latency percentiles use the same quantile state on both paths."""
    project_id = q.p.values["project_id"]
    cov = cover(olap, project_id, "obs", start, end) if step % 3600 == 0 else None
    if cov is None or not cov.clean:
        return None
    roll_where, raw_where = [], []
    if q.env:
        roll_where, raw_where = [f"environment = {q.env}"], [f"{OBS_ENV} = {q.env}"]
    elif q.hide_internal:
        roll_where, raw_where = [not_internal("environment")], [not_internal(OBS_ENV)]
    bucket = f"toStartOfInterval({{t}}, INTERVAL {step} SECOND)"
    sums = {"cost": "sumMerge(cost_total_sum)", "tokens": "sumMerge(tokens_total_sum)", "n": "countMerge(n)"}
    by_bucket = serve(olap, project_id, Shape("obs", bucket, {"gen": ("type = 'GENERATION'", "o_type = 'GENERATION'")},
                                              sums, roll_where, raw_where), q.p, start, end, cov, served)
    series: dict[datetime, tuple[float, int, int]] = {}
    for r in by_bucket:
        b = utc(r["time_dimension"])
        cost, tokens, gens = series.get(b, (0.0, 0, 0))
        series[b] = (cost + float(r["cost"]), tokens + int(r["tokens"]), gens + (int(r["n"]) if r["gen"] else 0))
    p50, p95 = merge_expr("obs", "latency", "p50"), merge_expr("obs", "latency", "p95")
    outputs = {**sums, "tin": "sumMerge(tokens_in_sum)", "tout": "sumMerge(tokens_out_sum)", "p50": p50, "p95": p95}
    models = []
    for r in serve(olap, project_id, Shape("obs", None, {"m": ("model", "o_model")}, outputs,  # type: ignore[arg-type]
                                           roll_where, raw_where), q.p, start, end, cov, served):
        if r["m"]:
            lo, hi = finite(r["p50"]), finite(r["p95"])
            models.append({"model": r["m"], "count": int(r["n"]), "cost": float(r["cost"]),
                           "inputTokens": int(r["tin"]), "outputTokens": int(r["tout"]), "totalTokens": int(r["tokens"]),
                           "p50": lo / 1000 if lo is not None else None, "p95": hi / 1000 if hi is not None else None})
    models.sort(key=lambda x: (-x["cost"], -x["count"], x["model"]))
    return series, models[:TOP_MODELS]


def _observations_pass(olap: Olap, q: _Sql, step: int) -> tuple[dict[datetime, tuple[float, int, int]],
                                                                  list[dict[str, Any]]]:
    """One pass over the range's observations (merging the usage and cost maps is the expensive part):
    cost, tokens and generations per time bucket, and per model calls, tokens, cost and latency."""
    latency = f"if({_MS}(o_end) = 0, NULL, {_MS}(o_end) - {_MS}(o_start))"
    q.exprs = obs_exprs(rollups_fast(olap, q.p.values["project_id"]))
    facts = q.observations({"o_model", "o_cost_total", "o_tokens_in", "o_tokens_out", "o_tokens_total", "o_type",
                            "o_start", "o_end"})
    rows = olap.query(
        f"SELECT toStartOfInterval(o_sort, INTERVAL {step} SECOND) AS b, o_model AS m, grouping(b) AS gb,"
        " sum(o_cost_total), sum(o_tokens_total), countIf(o_type = 'GENERATION'), count(),"
        f" sum(o_tokens_in), sum(o_tokens_out), quantiles(0.5, 0.95)({latency})"
        f" FROM ({facts}) GROUP BY GROUPING SETS ((b), (m)) {_IN_ORDER}",
        q.p.values,
    )
    series: dict[datetime, tuple[float, int, int]] = {}
    models = []
    for b, m, gb, cost, tokens, gens, n, tin, tout, quants in rows:
        if gb == 0:  # a time bucket
            series[utc(b)] = (float(cost), int(tokens), int(gens))
        elif m:
            p50, p95 = (finite(v) for v in quants) if quants else (None, None)
            models.append({"model": m, "count": int(n), "cost": float(cost), "inputTokens": int(tin),
                           "outputTokens": int(tout), "totalTokens": int(tokens),
                           "p50": p50 / 1000 if p50 is not None else None,
                           "p95": p95 / 1000 if p95 is not None else None})
    models.sort(key=lambda x: (-x["cost"], -x["count"], x["model"]))
    return series, models[:TOP_MODELS]


def _traces_pass(olap: Olap, q: _Sql, step: int) -> tuple[dict[datetime, int], dict[str, Any], list[dict[str, Any]]]:
    """One pass over the range's traces: traces per time bucket, totals and latency percentiles (trace
    latency from its observations' start and end times), and the most active users with their
    traces' cost and tokens."""
    tr = q.traces(olap)
    agg = trace_aggregates_sql(f"trace_id IN (SELECT id FROM ({tr}))", {"a_latency", "a_total_cost", "a_total_tokens"})
    rows = olap.query(
        f"SELECT t.t_user AS u, toStartOfInterval(t.t_ts, INTERVAL {step} SECOND) AS b, grouping(u) AS gu,"
        " grouping(b) AS gb, count() AS n, quantilesIf(0.5, 0.9, 0.95, 0.99)(a.a_latency, a.trace_id != ''),"
        " uniqExactIf(t.t_user, t.t_user != ''), max(t.t_ts), sum(a.a_total_cost), sum(a.a_total_tokens)"
        f" FROM ({tr}) AS t LEFT JOIN ({agg}) AS a ON a.trace_id = t.id"
        f" GROUP BY GROUPING SETS ((u), (b), ()) {_IN_ORDER}",
        q.p.values,
    )
    series: dict[datetime, int] = {}
    totals: dict[str, Any] = {"traces": 0, "users": 0, "latency": {}}
    users = []
    for u, b, gu, gb, n, quants, n_users, last, cost, tokens in rows:
        if gu and gb:
            totals = {"traces": int(n), "users": int(n_users), "latency": {
                k: finite(v) for k, v in zip(("p50", "p90", "p95", "p99"), quants, strict=True)} if n else {}}
        elif gu:
            series[utc(b)] = int(n)
        elif u:
            users.append(_user(u, n, last, cost, tokens))
    users.sort(key=lambda x: (-x["traces"], x["userId"]))
    return series, totals, users[:TOP_USERS]


def _user(user: str, traces: int, last: datetime, cost: float, tokens: int) -> dict[str, Any]:
    return {"userId": user, "traces": int(traces), "lastSeen": utc(last), "cost": float(cost), "tokens": int(tokens)}


def _traces_rollup(olap: Olap, q: _Sql, step: int, start: datetime, end: datetime,
                   served: Served | None) -> tuple[dict[datetime, int], dict[str, Any], list[dict[str, Any]]] | None:
    """`_traces_pass` with the series and totals from rollups (clean whole hours; the rest raw), when
    the buckets are whole hours; None otherwise. The most active users are grouped over the merged
    traces: the clean hours' stored facts and the rest raw."""
    project_id = q.p.values["project_id"]
    cov = cover(olap, project_id, "trace", start, end) if step % 3600 == 0 else None
    if cov is None or not cov.clean:
        return None
    roll_where, raw_where = [], []
    if q.env:
        roll_where, raw_where = [f"environment = {q.env}"], [f"{TRACE_ENV} = {q.env}"]
    elif q.hide_internal:
        roll_where, raw_where = [not_internal("environment")], [not_internal(TRACE_ENV)]
    bucket = f"toStartOfInterval({{t}}, INTERVAL {step} SECOND)"
    series = {utc(r["time_dimension"]): int(r["n"]) for r in serve(
        olap, project_id, Shape("trace", bucket, {}, {"n": "countMerge(n)"}, roll_where, raw_where),
        q.p, start, end, cov, served) if r["n"]}
    (tot,) = serve(olap, project_id, Shape("trace", None, {}, {
        "n": "countMerge(n)", "users": "uniqExactMerge(users)",
        "q": "quantilesMerge(0.5, 0.9, 0.95, 0.99)(observed)"}, roll_where, raw_where), q.p, start, end, cov, served)
    n = int(tot["n"])
    totals = {"traces": n, "users": int(tot["users"]), "latency": {
        k: finite(v) for k, v in zip(("p50", "p90", "p95", "p99"), tot["q"], strict=True)} if n else {}}
    # the most active users: whole days from their day rows, the other clean hours from their stored
    # facts, the dirty hours raw
    users = [_user(*r) for r in olap.query(user_rows(olap, project_id, start, end, cov, roll_where, raw_where), q.p.values)]
    users.sort(key=lambda x: (-x["traces"], x["userId"]))
    return series, totals, users[:TOP_USERS]


def _bins(lo: float, hi: float, counts: dict[int, int]) -> list[list[float]]:
    """NUMERIC_BINS equal-width bins over [lo, hi]: [lower, upper, count] (one bin when lo == hi)."""
    if lo == hi:
        return [[lo, hi, float(sum(counts.values()))]]
    w = (hi - lo) / NUMERIC_BINS
    return [[lo + i * w, lo + (i + 1) * w, float(counts.get(i, 0))] for i in range(NUMERIC_BINS)]


def _scores(olap: Olap, q: _Sql) -> list[dict[str, Any]]:
    """Per score name (the most frequent first): numeric ones as a histogram (NUMERIC_BINS
    equal-width bins over [min, max]), categorical and boolean ones as counts per value.

    One read of the range's scores counts each name's distinct values; when no name has more than
    DISTINCT_VALUES of them (scores are mostly a few levels, labels or booleans) everything is
    computed from those counts. Otherwise two reads: the names with their numeric statistics, then
    the bins and the values."""
    where = q.scores()
    rows = olap.query(
        "SELECT name, data_type, value, string_value, count() FROM {db}.scores FINAL"
        f" WHERE project_id = {{project_id:String}} AND {where} AND data_type IN ('NUMERIC', 'BOOLEAN', 'CATEGORICAL')"
        f" GROUP BY name, data_type, value, string_value ORDER BY name, data_type LIMIT {DISTINCT_VALUES + 1} BY name",
        q.p.values,
    )
    per_name: dict[str, list[tuple]] = {}
    for r in rows:
        per_name.setdefault(r[0], []).append(r[1:])
    if all(len(v) <= DISTINCT_VALUES for v in per_name.values()):
        return _scores_from_values(per_name)
    return _scores_two_reads(olap, q, where)


def _scores_from_values(per_name: dict[str, list[tuple]]) -> list[dict[str, Any]]:
    """`_scores` from each name's distinct (data type, value, string value, count)."""
    names = sorted(per_name, key=lambda n: (-sum(r[3] for r in per_name[n]), n))[:MAX_SCORE_NAMES]
    out = []
    for name in names:
        groups = per_name[name]
        e: dict[str, Any] = {"name": name, "dataType": groups[0][0], "count": sum(int(r[3]) for r in groups)}
        numeric = [(float(v), int(n)) for t, v, _, n in groups if t == "NUMERIC" and v is not None]
        if numeric:
            total = sum(n for _, n in numeric)
            lo, hi = min(v for v, _ in numeric), max(v for v, _ in numeric)
            e.update(kind="histogram", count=total, avg=finite(sum(v * n for v, n in numeric) / total),
                     min=finite(lo), max=finite(hi), bins=[])
            if finite(lo) is not None and finite(hi) is not None:
                w = (hi - lo) / NUMERIC_BINS or 1.0
                counts: dict[int, int] = {}
                for v, n in numeric:
                    b = min(math.floor((v - lo) / w), NUMERIC_BINS - 1)
                    counts[b] = counts.get(b, 0) + n
                e["bins"] = _bins(lo, hi, counts)
        values: dict[str, int] = {}
        for t, v, sv, n in groups:
            if t == "BOOLEAN":
                k = "True" if v == 1 else "False"
            elif t == "CATEGORICAL":
                k = sv or ""
            else:
                continue
            values[k] = values.get(k, 0) + int(n)
        if values:
            e.setdefault("kind", "counts")
            e["values"] = [[k, n] for k, n in sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))]
        if "kind" in e:
            out.append(e)
    return out


def _scores_two_reads(olap: Olap, q: _Sql, where: str) -> list[dict[str, Any]]:
    numeric = "data_type = 'NUMERIC' AND isNotNull(value)"
    names = olap.query(
        f"SELECT name, any(data_type), count() AS n, countIf({numeric}), avgIf(value, {numeric}),"
        f" minIf(value, {numeric}), maxIf(value, {numeric}) FROM {{db}}.scores FINAL"
        f" WHERE project_id = {{project_id:String}} AND {where} AND data_type IN ('NUMERIC', 'BOOLEAN', 'CATEGORICAL')"
        f" GROUP BY name ORDER BY n DESC, name LIMIT {MAX_SCORE_NAMES}",
        q.p.values,
    )
    if not names:
        return []
    ranges = [(r[0], float(r[5]), float(r[6])) for r in names
              if r[3] and finite(r[5]) is not None and finite(r[6]) is not None]
    q.p.values.update({
        "score_names": [r[0] for r in names], "bin_names": [r[0] for r in ranges] or [""],
        "bin_lo": [r[1] for r in ranges] or [0.0],
        "bin_w": [(r[2] - r[1]) / NUMERIC_BINS or 1.0 for r in ranges] or [1.0],
    })
    bin_of = ("toString(least(toInt64(floor((value - transform(name, {bin_names:Array(String)}, {bin_lo:Array(Float64)},"
              f" 0.)) / transform(name, {{bin_names:Array(String)}}, {{bin_w:Array(Float64)}}, 1.))), {NUMERIC_BINS - 1}))")
    rows = olap.query(
        f"SELECT name, data_type = 'NUMERIC' AS num, if(num, {bin_of}, if(data_type = 'BOOLEAN',"
        " if(value = 1, 'True', 'False'), ifNull(string_value, ''))) AS k, count() AS n FROM {db}.scores FINAL"
        f" WHERE project_id = {{project_id:String}} AND {where} AND name IN {{score_names:Array(String)}}"
        f" AND (data_type IN ('CATEGORICAL', 'BOOLEAN') OR ({numeric} AND name IN {{bin_names:Array(String)}}))"
        " GROUP BY name, num, k ORDER BY name, num, n DESC, k",
        q.p.values,
    )
    bin_counts: dict[str, dict[int, int]] = {}
    out: dict[str, dict[str, Any]] = {r[0]: {"name": r[0], "dataType": r[1], "count": int(r[2])} for r in names}
    for name, _, _, n_num, avg, lo, hi in names:
        if n_num:
            out[name].update({"kind": "histogram", "count": int(n_num), "avg": finite(avg), "min": finite(lo),
                              "max": finite(hi), "bins": []})
    for name, num, k, n in rows:
        if num:
            bin_counts.setdefault(name, {})[int(k)] = int(n)
            continue
        e = out[name]
        e.setdefault("kind", "counts")
        e.setdefault("values", []).append([k, int(n)])
    for name, lo, hi in ranges:
        out[name]["bins"] = _bins(lo, hi, bin_counts.get(name, {}))
    return [out[r[0]] for r in names if "kind" in out[r[0]]]


def dashboard(olap: Olap, project_id: str, *, start: datetime, end: datetime,
              environment: str | None = None, hide_internal: bool = False, rollups: bool = True,
              served: Served | None = None) -> dict[str, Any]:
    """Everything the dashboard shows for [start, end) (aware datetimes) in one environment (None: all;
    with `hide_internal`, all but the internal ones). Usage per bucket and per model, traces per bucket,
    trace totals and latency percentiles come from rollups where the buckets are whole hours
    (`rollups` False: raw), the most active users (with the cost and tokens of the traces counted for
    them) from the clean hours' stored facts; the scores are raw."""
    if end <= start:
        raise InvalidRequest("The end of the range must be after its start")
    if end - start > timedelta(days=400):
        raise InvalidRequest("Choose a range of at most 400 days")
    step = bucket_seconds(start, end)
    # Two heavy passes (observations, traces) and the light score queries, side by side.
    (usage_series, models), (trace_series, totals, users), scores = parallel(
        lambda: (rollups and _observations_rollup(olap, _Sql(project_id, start, end, environment, hide_internal),
                                                  step, start, end, served))
        or _observations_pass(olap, _Sql(project_id, start, end, environment, hide_internal), step),
        lambda: (rollups and _traces_rollup(olap, _Sql(project_id, start, end, environment, hide_internal),
                                            step, start, end, served))
        or _traces_pass(olap, _Sql(project_id, start, end, environment, hide_internal), step),
        lambda: _scores(olap, _Sql(project_id, start, end, environment, hide_internal)),
    )
    points = buckets(start, end, step)
    series = {
        "labels": [b.isoformat() for b in points],
        "traces": [trace_series.get(b, 0) for b in points],
        "cost": [round(usage_series.get(b, (0.0, 0, 0))[0], 6) for b in points],
        "tokens": [usage_series.get(b, (0.0, 0, 0))[1] for b in points],
        "generations": [usage_series.get(b, (0.0, 0, 0))[2] for b in points],
        "step": step,
    }
    return {
        "series": series,
        "totals": {**totals, "cost": sum(series["cost"]), "tokens": sum(series["tokens"]),
                   "generations": sum(series["generations"])},
        "models": models,
        "users": users,
        "scores": scores,
    }
