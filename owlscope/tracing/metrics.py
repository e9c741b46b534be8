"""Metrics: the query-object API (GET /api/public/metrics and /v2/metrics) and the daily rollup
(GET /api/public/metrics/daily).

A metrics query names a view (traces, observations, scores-numeric, scores-boolean,
scores-categorical), dimensions to group by, measures with aggregations, filters, an optional time
dimension and a required time range. Each view is a subquery of merged *facts* (one row per trace,
observation or score, merging only the columns the query needs); dimensions, measures and filters
are SQL over those facts. Result rows carry each dimension under its field name, each metric as
`{aggregation}_{measure}` (e.g. `sum_totalCost`, `p95_latency`) and the time bucket as
`time_dimension`. Latencies are milliseconds. The `errors` measure (observations: level ERROR;
traces: with an ERROR observation) is 1 or 0 per fact: its avg is the error rate, its sum the count.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from owlscope.errors import InvalidRequest
from owlscope.storage.olap.client import Olap
from owlscope.tracing.common import Params, iso, parallel, parse_time_param
from owlscope.tracing.filters import Column, compile_condition, conditions_from_list
from owlscope.tracing.model import OBS as OBS_MERGED
from owlscope.tracing.model import obs_exprs, rollups_fast, trace_aggregates_sql
from owlscope.tracing.obs_select import TRACE_MERGED
from owlscope.tracing.rollups import (
    OBS_DIMENSIONS,
    OBS_FACT_MEASURES,
    TRACE_DIMENSIONS,
    TRACE_FACT_MEASURES,
    Served,
    Shape,
    cover,
    covers,
    merge_expr,
    serve,
)
from owlscope.tracing.traces import COLUMNS as TRACE_COLUMNS
from owlscope.tracing.traces import trace_conditions
from owlscope.wire import PageRequest

_MS = "toUnixTimestamp64Milli"
AGGREGATIONS = {
    "sum": "sum({x})", "avg": "avg({x})", "count": "count({x})", "max": "max({x})", "min": "min({x})",
    "p50": "quantile(0.5)({x})", "p75": "quantile(0.75)({x})", "p90": "quantile(0.9)({x})",
    "p95": "quantile(0.95)({x})", "p99": "quantile(0.99)({x})", "histogram": "{histogram}",
    "uniq": "uniqExact({x})",
}


def histogram_sql(x: str, bins: int, tag: str) -> str:
    """SQL: the finite values of `x` in `bins` equal-width bins from their min to their max, as an
    array of (lower, upper, count) with the count a float: the shape of ClickHouse's `histogram`,
    which the lite engine does not have (and whose bins are adaptive, not equal-width). All values
    equal: one bin. No value: []. `tag` keeps the inner aliases apart when a query has two."""
    v, lo, hi, w, idx, n = (f"_h{tag}_{a}" for a in ("v", "lo", "hi", "w", "i", "n"))
    return (
        f"if(empty(groupArrayIf(toFloat64({x}), isFinite(toFloat64({x}))) AS {v}), [],"
        f" arrayMap((i, c) -> ({lo} + {w} * i, if(i + 1 = length({n}), {hi}, {lo} + {w} * (i + 1)), toFloat64(c)),"
        f" range(length({n})),"
        f" if((((arrayMax({v}) AS {hi}) - (arrayMin({v}) AS {lo})) / {bins} AS {w}) = 0, [toUInt64(length({v}))],"
        f" arrayReduce('countResample(0, {bins}, 1)',"
        f" arrayMap(a -> least(toUInt32((a - {lo}) / {w}), {bins} - 1), {v}) AS {idx}, {idx})) AS {n}))"
    )


GRANULARITIES = {
    "minute": "toStartOfMinute({t})", "hour": "toStartOfHour({t})", "day": "toStartOfDay({t})",
    "week": "toStartOfWeek({t}, 1)", "month": "toStartOfMonth({t})",
}


@dataclass(frozen=True)
class View:
    time: str  # the facts' timestamp
    dimensions: dict[str, str]
    measures: dict[str, str]  # per-fact value; "count" counts facts
    high_cardinality: tuple[str, ...]
    data_types: tuple[str, ...] = ()


_OBS_LATENCY = f"if({_MS}(o_end) = 0, NULL, {_MS}(o_end) - {_MS}(o_start))"
_SCORE_DIMS = {
    "environment": "environment", "name": "name", "source": "source", "dataType": "data_type",
    "configId": "ifNull(config_id, '')", "timestampMonth": "formatDateTime(timestamp, '%Y-%m')",
    "timestampDay": "formatDateTime(timestamp, '%Y-%m-%d')", "value": "value",
    "traceName": "t_name", "tags": "t_tags", "traceRelease": "t_release", "traceVersion": "t_version",
    "observationName": "o_name", "observationModelName": "o_model", "observationPromptName": "o_prompt_name",
    "observationPromptVersion": "o_prompt_version", "id": "id", "traceId": "ifNull(trace_id, '')",
    "userId": "t_user", "sessionId": "ifNull(session_id, '')", "observationId": "ifNull(observation_id, '')",
    "metadata": "ifNull(metadata, '')",
}
VIEWS: dict[str, View] = {
    "observations": View(
        time="o_sort",
        dimensions={
            "environment": "if(o_env = '', 'default', o_env)", "type": "o_type", "name": "o_name",
            "level": "if(o_level = '', 'DEFAULT', o_level)", "version": "o_version", "tags": "t_tags",
            "release": "t_release", "traceName": "t_name", "traceRelease": "t_release",
            "traceVersion": "t_version", "providedModelName": "o_model", "promptName": "o_prompt_name",
            "promptVersion": "o_prompt_version", "isRootObservation": "o_parent = ''",
            "startTimeMonth": "formatDateTime(o_sort, '%Y-%m')", "id": "id", "traceId": "trace_id",
            "userId": "t_user", "sessionId": "t_session", "parentObservationId": "o_parent",
            "metadata": "o_metadata",
        },
        measures={
            "count": "1", **OBS_FACT_MEASURES,
            "streamingLatency": f"if({_MS}(o_end) = 0 OR {_MS}(o_cst) = 0, NULL, {_MS}(o_end) - {_MS}(o_cst))",
            "outputTokensPerSecond": f"o_tokens_out / nullIf({_OBS_LATENCY} / 1000, 0)",
            "tokensPerSecond": f"o_tokens_total / nullIf({_OBS_LATENCY} / 1000, 0)",
            "countScores": "ifNull(sc_count, 0)",
        },
        high_cardinality=("id", "traceId", "userId", "sessionId", "parentObservationId"),
    ),
    "traces": View(
        time="t_ts",
        dimensions={
            "id": "id", "name": "t_name", "tags": "t_tags", "userId": "t_user", "sessionId": "t_session",
            "release": "t_release", "version": "t_version", "environment": "if(t_env = '', 'default', t_env)",
            "timestampMonth": "formatDateTime(t_ts, '%Y-%m')", "metadata": "t_metadata",
        },
        measures={
            "count": "1", **TRACE_FACT_MEASURES, "scoresCount": "ifNull(sc_count, 0)",
            "uniqueUserIds": "nullIf(t_user, '')",
        },
        high_cardinality=("id", "userId", "sessionId"),
    ),
    "scores-numeric": View("timestamp", _SCORE_DIMS, {"count": "1", "value": "value"},
                           ("id", "traceId", "userId", "sessionId", "observationId"), ("NUMERIC", "BOOLEAN")),
    "scores-boolean": View("timestamp", {**_SCORE_DIMS, "booleanValue": "value = 1"},
                           {"count": "1", "value": "value"},
                           ("id", "traceId", "userId", "sessionId", "observationId"), ("BOOLEAN",)),
    "scores-categorical": View("timestamp", {**_SCORE_DIMS, "stringValue": "ifNull(string_value, '')"},
                               {"count": "1"}, ("id", "traceId", "userId", "sessionId", "observationId"),
                               ("CATEGORICAL",)),
}
_KIND = {"tags": "array", "metadata": "object", "value": "number", "promptVersion": "number",
         "observationPromptVersion": "number", "isRootObservation": "bool", "booleanValue": "bool"}
_ALIAS = re.compile(r"\b(?:o|t|a|sc)_[a-z_]+\b")


def _aliases(sql: str, prefix: str) -> set[str]:
    return {a for a in _ALIAS.findall(sql) if a.startswith(prefix)}


def _facts(view_name: str, used: str, p: Params, start_sql: str, end_sql: str, fast: bool = False) -> str:
    """The merged facts of a view within [start, end), with just the aliases `used` mentions (`fast`:
    cost and token totals from the scalar columns alone, see obs_select.rollups_fast)."""
    trace_aliases = _aliases(used, "t_") & set(TRACE_MERGED)
    if view_name == "observations":
        exprs = obs_exprs(fast)
        obs = _aliases(used, "o_") & set(exprs)
        sel = "".join(f", {exprs[a]} AS {a}" for a in sorted(obs - {"o_sort"}))
        sql = (
            f"SELECT trace_id, id, min(sort_ts) AS o_sort{sel} FROM {{db}}.observations"
            " WHERE project_id = {project_id:String} GROUP BY trace_id, id"
            f" HAVING o_sort >= {start_sql} AND o_sort < {end_sql}"
        )
        sql = f"SELECT * FROM ({sql}) AS f"
        if trace_aliases:
            tsel = "".join(f", {TRACE_MERGED[a]} AS {a}" for a in sorted(trace_aliases))
            sql += (f" LEFT JOIN (SELECT id AS tr_id{tsel} FROM {{db}}.traces WHERE project_id = {{project_id:String}}"
                    " GROUP BY id) AS tr ON tr.tr_id = f.trace_id")
        if "sc_count" in used:
            sql += (" LEFT JOIN (SELECT assumeNotNull(observation_id) AS so_id, count() AS sc_count FROM {db}.scores"
                    " FINAL WHERE project_id = {project_id:String} AND isNotNull(observation_id) GROUP BY so_id)"
                    " AS sc ON sc.so_id = f.id")
        return sql
    if view_name == "traces":
        from owlscope.tracing.traces import MERGED as T_MERGED

        tr = (_aliases(used, "t_") & set(T_MERGED)) | {"t_ts"}
        sel = "".join(f", {T_MERGED[a]} AS {a}" for a in sorted(tr - {"t_ts"}))
        sql = (
            f"SELECT * FROM (SELECT id, min(timestamp) AS t_ts{sel} FROM {{db}}.traces"
            " WHERE project_id = {project_id:String} GROUP BY id"
            f" HAVING t_ts >= {start_sql} AND t_ts < {end_sql}) AS f"
        )
        if _aliases(used, "a_"):
            restrict = (f"trace_id IN (SELECT id FROM {{db}}.traces WHERE project_id = {{project_id:String}}"
                        f" AND timestamp < {end_sql})")
            sql += f" LEFT JOIN ({trace_aggregates_sql(restrict, _aliases(used, 'a_'), fast=fast)}) AS agg ON agg.trace_id = f.id"
        if "sc_count" in used:
            sql += (" LEFT JOIN (SELECT assumeNotNull(trace_id) AS st_id, count() AS sc_count FROM {db}.scores"
                    " FINAL WHERE project_id = {project_id:String} AND isNotNull(trace_id) GROUP BY st_id)"
                    " AS sc ON sc.st_id = f.id")
        return sql
    view = VIEWS[view_name]
    sql = (
        "SELECT * FROM (SELECT * FROM {db}.scores FINAL WHERE project_id = {project_id:String}"
        f" AND data_type IN {p.texts(view.data_types)} AND timestamp >= {start_sql} AND timestamp < {end_sql}) AS s"
    )
    if trace_aliases:
        tsel = "".join(f", {TRACE_MERGED[a]} AS {a}" for a in sorted(trace_aliases))
        sql += (f" LEFT JOIN (SELECT id AS tr_id{tsel} FROM {{db}}.traces WHERE project_id = {{project_id:String}}"
                " GROUP BY id) AS tr ON tr.tr_id = ifNull(trace_id, '')")
    obs = _aliases(used, "o_") & set(OBS_MERGED)
    if obs:
        osel = "".join(f", {OBS_MERGED[a]} AS {a}" for a in sorted(obs))
        sql += (f" LEFT JOIN (SELECT id AS ob_id{osel} FROM {{db}}.observations WHERE project_id = {{project_id:String}}"
                " GROUP BY trace_id, id) AS ob ON ob.ob_id = ifNull(observation_id, '')")
    return sql


def _parse_query(query: Any) -> dict[str, Any]:
    if isinstance(query, str):
        try:
            query = orjson.loads(query)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"Invalid query: not valid JSON ({exc})") from None
    if not isinstance(query, dict):
        raise InvalidRequest("Invalid query: expected a JSON object")
    return query


def _list_of_dicts(query: dict[str, Any], key: str, required: bool = False) -> list[dict[str, Any]]:
    value = query.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidRequest(f"Invalid query: '{key}' must be a list of objects")
    if required and not value:
        raise InvalidRequest(f"Invalid query: '{key}' needs at least one entry")
    return value


def _time_bucket(granularity: Any, time_expr: str, start: datetime, end: datetime) -> str:
    if granularity == "auto":
        seconds = max(60, math.ceil((end - start).total_seconds() / 50 / 60) * 60)
        return f"toStartOfInterval({time_expr}, INTERVAL {seconds} SECOND)"
    if granularity not in GRANULARITIES:
        raise InvalidRequest(f"Invalid timeDimension.granularity {granularity!r}: use auto, {', '.join(GRANULARITIES)}")
    return GRANULARITIES[granularity].format(t=time_expr)


@dataclass(frozen=True)
class CompiledQuery:
    """A checked metrics query: the SQL parts over a view's facts, before the facts are chosen."""

    view_name: str
    select: list[str]
    group: list[str]
    where: list[str]
    order: list[str]
    dimensions: list[str]
    row_limit: int
    params: Params
    start: datetime
    end: datetime
    shape: Shape | None = None  # the same query over rollups, when its shape allows (rollups.py)


def compile_metrics_query(project_id: str, query: dict[str, Any] | str, *, version: int = 2) -> CompiledQuery:
    """Check a metrics query object and compile it (400 naming what is wrong); runs nothing. Version 2
    rejects high-cardinality dimensions."""
    q = _parse_query(query)
    view_name = q.get("view")
    if view_name not in VIEWS:
        raise InvalidRequest(f"Invalid query: view must be one of {', '.join(VIEWS)}")
    view = VIEWS[view_name]
    start = parse_time_param(q.get("fromTimestamp"), "fromTimestamp")
    end = parse_time_param(q.get("toTimestamp"), "toTimestamp")
    if start is None or end is None:
        raise InvalidRequest("Invalid query: fromTimestamp and toTimestamp are required")
    if end <= start:
        raise InvalidRequest("Invalid query: toTimestamp must be after fromTimestamp")
    config = q.get("config") or {}
    if not isinstance(config, dict):
        raise InvalidRequest("Invalid query: config must be an object")
    row_limit = config.get("row_limit", 100)
    bins = config.get("bins", 10)
    for name, val, hi in (("row_limit", row_limit, 1000), ("bins", bins, 100)):
        if isinstance(val, bool) or not isinstance(val, int) or not 1 <= val <= hi:
            raise InvalidRequest(f"Invalid query: config.{name} must be an integer from 1 to {hi}")

    p = Params(project_id=project_id)
    select: list[str] = []
    group: list[str] = []
    names: list[str] = []
    for d in _list_of_dicts(q, "dimensions"):
        field = d.get("field")
        if field not in view.dimensions:
            raise InvalidRequest(f"Invalid dimension {field!r} for view {view_name}: use {', '.join(view.dimensions)}")
        if version >= 2 and field in view.high_cardinality:
            raise InvalidRequest(f"Dimension {field!r} has too many values to group by; filter on it instead")
        select.append(f"{view.dimensions[field]} AS `{field}`")
        group.append(f"`{field}`")
        names.append(field)
    metric_aliases = []
    kind = {"observations": "obs", "traces": "trace"}.get(view_name)
    merges: dict[str, str | None] = {}
    requested = _list_of_dicts(q, "metrics", required=True)
    rollup_dims = OBS_DIMENSIONS if kind == "obs" else TRACE_DIMENSIONS
    td = q.get("timeDimension")
    # Whether the rollups can answer (rollups.py): held measures, dimensions and filters on rollup
    # keys, whole-hour time buckets. Decided first: percentiles then use the rollups' estimator.
    servable = (
        kind is not None
        and all(merge_expr(kind, m.get("measure"), m.get("aggregation")) is not None for m in requested)
        and all(n in rollup_dims for n in names)
        and all(isinstance(f, dict) and f.get("column") in rollup_dims for f in q.get("filters") or [])
        and (not td or not isinstance(td, dict)
             or _whole_hours(_time_bucket(td.get("granularity", "auto"), "{t}", start, end)))
    )
    for m in requested:
        measure, agg = m.get("measure"), m.get("aggregation")
        if measure not in view.measures:
            raise InvalidRequest(f"Invalid measure {measure!r} for view {view_name}: use {', '.join(view.measures)}")
        if agg not in AGGREGATIONS:
            raise InvalidRequest(f"Invalid aggregation {agg!r}: use {', '.join(AGGREGATIONS)}")
        expr = view.measures[measure]
        if measure == "uniqueUserIds":
            sql = f"uniqExact({expr})"
        elif measure == "count" or agg == "count":
            sql = "count()" if measure == "count" else f"count({expr})"
        elif servable and agg.startswith("p"):
            # the estimator the rollups merge (a quantile state), so both paths give the same percentiles
            sql = f"quantile({int(agg[1:]) / 100})({expr})"
        else:
            sql = AGGREGATIONS[agg].format(x=expr, histogram=histogram_sql(expr, bins, str(len(select))))
        alias = f"{agg}_{measure}"
        merges[alias] = merge_expr(kind, measure, agg) if kind else None
        select.append(f"{sql} AS `{alias}`")
        metric_aliases.append(alias)
    bucket = None
    if td:
        if not isinstance(td, dict):
            raise InvalidRequest("Invalid query: timeDimension must be an object")
        bucket = _time_bucket(td.get("granularity", "auto"), "{t}", start, end)
        select.insert(0, f"{bucket.format(t=view.time)} AS time_dimension")
        group.insert(0, "time_dimension")

    where = []
    rollup_where = []
    columns = {f: Column(_KIND.get(f, "string"), e) for f, e in view.dimensions.items()}
    if view_name == "observations":
        columns.update({m: Column("number", e) for m, e in view.measures.items() if m != "count"})
    for cond in conditions_from_list(q.get("filters") or [], "filters"):
        col = columns.get(cond.column)
        if col is None:
            raise InvalidRequest(f"Invalid filter column {cond.column!r} for view {view_name}")
        where.append(compile_condition(cond, col, p))
        if cond.column in rollup_dims:
            rollup_where.append(compile_condition(cond, Column(col.kind, rollup_dims[cond.column]), p))
        else:
            servable = False

    order = []
    for o in _list_of_dicts(q, "orderBy"):
        field, direction = o.get("field"), str(o.get("direction", "desc")).upper()
        if field not in (*names, *metric_aliases, "time_dimension") or direction not in ("ASC", "DESC"):
            raise InvalidRequest(f"Invalid orderBy field {field!r}: order by a requested dimension or metric")
        order.append(f"`{field}` {direction}")
    if not order and td:
        order.append("time_dimension ASC")

    # Rollup-served (rollups.py): dimensions and filters on rollup keys, held measures, whole-hour buckets.
    shape = None
    if servable and kind is not None:
        shape = Shape(kind, bucket, {n: (rollup_dims[n], view.dimensions[n]) for n in names},
                      {a: e for a, e in merges.items() if e is not None}, rollup_where, where, order, row_limit)
    return CompiledQuery(view_name, select, group, where, order, names, row_limit, p, start, end, shape)


def _whole_hours(bucket: str) -> bool:
    """A time bucket made of whole UTC hours (so a rollup hour falls in one bucket)."""
    if bucket.startswith("toStartOfInterval("):
        seconds = int(bucket.split("INTERVAL ")[1].split(" ")[0])
        return seconds % 3600 == 0
    return not bucket.startswith("toStartOfMinute(")


def metrics_query(olap: Olap, project_id: str, query: dict[str, Any] | str, *, version: int = 2,
                  rollups: bool = True, served: Served | None = None) -> dict[str, Any]:
    """Run a metrics query object; `{"data": [row, ...]}`. Version 2 rejects high-cardinality dimensions.
    A query whose shape the rollups hold reads their clean hours and merges the rest raw (`rollups`
    False: always raw); `served` records which path answered."""
    c = compile_metrics_query(project_id, query, version=version)
    p = c.params
    if rollups and c.shape is not None:
        cov = cover(olap, project_id, c.shape.kind, c.start, c.end)
        if cov.clean:
            rows = serve(olap, project_id, c.shape, p, c.start, c.end, cov, served)
            return {"data": [_json_row(r, set(c.dimensions)) for r in rows]}
    used = " ".join([*c.select, *c.where])
    fast = c.view_name in ("observations", "traces") and rollups_fast(olap, project_id)
    facts = _facts(c.view_name, used, p, p.time(c.start), p.time(c.end), fast)
    sql = (
        f"SELECT {', '.join(c.select)} FROM ({facts})"
        + (f" WHERE {' AND '.join(c.where)}" if c.where else "")
        + (f" GROUP BY {', '.join(c.group)}" if c.group else "")
        + (f" ORDER BY {', '.join(c.order)}" if c.order else "")
        + f" LIMIT {c.row_limit}"
    )
    rows = olap.query_dicts(sql, p.values)
    return {"data": [_json_row(r, set(c.dimensions)) for r in rows]}


def _json_row(r: dict[str, Any], dimensions: set[str]) -> dict[str, Any]:
    out = {}
    for k, v in r.items():
        if k in dimensions and v == "":
            v = None  # an unset merged string
        elif isinstance(v, datetime):
            v = iso(v)
        elif isinstance(v, float) and not math.isfinite(v):
            v = None
        elif isinstance(v, list):
            v = [list(x) if isinstance(x, tuple) else x for x in v]
        out[k] = v
    return out


def metrics_v2(
    olap: Olap, project_id: str, query: dict[str, Any] | str | None = None, *, view: str | None = None,
    dimensions: list[str] | None = None, metrics: list[tuple[str, str]] | None = None,
    filters: list[dict[str, Any]] | None = None, time_dimension: str | None = None,
    from_timestamp: Any = None, to_timestamp: Any = None, order_by: list[tuple[str, str]] | None = None,
    row_limit: int | None = None,
) -> dict[str, Any]:
    """GET /api/public/v2/metrics: a query object, or the same given as keywords (for the UI):
    `metrics_v2(olap, pid, view="observations", dimensions=["providedModelName"],
    metrics=[("totalCost", "sum"), ("latency", "p95")], time_dimension="day", from_timestamp=...,
    to_timestamp=...)`."""
    if query is None:
        query = {
            "view": view,
            "dimensions": [{"field": d} for d in dimensions or []],
            "metrics": [{"measure": m, "aggregation": a} for m, a in metrics or []],
            "filters": filters or [],
            "fromTimestamp": from_timestamp.isoformat() if isinstance(from_timestamp, datetime) else from_timestamp,
            "toTimestamp": to_timestamp.isoformat() if isinstance(to_timestamp, datetime) else to_timestamp,
            "orderBy": [{"field": f, "direction": d} for f, d in order_by or []],
        }
        if time_dimension:
            query["timeDimension"] = {"granularity": time_dimension}
        if row_limit:
            query["config"] = {"row_limit": row_limit}
    return metrics_query(olap, project_id, query, version=2)


# ---- daily -----------------------------------------------------------------------------------
def metrics_daily(
    olap: Olap, project_id: str, *, page: int | None = 1, limit: int | None = 50, trace_name: str | None = None,
    user_id: str | None = None, tags: list[str] | None = None, environment: list[str] | None = None,
    from_timestamp: Any = None, to_timestamp: Any = None, rollups: bool = True, served: Served | None = None,
) -> dict[str, Any]:
    """GET /api/public/metrics/daily: per UTC day (newest first) countTraces (by trace start),
    countObservations and totalCost (by observation start), and `usage` per model (observations
    that name a model): inputUsage, outputUsage, totalUsage, countObservations, countTraces, totalCost.
    Without trace filters, served from rollups (rollups.py) where hours are clean."""
    req = PageRequest.of(page, limit)
    page, limit = req.page, req.limit
    p = Params(project_id=project_id)
    start = parse_time_param(from_timestamp, "fromTimestamp")
    end = parse_time_param(to_timestamp, "toTimestamp")
    if rollups and trace_name is None and user_id is None and not tags and not environment:
        rolled = _daily_from_rollups(olap, project_id, start, end, served)
        if rolled is not None:
            by_day_traces, obs_rows = rolled
            return _daily_page(by_day_traces, obs_rows, req)
    # The trace filters of GET /traces, compiled on its columns.
    trace_having = [compile_condition(c, TRACE_COLUMNS[c.column], p) for c in trace_conditions(
        name=trace_name, user_id=user_id, tags=tags, environment=environment)]
    range_t = []
    if start is not None:
        range_t.append(f"t_ts >= {p.time(start)}")
    if end is not None:
        range_t.append(f"t_ts < {p.time(end)}")
    trace_sel = "".join(f", {TRACE_MERGED[a]} AS {a}" for a in sorted(_aliases(" ".join(trace_having), "t_")))
    restrict = ""
    if user_id is not None:  # the few traces whose partial states carry the user
        restrict = (" AND id IN (SELECT id FROM {db}.traces WHERE project_id = {project_id:String}"
                    f" AND finalizeAggregation(user_id) = {p.text(user_id)})")
    traces_sql = (
        f"SELECT id, min(timestamp) AS t_ts{trace_sel} FROM {{db}}.traces WHERE project_id = {{project_id:String}}"
        f"{restrict} GROUP BY id" + (f" HAVING {' AND '.join(trace_having)}" if trace_having else "")
    )
    traces_by_day = (f"SELECT toDate(t_ts) AS day, count() FROM ({traces_sql})"
                     + (f" WHERE {' AND '.join(range_t)}" if range_t else "") + " GROUP BY day")
    range_o = []
    if start is not None:
        range_o.append(f"o_sort >= {p.time(start)}")
    if end is not None:
        range_o.append(f"o_sort < {p.time(end)}")
    obs_where = f" AND trace_id IN (SELECT id FROM ({traces_sql}))" if trace_having else ""
    exprs = obs_exprs(rollups_fast(olap, project_id))
    sel = "".join(f", {exprs[a]} AS {a}" for a in ("o_model", "o_tokens_in", "o_tokens_out", "o_tokens_total",
                                                     "o_cost_total"))
    obs_by_day = (
        "SELECT toDate(o_sort) AS day, o_model, count(), uniqExact(trace_id), sum(o_tokens_in),"
        " sum(o_tokens_out), sum(o_tokens_total), sum(o_cost_total) FROM ("
        f"SELECT trace_id, id, min(sort_ts) AS o_sort{sel} FROM {{db}}.observations"
        f" WHERE project_id = {{project_id:String}}{obs_where} GROUP BY trace_id, id"
        + (f" HAVING {' AND '.join(range_o)}" if range_o else "") + ") GROUP BY day, o_model"
    )
    # The two reads are independent: one round, side by side.
    by_day_traces, obs_rows = parallel(lambda: olap.query(traces_by_day, p.values),
                                       lambda: olap.query(obs_by_day, p.values))
    return _daily_page(by_day_traces, obs_rows, req)


_DAILY_OBS = {"n": "countMerge(n)", "traces": "uniqExactMerge(traces)", "tin": "sumMerge(tokens_in_sum)",
              "tout": "sumMerge(tokens_out_sum)", "tot": "sumMerge(tokens_total_sum)", "cost": "sumMerge(cost_total_sum)"}


def _daily_from_rollups(olap: Olap, project_id: str, start: datetime | None, end: datetime | None,
                        served: Served | None) -> tuple[list[tuple], list[tuple]] | None:
    """The two daily groupings (traces per day; observations per day and model) from rollups, None
    when no hour of the range is clean."""
    cov = covers(olap, project_id, ("obs", "trace"), start, end)
    if not cov["obs"].clean and not cov["trace"].clean:
        return None
    p = Params(project_id=project_id)
    traces, obs = parallel(
        lambda: serve(olap, project_id, Shape("trace", "toDate({t})", {}, {"n": "countMerge(n)"}), p, start, end,
                      cov["trace"], served),
        lambda: serve(olap, project_id, Shape("obs", "toDate({t})", {"m": ("model", "o_model")}, dict(_DAILY_OBS)),
                      p, start, end, cov["obs"], served))
    return ([(r["time_dimension"], r["n"]) for r in traces if r["n"]],
            [(r["time_dimension"], r["m"], *(r[k] for k in _DAILY_OBS)) for r in obs if r["n"]])


def _daily_page(by_day_traces: list[tuple], obs_rows: list[tuple], req: PageRequest) -> dict[str, Any]:
    page, limit = req.page, req.limit
    days: dict[Any, dict[str, Any]] = defaultdict(
        lambda: {"countTraces": 0, "countObservations": 0, "totalCost": 0.0, "usage": []})
    for day, n in by_day_traces:
        days[day]["countTraces"] = int(n)
    for day, model, n, ntraces, inp, out, tot, cost in obs_rows:
        d = days[day]
        d["countObservations"] += int(n)
        d["totalCost"] += float(cost)
        if model:
            d["usage"].append({"model": model, "inputUsage": int(inp), "outputUsage": int(out),
                               "totalUsage": int(tot), "countObservations": int(n), "countTraces": int(ntraces),
                               "totalCost": float(cost)})
    ordered = sorted(days.items(), key=lambda kv: kv[0], reverse=True)
    data = []
    for day, d in ordered[(page - 1) * limit: page * limit]:
        d["usage"].sort(key=lambda u: u["model"])
        data.append({"date": day.isoformat(), **d})
    return {"data": data, "meta": req.meta(len(ordered))}
