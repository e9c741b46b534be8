"""Choosing a page of observations without merging a million rows.

`observations` is an AggregatingMergeTree ordered by (project_id, trace_id, id); a row is a partial
state until the engine or the read merges it. Observations are listed newest first by their start
(`sort_ts`, a min() column). Three ways to pick a page, cheapest first:

- restricted: a traceId (primary-key prefix), a userId/sessionId (the few traces whose partial
  states carry it, then their observations by primary key) or an id (bloom filter) bounds the rows:
  merge just those and filter.
- latest rows: read only `sort_ts` to find the K-th newest row's start (after the cursor, within the
  time range), merge the observations with a row above it and apply every filter. Every observation
  that starts after that bound is among them, so whatever qualifies above it is exact; when fewer
  than a page qualify, K grows (×8) until the rows run out. The candidates stay in SQL (subqueries).
- otherwise (K would pass 250k rows): one GROUP BY over all observations of the project.

The page is ordered by (start, trace id, id) descending; v2's cursor is the last item's key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from owlscope.storage.olap.client import Olap
from owlscope.tracing.common import Params, TraceRestriction, is_small, kth_newest, restrict_traces
from owlscope.tracing.filters import Column, Condition, compile_condition, resolve
from owlscope.tracing.model import (
    LATENCY,
    OBS,
    OBS_ENV,
    OBS_LEVEL,
    OBS_METADATA,
    TOTAL_COST,
    TOTAL_TOKENS,
    TRACE,
    TRACE_ENV,
    TTFT,
    aliases_in,
    select_list,
)

# Merged values of one observation, and of the trace observations are filtered and shown by (model.py).
MERGED = OBS
TRACE_MERGED: dict[str, str] = {a: TRACE[a] for a in (
    "t_name", "t_user", "t_session", "t_tags", "t_env", "t_release", "t_version", "t_public", "t_bookmarked")}

# A trace's own attributes as filter columns (on its merged row): traces.COLUMNS, and the trace
# columns of observations.
TRACE_ATTRIBUTES: dict[str, Column] = {
    "name": Column("string", "t_name"),
    "userId": Column("string", "t_user"),
    "sessionId": Column("string", "t_session"),
    "environment": Column("string", TRACE_ENV),
    "version": Column("string", "t_version"),
    "release": Column("string", "t_release"),
    "tags": Column("array", "t_tags"),
    "bookmarked": Column("bool", "t_bookmarked"),
    "public": Column("bool", "t_public"),
}

COLUMNS: dict[str, Column] = {
    "id": Column("string", "id"),
    "type": Column("string", "o_type"),
    "name": Column("string", "o_name"),
    "traceId": Column("string", "trace_id"),
    "startTime": Column("datetime", "o_sort"),
    "endTime": Column("datetime", "o_end"),
    "completionStartTime": Column("datetime", "o_cst"),
    "environment": Column("string", OBS_ENV),
    "level": Column("string", OBS_LEVEL),
    "statusMessage": Column("string", "o_status"),
    "version": Column("string", "o_version"),
    "parentObservationId": Column("string", "o_parent"),
    "isRootObservation": Column("bool", "o_parent = ''"),
    "latency": Column("number", LATENCY),
    "timeToFirstToken": Column("number", TTFT),
    "tokensPerSecond": Column("number", f"o_usage['output'] / nullIf({LATENCY}, 0)"),
    "inputTokens": Column("number", "o_usage['input']"),
    "outputTokens": Column("number", "o_usage['output']"),
    "totalTokens": Column("number", TOTAL_TOKENS),
    "tokens": Column("number", TOTAL_TOKENS),
    "inputCost": Column("number", "o_cost['input']"),
    "outputCost": Column("number", "o_cost['output']"),
    "totalCost": Column("number", TOTAL_COST),
    "model": Column("string", "o_model"),
    "providedModelName": Column("string", "o_model"),
    "promptName": Column("string", "o_prompt_name"),
    "promptVersion": Column("number", "o_prompt_version"),
    "input": Column("string", "o_input"),
    "output": Column("string", "o_output"),
    "metadata": Column("object", OBS_METADATA),
    # attributes of the observation's trace (TRACE_ATTRIBUTES), under these names
    **{name: replace(TRACE_ATTRIBUTES[attr], scope="trace") for name, attr in (
        ("userId", "userId"), ("sessionId", "sessionId"), ("traceName", "name"), ("traceTags", "tags"),
        ("tags", "tags"), ("traceEnvironment", "environment"), ("release", "release"), ("traceRelease", "release"),
        ("traceVersion", "version"))},
}

_FIRST_K, _K_FACTOR, _GROWTH = 200, 4, 8  # candidate rows: max(_FIRST_K, _K_FACTOR * wanted), × _GROWTH
_MAX_CANDIDATES = 250_000


@dataclass
class ObsQuery:
    """Compiled conditions: HAVING on the merged observation, row-level WHERE on key columns."""

    having: list[str] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    trace_having: list[str] = field(default_factory=list)
    aliases: set[str] = field(default_factory=set)
    trace_aliases: set[str] = field(default_factory=set)
    row_bounds: list[str] = field(default_factory=list)  # conditions on raw sort_ts rows (candidates)
    traces: TraceRestriction | None = None  # restriction to these traces (primary-key prefix)
    by_id: bool = False  # an id `=`/`any of` condition: the bloom filter bounds the rows
    params: Params = field(default_factory=Params)

    def trace_filter(self, candidates: str | None = None) -> str:
        if not self.trace_having:
            return ""
        restrict = f" AND {self.traces.where('id')}" if self.traces is not None else ""
        if candidates:
            restrict += f" AND id IN {candidates}"
        return (
            "trace_id IN (SELECT id FROM (SELECT id%s FROM {db}.traces WHERE project_id = {project_id:String}%s"
            " GROUP BY id HAVING %s))"
        ) % (select_list(self.trace_aliases, TRACE_MERGED), restrict, " AND ".join(self.trace_having))


def compile_observation_conditions(olap: Olap, project_id: str, conds: list[Condition],
                                   columns: dict[str, Column] = COLUMNS) -> ObsQuery:
    q = ObsQuery(params=Params(project_id=project_id))
    p = q.params
    for cond in conds:
        col = resolve(cond, columns)
        sql = compile_condition(cond, col, p)
        if col.scope == "trace":
            q.trace_having.append(sql)
            q.trace_aliases |= aliases_in(col.expr, TRACE_MERGED)
        elif cond.column in ("id", "traceId"):
            q.where.append(sql)  # key columns: valid on every row
            q.by_id = q.by_id or (cond.column == "id" and cond.operator in ("=", "any of"))
        else:
            q.having.append(sql)
            q.aliases |= aliases_in(col.expr, MERGED)
            if cond.column == "startTime" and cond.operator in ("<", "<=", ">", ">="):
                q.row_bounds.append(compile_condition(cond, col, p, expr="sort_ts"))
    q.traces = restrict_traces(olap, p, conds, {"traceId": None, "userId": "user_id", "sessionId": "session_id"})
    return q


Key = tuple[str, str, datetime]  # (trace_id, id, sort_ts)


def _page_sql(q: ObsQuery, extra_where: list[str], extra_having: list[str], limit: int, offset: int = 0,
              count: bool = False, candidates: str | None = None) -> str:
    where = ["project_id = {project_id:String}", *q.where, *extra_where]
    if q.traces is not None:
        where.append(q.traces.where("trace_id"))
    tf = q.trace_filter(candidates)
    if tf:
        where.append(tf)
    having = [*q.having, *extra_having]
    inner = (
        "SELECT trace_id, id, min(sort_ts) AS o_sort%s FROM {db}.observations WHERE %s GROUP BY trace_id, id%s"
        % (select_list(q.aliases - {"o_sort"}, MERGED), " AND ".join(where),
           " HAVING " + " AND ".join(having) if having else "")
    )
    if count:
        return f"SELECT count() FROM ({inner})"
    return (f"SELECT trace_id, id, o_sort FROM ({inner}) ORDER BY o_sort DESC, trace_id DESC, id DESC"
            f" LIMIT {limit} OFFSET {offset}")


def _cursor_having(q: ObsQuery, after: Key | None) -> list[str]:
    if after is None:
        return []
    p = q.params
    return ["(o_sort, trace_id, id) < (%s, %s, %s)" % (p.time(after[2]), p.text(after[0]), p.text(after[1]))]


def select_observation_keys(olap: Olap, q: ObsQuery, *, after: Key | None = None, offset: int = 0,
                            limit: int = 50) -> list[Key]:
    """Up to `limit` observations after skipping `offset`, newest first, after the cursor key."""
    if q.traces is not None and not q.traces.ids:
        return []
    want = offset + limit
    if q.traces is None and not q.by_id:
        keys = _latest_keys(olap, q, after, want)
        if keys is not None:
            return keys[offset:]
    rows = olap.query(_page_sql(q, [], _cursor_having(q, after), limit, offset), q.params.values)
    return [(r[0], r[1], r[2]) for r in rows]


def _latest_keys(olap: Olap, q: ObsQuery, after: Key | None, want: int) -> list[Key] | None:
    p = q.params
    bounds = list(q.row_bounds)
    if after is not None:
        bounds.append(f"sort_ts <= {p.time(after[2])}")
    where = " AND ".join(["project_id = {project_id:String}", *bounds])
    k = max(_K_FACTOR * want, _FIRST_K)
    # (the windows of a small project cost a round trip more than reading its every start time)
    indexed = not is_small(olap, "observations", p.values["project_id"])
    while k <= _MAX_CANDIDATES:
        bound = kth_newest(olap, "observations", "sort_ts", where, k, p.values, indexed=indexed)
        having = _cursor_having(q, after)
        cand = where
        if bound is not None:
            b = p.time(bound)
            having.append(f"o_sort > {b}")
            cand += f" AND sort_ts > {b}"
        ctids = f"(SELECT trace_id FROM {{db}}.observations WHERE {cand})"
        found = olap.query(
            _page_sql(q, [f"trace_id IN {ctids}",
                          f"(trace_id, id) IN (SELECT trace_id, id FROM {{db}}.observations WHERE {cand})"],
                      having, want, candidates=ctids),
            p.values,
        )
        if len(found) >= want or bound is None:
            return [(r[0], r[1], r[2]) for r in found]
        k *= _GROWTH
    return None


def count_observations(olap: Olap, q: ObsQuery) -> int:
    if q.traces is not None and not q.traces.ids:
        return 0
    if not (q.having or q.where or q.trace_having or q.traces is not None):
        return int(olap.query(
            "SELECT uniqExact(cityHash64(trace_id, id)) FROM {db}.observations WHERE project_id = {project_id:String}",
            q.params.values,
        )[0][0])
    return int(olap.query(_page_sql(q, [], [], 0, count=True), q.params.values)[0][0])


def fetch_merged(olap: Olap, project_id: str, keys: list[tuple[str, str]], aliases: set[str],
                 merged: Mapping[str, str] = MERGED) -> dict[tuple[str, str], dict[str, Any]]:
    """Merged observation rows (aliases of `merged`: MERGED, or `model.obs_model` for the rollups)
    for exact (trace_id, id) keys."""
    if not keys:
        return {}
    p = Params(p=project_id)
    rows = olap.query_dicts(
        "SELECT trace_id, id%s FROM {db}.observations WHERE project_id = {p:String}"
        " AND trace_id IN %s AND id IN %s GROUP BY trace_id, id"
        % (select_list(aliases, merged), p.ids(sorted({k[0] for k in keys})), p.ids(sorted({k[1] for k in keys}))),
        p.values, keys={k[0] for k in keys},
    )
    wanted = set(keys)
    return {(r["trace_id"], r["id"]): r for r in rows if (r["trace_id"], r["id"]) in wanted}


def fetch_trace_info(olap: Olap, project_id: str, trace_ids: set[str], aliases: set[str]) -> dict[str, dict[str, Any]]:
    if not trace_ids or not aliases:
        return {}
    p = Params(p=project_id)
    rows = olap.query_dicts(
        "SELECT id%s FROM {db}.traces WHERE project_id = {p:String} AND id IN %s GROUP BY id"
        % (select_list(aliases, TRACE_MERGED), p.ids(sorted(trace_ids))),
        p.values, keys=trace_ids,
    )
    return {r["id"]: r for r in rows}


def match_observation_keys(
    olap: Olap, project_id: str, conds: list[Condition], *, ids: list[str] | None = None,
    trace_ids: list[str] | None = None, after: tuple[str, str] | None = None, limit: int | None = None,
    latest_first: bool = False, exclude_environment: str | None = None,
) -> list[tuple[str, str]]:
    """(trace_id, id) of the observations matching `conds` (the columns of COLUMNS), by (trace_id, id)
    or newest first, after `after`; restricted to `ids` / `trace_ids` when given; without the
    observations of `exclude_environment`. For readers that walk the matches (the evaluators)."""
    if (ids is not None and not ids) or (trace_ids is not None and not trace_ids):
        return []
    p = Params(project_id=project_id)
    in_tids = None if trace_ids is None else p.ids(sorted(set(trace_ids)))
    trace_restrict = f" AND id IN {in_tids}" if in_tids else ""
    where = ["project_id = {project_id:String}", *([f"trace_id IN {in_tids}"] if in_tids else []),
             *([f"id IN {p.ids(sorted(set(ids)))}"] if ids is not None else [])]
    if after is not None:
        where.append(f"(trace_id, id) > ({p.text(after[0])}, {p.text(after[1])})")
    having: list[str] = []
    trace_having: list[str] = []
    for cond in conds:
        col = resolve(cond, COLUMNS)
        (trace_having if col.scope == "trace" else having).append(compile_condition(cond, col, p))
    if exclude_environment is not None:
        having.append(f"o_env != {p.text(exclude_environment)}")
    if trace_having:
        where.append(
            "trace_id IN (SELECT id FROM (SELECT id%s FROM {db}.traces WHERE project_id = {project_id:String}%s"
            " GROUP BY id HAVING %s))"
            % (select_list(aliases_in(trace_having, TRACE_MERGED), TRACE_MERGED), trace_restrict,
               " AND ".join(trace_having))
        )
    order = "o_sort DESC, id DESC" if latest_first else "trace_id, id"
    sql = ("SELECT trace_id, id%s FROM {db}.observations WHERE %s GROUP BY trace_id, id%s ORDER BY %s"
           % (select_list(aliases_in(having, MERGED) | {"o_env", "o_sort"}, MERGED), " AND ".join(where),
              f" HAVING {' AND '.join(having)}" if having else "", order)
           + (f" LIMIT {int(limit)}" if limit else ""))
    return [(r[0], r[1]) for r in olap.query(sql, p.values)]


def latest_observations(
    olap: Olap, project_id: str, trace_id: str, aliases: set[str], *, observation_id: str | None = None,
    type: str | None = None, name: str | None = None, limit: int = 1,
) -> list[dict[str, Any]]:
    """Merged observations (the `aliases` of MERGED) of one trace, latest start first, optionally only
    the one with this id, or those with this type and name."""
    p = Params(project_id=project_id)
    having = []
    for value, expr in ((observation_id, "id"), (type, "o_type"), (name, "o_name")):
        if value is not None:
            having.append(f"{expr} = {p.text(value)}")
    return olap.query_dicts(
        "SELECT trace_id, id%s FROM {db}.observations WHERE project_id = {project_id:String} AND trace_id = %s"
        " GROUP BY trace_id, id%s ORDER BY o_start DESC, id DESC LIMIT %d"
        % (select_list(set(aliases) | {"o_start"}, MERGED), p.text(trace_id),
           f" HAVING {' AND '.join(having)}" if having else "", int(limit)),
        p.values,
    )


def observation_trace(olap: Olap, project_id: str, observation_id: str) -> str | None:
    """The trace of an observation (None when the project has no such observation)."""
    rows = olap.query(
        "SELECT trace_id FROM {db}.observations WHERE project_id = {p:String} AND id = {o:String} LIMIT 1",
        {"p": project_id, "o": observation_id},
    )
    return rows[0][0] if rows else None


# ---- per-trace aggregates (model.AGGREGATES) as filterable trace columns -----------------------
TRACE_AGGREGATES: dict[str, tuple[str, str]] = {
    "latency": ("number", "a_latency"),
    "inputTokens": ("number", "a_input_tokens"),
    "outputTokens": ("number", "a_output_tokens"),
    "totalTokens": ("number", "a_total_tokens"),
    "tokens": ("number", "a_total_tokens"),
    "inputCost": ("number", "a_input_cost"),
    "outputCost": ("number", "a_output_cost"),
    "totalCost": ("number", "a_total_cost"),
    "level": ("string", "a_level"),
    "warningCount": ("number", "a_warnings"),
    "errorCount": ("number", "a_errors"),
    "defaultCount": ("number", "a_defaults"),
    "debugCount": ("number", "a_debugs"),
    "observationCount": ("number", "a_count"),
}
