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

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from owlscope.storage.olap.client import Olap
from owlscope.tracing.common import Params, TraceRestriction, restrict_traces
from owlscope.tracing.filters import Column, Condition, compile_condition, resolve

# Merged values of one observation, by alias (aliases never equal a column name).
MERGED: dict[str, str] = {
    "o_sort": "min(sort_ts)",
    "o_updated": "max(updated_at)",
    "o_type": "argMaxIfMerge(type)",
    "o_name": "argMaxIfMerge(name)",
    "o_parent": "argMaxIfMerge(parent_observation_id)",
    "o_start": "if(toUnixTimestamp64Milli(argMaxIfMerge(start_time)) = 0, min(sort_ts), argMaxIfMerge(start_time))",
    "o_end": "argMaxIfMerge(end_time)",
    "o_cst": "argMaxIfMerge(completion_start_time)",
    "o_level": "argMaxIfMerge(level)",
    "o_status": "argMaxIfMerge(status_message)",
    "o_version": "argMaxIfMerge(version)",
    "o_env": "argMaxIfMerge(environment)",
    "o_input": "argMaxIfMerge(input)",
    "o_output": "argMaxIfMerge(output)",
    "o_metadata": "argMaxIfMerge(metadata)",
    "o_model": "argMaxIfMerge(model)",
    "o_model_params": "argMaxIfMerge(model_parameters)",
    "o_usage": "argMaxIfMerge(usage_details)",
    "o_cost": "argMaxIfMerge(cost_details)",
    "o_prompt_id": "argMaxIfMerge(prompt_id)",
    "o_prompt_name": "argMaxIfMerge(prompt_name)",
    "o_prompt_version": "argMaxIfMerge(prompt_version)",
    "o_meta_pieces": "maxMap(metadata_pieces)",
}

# Merged trace values observations are filtered and shown by.
TRACE_MERGED: dict[str, str] = {
    "t_name": "if(argMaxIfMerge(name) != '', argMaxIfMerge(name), argMaxIfMerge(root_name))",
    "t_user": "argMaxIfMerge(user_id)",
    "t_session": "argMaxIfMerge(session_id)",
    "t_tags": "arraySort(groupUniqArrayArray(tags))",
    "t_env": "argMaxIfMerge(environment)",
    "t_release": "argMaxIfMerge(release)",
    "t_version": "argMaxIfMerge(version)",
    "t_public": "max(public)",
    "t_bookmarked": "argMaxIfMerge(bookmarked)",
}

_MS = "toUnixTimestamp64Milli"
LATENCY = f"if({_MS}(o_end) = 0, NULL, ({_MS}(o_end) - {_MS}(o_start)) / 1000)"
TTFT = f"if({_MS}(o_cst) = 0, NULL, ({_MS}(o_cst) - {_MS}(o_start)) / 1000)"
TOTAL_TOKENS = "if(mapContains(o_usage, 'total'), o_usage['total'], arraySum(mapValues(o_usage)))"
TOTAL_COST = "if(mapContains(o_cost, 'total'), o_cost['total'], arraySum(mapValues(o_cost)))"

# Rollup values (migration 0002): the scalar merged columns, the same values as the maps give, without
# merging a Map state (ClickHouse's slow generic path). Rows written before 0002 have no scalar states
# (`scalars_complete` 0): SAFE reads such an observation from its maps; FAST, for a project without
# such rows (`rollups_fast`), never touches the maps.
# (Each map is merged once: an inline alias, which identical definitions may repeat.)
_MAP_VALUE = {
    "o_cost_total": TOTAL_COST.replace("o_cost", "(argMaxIfMerge(cost_details) AS m_cost)", 1).replace("o_cost", "m_cost"),
    "o_tokens_in": "(argMaxIfMerge(usage_details) AS m_usage)['input']",
    "o_tokens_out": "(argMaxIfMerge(usage_details) AS m_usage)['output']",
    "o_tokens_total": TOTAL_TOKENS.replace("o_usage", "(argMaxIfMerge(usage_details) AS m_usage)", 1)
    .replace("o_usage", "m_usage"),
}
ROLLUP_FAST: dict[str, str] = {
    "o_cost_total": "argMaxIfMerge(total_cost)",
    "o_tokens_in": "argMaxIfMerge(input_tokens)",
    "o_tokens_out": "argMaxIfMerge(output_tokens)",
    "o_tokens_total": "argMaxIfMerge(total_tokens)",
}
ROLLUP_SAFE: dict[str, str] = {
    a: f"if(min(scalars_complete) = 1, {ROLLUP_FAST[a]}, {_MAP_VALUE[a]})" for a in ROLLUP_FAST
}
_CLEAN: set[tuple[str, str]] = set()  # (database, project) without pre-0002 observation rows


def rollups_fast(olap: Olap, project_id: str) -> bool:
    """True when no observation row of the project predates migration 0002, so the rollups can read
    the scalar columns alone. Once true it stays true (the view writes only complete rows): cached."""
    key = (olap.database, project_id)
    if key in _CLEAN:
        return True
    legacy = olap.query(
        "SELECT 1 FROM {db}.observations WHERE project_id = {p:String} AND scalars_complete = 0 LIMIT 1",
        {"p": project_id},
    )
    if not legacy:
        _CLEAN.add(key)
    return not legacy


def obs_exprs(fast: bool) -> dict[str, str]:
    """MERGED plus the rollup aliases (o_cost_total, o_tokens_in/out/total), FAST or SAFE."""
    return {**MERGED, **(ROLLUP_FAST if fast else ROLLUP_SAFE)}

COLUMNS: dict[str, Column] = {
    "id": Column("string", "id"),
    "type": Column("string", "o_type"),
    "name": Column("string", "o_name"),
    "traceId": Column("string", "trace_id"),
    "startTime": Column("datetime", "o_sort"),
    "endTime": Column("datetime", "o_end"),
    "completionStartTime": Column("datetime", "o_cst"),
    "environment": Column("string", "if(o_env = '', 'default', o_env)"),
    "level": Column("string", "if(o_level = '', 'DEFAULT', o_level)"),
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
    "metadata": Column("object", "o_metadata"),
    "userId": Column("string", "t_user", scope="trace"),
    "sessionId": Column("string", "t_session", scope="trace"),
    "traceName": Column("string", "t_name", scope="trace"),
    "traceTags": Column("array", "t_tags", scope="trace"),
    "tags": Column("array", "t_tags", scope="trace"),
    "traceEnvironment": Column("string", "if(t_env = '', 'default', t_env)", scope="trace"),
    "release": Column("string", "t_release", scope="trace"),
    "traceRelease": Column("string", "t_release", scope="trace"),
    "traceVersion": Column("string", "t_version", scope="trace"),
}

_ALIAS = re.compile(r"\b[ot]_[a-z_]+\b")
_FIRST_K, _K_FACTOR, _GROWTH = 200, 4, 8  # candidate rows: max(_FIRST_K, _K_FACTOR * wanted), × _GROWTH
_MAX_CANDIDATES = 250_000


def aliases_in(expr: str, merged: dict[str, str]) -> set[str]:
    return {a for a in _ALIAS.findall(expr) if a in merged}


def select_list(aliases: set[str], merged: dict[str, str]) -> str:
    return "".join(f", {merged[a]} AS {a}" for a in sorted(aliases))


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
    while k <= _MAX_CANDIDATES:
        # The K-th newest row's start (one column read); the candidates are the rows above it, kept in
        # SQL (subqueries) rather than shipped back as lists of ids.
        kth = olap.query(
            f"SELECT sort_ts FROM {{db}}.observations WHERE {where} ORDER BY sort_ts DESC LIMIT 1 OFFSET {k - 1}",
            p.values,
        )
        bound = kth[0][0] if kth else None
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


def fetch_merged(olap: Olap, project_id: str, keys: list[tuple[str, str]], aliases: set[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Merged observation rows (aliases of MERGED) for exact (trace_id, id) keys."""
    if not keys:
        return {}
    p = Params(p=project_id)
    rows = olap.query_dicts(
        "SELECT trace_id, id%s FROM {db}.observations WHERE project_id = {p:String}"
        " AND trace_id IN %s AND id IN %s GROUP BY trace_id, id"
        % (select_list(aliases, MERGED), p.ids(sorted({k[0] for k in keys})), p.ids(sorted({k[1] for k in keys}))),
        p.values,
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
        p.values,
    )
    return {r["id"]: r for r in rows}


# ---- per-trace aggregates --------------------------------------------------------------------
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


_LEVEL = "if(o_level = '', 'DEFAULT', o_level)"
_LAST = f"if({_MS}(o_end) = 0, o_start, greatest(o_end, o_start))"
AGGREGATES: dict[str, str] = {
    "a_count": "count()",
    "a_ids": "groupArray(id)",
    "a_latency": f"round((max({_MS}({_LAST})) - min({_MS}(o_start))) / 1000, 3)",
    "a_input_tokens": "sum(o_tokens_in)",
    "a_output_tokens": "sum(o_tokens_out)",
    "a_total_tokens": "sum(o_tokens_total)",
    "a_input_cost": "sum(o_cost['input'])",
    "a_output_cost": "sum(o_cost['output'])",
    "a_total_cost": "sum(o_cost_total)",
    "a_errors": f"countIf({_LEVEL} = 'ERROR')",
    "a_warnings": f"countIf({_LEVEL} = 'WARNING')",
    "a_defaults": f"countIf({_LEVEL} = 'DEFAULT')",
    "a_debugs": f"countIf({_LEVEL} = 'DEBUG')",
    "a_level": f"multiIf(countIf({_LEVEL} = 'ERROR') > 0, 'ERROR', countIf({_LEVEL} = 'WARNING') > 0, 'WARNING',"
               f" countIf({_LEVEL} = 'DEFAULT') > 0, 'DEFAULT', 'DEBUG')",
}


def trace_aggregates_sql(restrict: str, only: set[str] | None = None, *, fast: bool = False) -> str:
    """Per trace_id: observation count, ids, latency (s), tokens, costs and level counts (the
    AGGREGATES named in `only`, default all). `restrict` is a row-level condition such as
    `trace_id IN {ids:Array(String)}`. Only the observation fields those aggregates use are merged
    (cost and usage maps are the expensive ones; total cost and tokens come from the scalar columns,
    and with `fast` (see `rollups_fast`) from those alone)."""
    names = sorted(only) if only is not None else list(AGGREGATES)
    exprs = [AGGREGATES[n] for n in names]
    merged = obs_exprs(fast)
    inner = (
        "SELECT trace_id, id%s FROM {db}.observations WHERE project_id = {project_id:String} AND %s"
        " GROUP BY trace_id, id"
    ) % (select_list(aliases_in(" ".join(exprs), merged), merged), restrict)
    cols = ", ".join(f"{e} AS {n}" for n, e in zip(names, exprs, strict=True))
    return f"SELECT trace_id, {cols} FROM ({inner}) GROUP BY trace_id"
