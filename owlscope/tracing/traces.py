"""Traces: list (page-based), get one with its observations and scores, delete.

How a list stays fast at 250k+ traces in a project (traces is an AggregatingMergeTree ordered by
(project_id, id) whose rows are partial states until merged):

1. Choose the page of ids from cheap columns only, never by merging every trace:
   - latest first, filtered at most by time (and the internal environments hidden, checked on the
     merged candidates): find the K-th newest *row*'s `timestamp` (one column),
     then merge just the traces with a row above it to get their true start; every trace that starts
     after that bound is among them, so the page is exact (K grows if not enough qualify). The
     candidates stay in SQL (a subquery), they are not shipped back and forth. See `_latest_ids`.
   - filtered by user, session or id: find the few ids whose partial states carry the value
     (`finalizeAggregation`, one column scan; `common.restrict_traces`), then merge only those.
   - highest cost, tokens or latency first: rank traces by their exact value stored with the rollups'
     trace facts where it is current, else by a per-trace upper bound kept at insert (`trace_bounds`,
     OLAP migration 0008), and merge only the best candidates. See `_top_by_bound`.
   - anything else: one GROUP BY over the merged filter columns, with the total as a window count.
2. Merge the full rows of just those ids (a primary-key read), and aggregate observation metrics
   (cost, latency, ids) for just those trace ids (`observations` is ordered by trace id). The
   total, like these reads, runs side by side with the page (`common.parallel`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from owlscope.errors import InvalidRequest
from owlscope.storage.olap.client import Olap
from owlscope.tracing import obs_select
from owlscope.tracing import observations as obs_q
from owlscope.tracing import scores as scores_q
from owlscope.tracing.common import (
    Params,
    field_groups,
    is_small,
    iso,
    kth_newest,
    merge_metadata,
    nz,
    parallel,
    parse_json,
    restrict_traces,
)
from owlscope.tracing.filters import (
    NOT_INTERNAL,
    Column,
    Condition,
    compile_condition,
    eq,
    parse_filter,
    resolve,
    time_range,
)
from owlscope.tracing.model import (
    AGGREGATES,
    INTERNAL_ENV_PREFIX,
    TRACE,
    TRACE_IO,
    TRACE_METADATA,
    aliases_in,
    rollups_fast,
    select_list,
    trace_aggregates_sql,
)
from owlscope.tracing.rollups import count_traces, fact_values, mark_traces
from owlscope.wire import PageRequest

TRACE_FIELD_GROUPS = ("core", "io", "scores", "observations", "metrics")

# Merged values, by alias (model.py).
MERGED = TRACE
IO_MERGED = TRACE_IO

# Filterable columns (the `filter` parameter of GET /traces). scope: self (merged trace row),
# obs (aggregate over the trace's observations, see obs_select.TRACE_AGGREGATES), score.
COLUMNS: dict[str, Column] = {
    "id": Column("string", "id"),
    "timestamp": Column("datetime", "t_ts"),
    **obs_select.TRACE_ATTRIBUTES,
    "metadata": Column("object", TRACE_METADATA),
    **{name: Column(kind, expr, scope="obs") for name, (kind, expr) in obs_select.TRACE_AGGREGATES.items()},
    "scores_avg": Column("number", "", scope="score"),
    "scores": Column("number", "", scope="score"),
    "score_categories": Column("string", "", scope="score"),
    "score_booleans": Column("bool", "", scope="score"),
}

ORDER_FIELDS = {
    "id": "id", "timestamp": "t_ts", "name": "t_name", "userId": "t_user", "release": "t_release",
    "version": "t_version", "public": "t_public", "bookmarked": "t_bookmarked", "sessionId": "t_session",
}
IDENTITY = {"id": None, "userId": "user_id", "sessionId": "session_id"}
_FAST_MAX_ROWS = 1_000  # the latest-rows path serves pages up to this depth
_FIRST_K, _K_FACTOR, _GROWTH = 200, 2, 4  # candidate rows: max(_FIRST_K, _K_FACTOR * wanted), × _GROWTH
_MAX_CANDIDATES = 200_000


def trace_conditions(
    *, user_id: str | None = None, name: str | None = None, session_id: str | None = None,
    from_timestamp: Any = None, to_timestamp: Any = None, tags: list[str] | None = None,
    version: str | None = None, release: str | None = None, environment: list[str] | None = None,
    filter: str | list[Condition] | None = None,
) -> list[Condition]:
    """The query parameters of GET /traces as conditions; `filter`, when given, replaces them."""
    if filter is not None:
        parsed = parse_filter(filter) if isinstance(filter, str) else list(filter)
        if parsed is not None:
            return parsed
    conds: list[Condition] = []
    for column, value in (("userId", user_id), ("name", name), ("sessionId", session_id),
                          ("version", version), ("release", release)):
        if value is not None:
            conds.append(eq(column, value))
    conds += time_range("timestamp", from_timestamp, to_timestamp, ("fromTimestamp", "toTimestamp"))
    if tags:
        conds.append(Condition("tags", "all of", list(tags)))
    if environment:
        conds.append(Condition("environment", "any of", list(environment)))
    return conds


def parse_order(order_by: str | None) -> tuple[str, str]:
    """`timestamp.desc` -> ("t_ts", "DESC"); InvalidRequest on unknown fields or directions."""
    if not order_by:
        return "t_ts", "DESC"
    field, _, direction = order_by.partition(".")
    direction = (direction or "desc").lower()
    if field not in ORDER_FIELDS or direction not in ("asc", "desc"):
        raise InvalidRequest(
            f"Invalid orderBy {order_by!r}: use [field].[asc|desc] with field one of {', '.join(ORDER_FIELDS)}"
        )
    return ORDER_FIELDS[field], direction.upper()


# ---- condition SQL ---------------------------------------------------------------------------
class _Compiled:
    """Conditions split by where they apply: HAVING on the merged trace row, or `id IN (...)`."""

    def __init__(self, conds: list[Condition], p: Params, fast: Callable[[], bool] = lambda: False,
                 obs_restrict: str = "1"):
        self.having: list[str] = []
        self.where: list[str] = []
        self.aliases: set[str] = set()
        # only time conditions and the internal-environment filter (both checked on merged rows, and
        # the latter true of nearly every trace: the newest-first shortcut verifies and widens)
        self.time_only = True
        self.hides_internal_only = bool(conds)  # no condition but the internal-environment filter
        obs_conds: list[str] = []
        for cond in conds:
            col = resolve(cond, COLUMNS)
            if cond.type != NOT_INTERNAL or cond.column != "environment":
                self.hides_internal_only = False
            if col.scope == "self":
                self.having.append(compile_condition(cond, col, p))
                self.aliases.update(aliases_in(col.expr, MERGED))
                if cond.column != "timestamp" and cond.type != NOT_INTERNAL:
                    self.time_only = False
            elif col.scope == "obs":
                obs_conds.append(compile_condition(cond, col, p))
                self.time_only = False
            else:
                self.where.append(scores_q.trace_score_condition(cond, p))
                self.time_only = False
        if obs_conds:
            used = {a for a in AGGREGATES if any(a in c for c in obs_conds)}
            self.where.append(
                "id IN (SELECT trace_id FROM (%s) WHERE %s)"
                % (trace_aggregates_sql(obs_restrict, used, fast=fast()), " AND ".join(obs_conds))
            )

    def select(self, *extra: str) -> str:
        return select_list({a for a in self.aliases | set(extra) if a in MERGED}, MERGED).removeprefix(", ")


def _latest_ids(olap: Olap, c: _Compiled, conds: list[Condition], p: Params, want: int) -> list[tuple] | None:
    """The first `want` (id, start) by start time (descending) when only time conditions apply; None
    when the candidate set grew too large (the caller falls back to a GROUP BY)."""
    row_filters = []
    for cond in conds:  # a trace's earliest row decides its start: upper bounds may drop later rows
        if cond.operator in ("<", "<="):
            row_filters.append(compile_condition(cond, COLUMNS["timestamp"], p, expr="timestamp"))
    where = " AND ".join(["project_id = {project_id:String}", *row_filters])
    k = max(_K_FACTOR * want, _FIRST_K)
    while k <= _MAX_CANDIDATES:
        bound = kth_newest(olap, "traces", "timestamp", where, k, p.values, indexed=True)
        q = p.copy()
        having = list(c.having)
        cand = where
        if bound is not None:
            b = q.time(bound)
            having.append(f"t_ts > {b}")
            cand += f" AND timestamp > {b}"
        verified = olap.query(
            f"SELECT id, min(timestamp) AS t_ts{select_list(c.aliases - {'t_ts'}, MERGED)} FROM {{db}}.traces"
            f" WHERE project_id = {{project_id:String}} AND id IN (SELECT id FROM {{db}}.traces WHERE {cand}) GROUP BY id"
            + (" HAVING " + " AND ".join(having) if having else "")
            + f" ORDER BY t_ts DESC, id DESC LIMIT {want}",
            q.values,
        )
        if len(verified) >= want or bound is None:
            return [(r[0], r[1]) for r in verified]
        k *= _GROWTH
    return None


def _count(olap: Olap, c: _Compiled, p: Params, restrict: str) -> int:
    project_id = p.values["project_id"]
    if not c.where and not restrict and (not c.having or c.hides_internal_only) and not is_small(
            olap, "traces", project_id):
        # every trace (but the internal ones): counted by the rollups, raw only for their dirty hours
        return count_traces(olap, project_id, hide_env_prefix=INTERNAL_ENV_PREFIX if c.hides_internal_only else None)
    if not c.having and not c.where and not restrict:
        # distinct 64-bit hashes of the ids: a fixed-size hash set instead of one of strings (as
        # obs_select counts observations)
        return int(olap.query(
            "SELECT uniqExact(cityHash64(id)) FROM {db}.traces WHERE project_id = {project_id:String}",
            p.values)[0][0])
    where = " AND ".join(["project_id = {project_id:String}", *c.where] + ([restrict] if restrict else []))
    sel = c.select()
    return int(olap.query(
        f"SELECT count() FROM (SELECT id{', ' + sel if sel else ''} FROM {{db}}.traces WHERE {where} GROUP BY id"
        + (" HAVING " + " AND ".join(c.having) if c.having else "") + ")",
        p.values,
    )[0][0])


@dataclass
class TracePage:
    ids: list[str]
    total: int | None
    rows: dict[str, dict[str, Any]] | None = None  # merged rows, when choosing the page merged them anyway
    # the oldest start among the page's traces, when known: every row of theirs is at or after it
    # (`fetch_traces(..., since=)` then skips the parts of older data)
    since: datetime | None = None


def select_trace_ids(
    olap: Olap, project_id: str, conds: list[Condition], *, order: tuple[str, str] = ("t_ts", "DESC"),
    offset: int = 0, limit: int = 50, with_total: bool = True, io: bool = True,
) -> TracePage:
    """One page of trace ids matching `conds`, in order, and the total number of matches."""
    p = Params(project_id=project_id)
    known = restrict_traces(olap, p, conds, IDENTITY)
    # (the id conditions the restriction applies exactly are not checked again on the merged rows)
    c = _Compiled([x for x in conds if known is None or x not in known.exact], p,
                  lambda: rollups_fast(olap, project_id))
    restrict = ""
    if known is not None:
        if not known.ids:
            return TracePage([], 0)
        restrict = known.where("id")
    elif (c.time_only and order == ("t_ts", "DESC") and offset + limit <= _FAST_MAX_ROWS
          and not is_small(olap, "traces", project_id)):
        # (A small project skips this: the GROUP BY below gives the page and its total in one query,
        # where the bound takes two rounds and a count.)
        if with_total:
            page, total = parallel(lambda: _latest_ids(olap, c, conds, p, offset + limit),
                                   lambda: _count(olap, c, p.copy(), ""))
        else:
            page, total = _latest_ids(olap, c, conds, p, offset + limit), None
        if page is not None:
            page = page[offset:]
            return TracePage([r[0] for r in page], total, since=min((r[1] for r in page), default=None))

    field, direction = order
    where = " AND ".join(["project_id = {project_id:String}", *c.where] + ([restrict] if restrict else []))
    if field in BOUNDED and direction == "DESC" and offset + limit <= _FAST_MAX_ROWS \
            and rollups_fast(olap, project_id):
        if with_total:
            page, total = parallel(lambda: _top_by_bound(olap, c, p, field, where, offset + limit),
                                   lambda: _count(olap, c, p.copy(), restrict))
        else:
            page, total = _top_by_bound(olap, c, p, field, where, offset + limit), None
        if page is not None:
            return TracePage(page[offset:], total)
    if field in AGGREGATES:
        return _by_aggregate(olap, c, p, order, where, offset=offset, limit=limit,
                             with_total=with_total, fast=rollups_fast(olap, project_id))
    # No more candidate traces than a page (an id, user or session filter): merge whole rows in the
    # same pass. (More would read more granules than fetching the page's rows afterwards.)
    full = known is not None and len(known.ids) <= limit
    sel = c.select("t_ts", field, *(MERGED if full else ()))
    if full and io:
        sel += "".join(f", {e} AS {a}" for a, e in IO_MERGED.items())
    rows = olap.query_dicts(
        f"SELECT id, {sel}, count() OVER () AS total_ FROM {{db}}.traces WHERE {where} GROUP BY id"
        + (" HAVING " + " AND ".join(c.having) if c.having else "")
        + f" ORDER BY {field} {direction}, id {direction} LIMIT {limit} OFFSET {offset}",
        p.values,
    )
    if rows:
        return TracePage([r["id"] for r in rows], int(rows[0]["total_"]), {r["id"]: r for r in rows} if full else None)
    return TracePage([], _count(olap, c, p, restrict) if with_total and offset else 0)


# Orders the exact top-K below serves: aggregate alias -> an upper bound of it per trace over its
# merged `trace_bounds` row (OLAP migration 0008, which says why each is a bound).
BOUNDED = {
    "a_total_cost": "cost",
    "a_total_tokens": "tokens",
    "a_latency": "round((last_ms - first_ms) / 1000, 3)",
}
_BOUND_FIRST, _BOUND_FACTOR, _BOUND_GROWTH = 64, 1, 8  # candidates: max(first, factor × K), × growth
_IN_ORDER = " SETTINGS optimize_aggregation_in_order = 1"


def _top_by_bound(olap: Olap, c: _Compiled, p: Params, field: str, where: str, want: int) -> list[str] | None:
    """The first `want` ids of the matching traces by `field` (see BOUNDED) descending, exactly,
    without merging every observation; None when the shortcut cannot settle it (the caller merges all).

    Threshold top-K: rank traces by the upper bound of BOUNDED (one merged row per trace), merge just the best candidates for their exact values (and check the filters
    on their merged trace rows), and stop once the K-th exact value is above the bound of the best
    trace not yet merged, which no later trace can then beat; else widen.
    A trace without observations counts 0: when fewer than `want` matching traces have a positive
    total the shortcut gives up (a page that needs those zeros)."""
    n = max(_BOUND_FIRST, _BOUND_FACTOR * want)
    having = " HAVING " + " AND ".join(c.having) if c.having else ""
    sel = c.select()
    # Exact values from the stored trace facts where they are current (rollups.fact_values), the
    # bounds of the other traces from `trace_bounds`; before the first rollup refresh, every trace's
    # bound (FINAL: one row per trace; it merges every part, ~200 ms at 2.5M traces).
    known = fact_values(olap, p.values["project_id"], field)
    if known is None:
        ranked = (f"(SELECT trace_id, {BOUNDED[field]} AS ub FROM {{db}}.trace_bounds FINAL"
                  " WHERE project_id = {project_id:String})")
    else:
        facts, uncertain = known
        ranked = (f"({facts} UNION ALL SELECT trace_id, {BOUNDED[field]} AS ub FROM {{db}}.trace_bounds FINAL"
                  f" WHERE project_id = {{project_id:String}} AND trace_id IN ({uncertain}))")
    while n <= _MAX_CANDIDATES:
        bounds = olap.query(f"SELECT trace_id, ub FROM {ranked} WHERE ub > 0 ORDER BY ub DESC LIMIT {n + 1}", p.values)
        complete = len(bounds) <= n  # every trace with a positive bound is a candidate
        cands = [r[0] for r in bounds[:n]]
        if not cands:
            return None
        q = p.copy()
        in_cands = q.add(cands, "Array(String)")
        matched = (f"SELECT id{', ' + sel if sel else ''} FROM {{db}}.traces WHERE {where} AND id IN {in_cands}"
                   f" GROUP BY id{having}")
        exact = olap.query(
            f"SELECT t.id, a.{field} AS v FROM ({matched}) AS t INNER JOIN"
            f" ({trace_aggregates_sql(f'trace_id IN {in_cands}', {field}, fast=True)}) AS a ON a.trace_id = t.id"
            f" WHERE v > 0 ORDER BY v DESC, t.id DESC LIMIT {want}",
            q.values,
        )
        if len(exact) >= want:
            kth = float(exact[want - 1][1])
            if complete:
                return [r[0] for r in exact]
            bound = float(bounds[n][1])
            # strictly above (a trace at the bound could tie and win on id), with room for the
            # rounding of a sum taken in another order
            if kth > bound + abs(bound) * 1e-9:
                return [r[0] for r in exact]
            # Not settled: take every trace whose bound reaches the K-th value (ties included; a
            # trace below it cannot reach the page), when that is fewer than growing would take.
            q = p.copy()
            floor = q.add(kth - abs(kth) * 1e-9, "Float64")
            reach = int(olap.query(f"SELECT count() FROM {ranked} WHERE ub >= {floor}", q.values)[0][0])
            if n < reach < n * _BOUND_GROWTH:
                n = reach
                continue
        elif complete:
            return None  # fewer positive totals than wanted: the page needs traces at 0
        n *= _BOUND_GROWTH
    return None


def _by_aggregate(olap: Olap, c: _Compiled, p: Params, order: tuple[str, str], where: str, *, offset: int,
                  limit: int, with_total: bool, fast: bool) -> TracePage:
    """A page of the matching traces ordered by an aggregate over their observations (`a_latency`,
    `a_total_cost`, `a_total_tokens`, ...): the filtered ids joined to the aggregate of just their
    observations (all the project's when unfiltered). A trace without observations counts 0."""
    field, direction = order
    having = " HAVING " + " AND ".join(c.having) if c.having else ""
    matched = f"SELECT id, {c.select('t_ts')} FROM {{db}}.traces WHERE {where} GROUP BY id{having}"
    # Without row conditions (filters on merged values only, such as the environment) the matched
    # traces are nearly all of them: the join filters, and no set of every id is built.
    restrict = "1" if where == "project_id = {project_id:String}" else f"trace_id IN (SELECT id FROM ({matched}))"
    rows = olap.query(
        f"SELECT t.id, a.{field} AS sort_v, count() OVER () AS total_ FROM ({matched}) AS t"
        f" LEFT JOIN ({trace_aggregates_sql(restrict, {field}, fast=fast)}) AS a ON a.trace_id = t.id"
        f" ORDER BY sort_v {direction}, t.id {direction} LIMIT {limit} OFFSET {offset}{_IN_ORDER}",
        p.values,
    )
    if rows:
        return TracePage([r[0] for r in rows], int(rows[0][2]))
    return TracePage([], _count(olap, c, p, "") if with_total and offset else 0)


def match_trace_ids(
    olap: Olap, project_id: str, conds: list[Condition], *, ids: list[str] | None = None,
    after_id: str | None = None, limit: int | None = None, latest_first: bool = False,
    exclude_environment: str | None = None,
) -> list[str]:
    """Ids of the traces matching `conds` (the columns of COLUMNS, compiled as for the lists), by id
    or newest first, after `after_id`; restricted to `ids` when given; without the traces of
    `exclude_environment`. For readers that walk the matches (the evaluators) rather than page them."""
    if ids is not None and not ids:
        return []
    p = Params(project_id=project_id)
    in_ids = None if ids is None else p.ids(sorted(set(ids)))
    where = ["project_id = {project_id:String}", *([f"id IN {in_ids}"] if in_ids else [])]
    c = _Compiled(conds, p, lambda: rollups_fast(olap, project_id), f"trace_id IN {in_ids}" if in_ids else "1")
    having = list(c.having)
    if exclude_environment is not None:
        having.append(f"t_env != {p.text(exclude_environment)}")
    where += c.where
    if after_id is not None:
        where.append(f"id > {p.text(after_id)}")
    order = "t_ts DESC, id DESC" if latest_first else "id"
    sql = (f"SELECT id, {c.select('t_env', 't_ts')} FROM {{db}}.traces WHERE {' AND '.join(where)} GROUP BY id"
           + (f" HAVING {' AND '.join(having)}" if having else "") + f" ORDER BY {order}"
           + (f" LIMIT {int(limit)}" if limit else ""))
    return [r[0] for r in olap.query(sql, p.values)]


# ---- rows ------------------------------------------------------------------------------------
def fetch_traces(olap: Olap, project_id: str, ids: list[str], *, io: bool = True,
                 aliases: set[str] | None = None, since: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Merged trace rows (raw: aliases of MERGED, and of IO_MERGED with `io`; only `aliases` when
    given) for the given ids, by id. `since`: no trace among them starts before it (`TracePage.since`),
    so none has a row before it: only rows from then on are read (the `idx_ts` index skips older
    parts; the `idx_id` bloom filter the parts without the ids)."""
    if not ids:
        return {}
    merged = {**MERGED, **(IO_MERGED if io else {})}
    p = Params(p=project_id)
    after = f" AND timestamp >= {p.time(since)}" if since is not None else ""
    rows = olap.query_dicts(
        f"SELECT id{select_list(merged if aliases is None else aliases, merged)} FROM {{db}}.traces"
        f" WHERE project_id = {{p:String}} AND id IN {p.ids(ids)}{after} GROUP BY id",
        p.values, keys=ids,
    )
    return {r["id"]: r for r in rows}


def trace_shape(project_id: str, r: dict[str, Any], *, io: bool = True) -> dict[str, Any]:
    """A merged row as the OpenAPI `Trace` (camelCase) plus htmlPath."""
    out: dict[str, Any] = {
        "id": r["id"],
        "timestamp": iso(r["t_ts"]),
        "name": nz(r["t_name"]),
    }
    if io:
        out["input"] = parse_json(r.get("t_input"))
        out["output"] = parse_json(r.get("t_output"))
    out.update({
        "sessionId": nz(r["t_session"]),
        "release": nz(r["t_release"]),
        "version": nz(r["t_version"]),
        "userId": nz(r["t_user"]),
        "externalId": None,
    })
    if io:
        out["metadata"] = merge_metadata(r["t_meta_pieces"], r["t_metadata"])
    out.update({
        "tags": list(r["t_tags"]),
        "public": bool(r["t_public"]),
        "environment": r["t_env"] or "default",
        "bookmarked": bool(r["t_bookmarked"]),
        "htmlPath": f"/project/{project_id}/traces/{r['id']}",
        "projectId": project_id,
        "updatedAt": iso(r["t_updated"]),
    })
    return out


# ---- public functions ------------------------------------------------------------------------
def list_traces(
    olap: Olap, project_id: str, *, page: int | None = 1, limit: int | None = 50, order_by: str | None = None,
    fields: str | None = None, user_id: str | None = None, name: str | None = None,
    session_id: str | None = None, from_timestamp: Any = None, to_timestamp: Any = None,
    tags: list[str] | None = None, version: str | None = None, release: str | None = None,
    environment: list[str] | None = None, filter: str | list[Condition] | None = None,
) -> dict[str, Any]:
    """GET /api/public/traces: `{"data": [TraceWithDetails], "meta": {page, limit, totalItems, totalPages}}`.

    `observations` and `scores` are lists of ids; `latency` is seconds from the first observation's
    start to the last one's end; `totalCost` sums the observations' costs. With `fields`, groups not
    asked for give empty lists (observations, scores), -1 (metrics) or no input/output/metadata (io).
    """
    req = PageRequest.of(page, limit)
    page, limit = req.page, req.limit
    groups = field_groups(fields, TRACE_FIELD_GROUPS, TRACE_FIELD_GROUPS)
    conds = trace_conditions(
        user_id=user_id, name=name, session_id=session_id, from_timestamp=from_timestamp,
        to_timestamp=to_timestamp, tags=tags, version=version, release=release, environment=environment,
        filter=filter,
    )
    found = select_trace_ids(olap, project_id, conds, order=parse_order(order_by), offset=(page - 1) * limit,
                             limit=limit, io="io" in groups)
    return {"data": traces_with_details(olap, project_id, found.ids, groups, prefetched=found.rows,
                                        since=found.since),
            "meta": req.meta(found.total or 0)}


def traces_with_details(olap: Olap, project_id: str, ids: list[str], groups: set[str],
                        prefetched: dict[str, dict[str, Any]] | None = None,
                        since: datetime | None = None) -> list[dict[str, Any]]:
    """TraceWithDetails for ids, in the order given (ids no longer present are skipped); `prefetched`:
    merged rows already at hand; `since`: see `fetch_traces`."""
    if not ids:
        return []
    io = "io" in groups
    need_obs = "observations" in groups or "metrics" in groups
    rows, stats, score_ids = parallel(
        lambda: prefetched if prefetched is not None else fetch_traces(olap, project_id, ids, io=io, since=since),
        lambda: obs_q.trace_stats(olap, project_id, ids) if need_obs else {},
        lambda: scores_q.score_ids_by_trace(olap, project_id, ids) if "scores" in groups else {},
    )
    present = [i for i in ids if i in rows]
    out = []
    for tid in present:
        t = trace_shape(project_id, rows[tid], io=io)
        s = stats.get(tid)
        if "metrics" in groups:
            t["latency"] = s["latency"] if s else 0.0
            t["totalCost"] = s["total_cost"] if s else 0.0
        else:
            t["latency"], t["totalCost"] = -1, -1
        t["observations"] = (s["ids"] if s else []) if "observations" in groups else []
        t["scores"] = score_ids.get(tid, []) if "scores" in groups else []
        out.append(t)
    return out


def get_trace(olap: Olap, project_id: str, trace_id: str, *, fields: str | None = None) -> dict[str, Any] | None:
    """GET /api/public/traces/{id}: TraceWithFullDetails (observations as ObservationsView, scores as
    ScoreV1), or None when the trace does not exist in this project."""
    groups = field_groups(fields, TRACE_FIELD_GROUPS, TRACE_FIELD_GROUPS)
    io = "io" in groups
    need_obs = "observations" in groups or "metrics" in groups
    # One round: the trace, its observations and its scores side by side (a missing trace wastes two
    # small reads, a present one saves two round trips).
    rows, observations, scores = parallel(
        lambda: fetch_traces(olap, project_id, [trace_id], io=io),
        lambda: obs_q.observations_for_trace(olap, project_id, trace_id) if need_obs else [],
        lambda: scores_q.scores_for_trace(olap, project_id, trace_id) if "scores" in groups else [],
    )
    row = rows.get(trace_id)
    if row is None:
        return None
    t = trace_shape(project_id, row, io=io)
    if "metrics" in groups:
        t["latency"], t["totalCost"] = trace_metrics(observations)
    else:
        t["latency"], t["totalCost"] = -1, -1
    t["observations"] = observations if "observations" in groups else []
    t["scores"] = scores
    return t


def trace_metrics(observations: list[dict[str, Any]]) -> tuple[float, float]:
    """(latency seconds, total cost) of a trace from its observations (ObservationsView dicts):
    from the first start to the last end (or start, for observations without an end)."""
    starts = [datetime.fromisoformat(o["startTime"]) for o in observations if o.get("startTime")]
    ends = [datetime.fromisoformat(o.get("endTime") or o["startTime"]) for o in observations if o.get("startTime")]
    latency = round((max(ends) - min(starts)).total_seconds(), 3) if starts else 0.0
    cost = sum(o["calculatedTotalCost"] or 0.0 for o in observations)
    return latency, cost


def trace_ids_of(olap: Olap, project_id: str, *, user_id: str | None = None,
                 session_id: str | None = None) -> list[str]:
    """The ids of every trace whose merged user (or session) is the one given: what an erasure
    request deletes."""
    column, value = ("user_id", user_id) if user_id else ("session_id", session_id)
    return [r[0] for r in olap.query(
        f"SELECT id FROM {{db}}.traces WHERE project_id = {{p:String}} GROUP BY id "
        f"HAVING argMaxIfMerge({column}) = {{v:String}}", {"p": project_id, "v": value})]


def trace_ids_before(olap: Olap, project_id: str, cutoff: str) -> list[str]:
    """Ids of the traces whose first piece is older than `cutoff` ('YYYY-MM-DD hh:mm:ss.fff' UTC)."""
    return [r[0] for r in olap.query(
        "SELECT id FROM {db}.traces WHERE project_id = {p:String} GROUP BY id "
        "HAVING min(timestamp) < toDateTime64({cutoff:String}, 3, 'UTC')", {"p": project_id, "cutoff": cutoff})]


def delete_untraced_before(olap: Olap, project_id: str, cutoff: str) -> None:
    """Delete what no trace deletion reaches, older than `cutoff`: scores of sessions and dataset
    runs, and observations whose trace never arrived."""
    params = {"p": project_id, "cutoff": cutoff}
    olap.command("DELETE FROM {db}.scores WHERE project_id = {p:String} "
                 "AND timestamp < toDateTime64({cutoff:String}, 3, 'UTC')", params)
    old_traces = ("(SELECT trace_id FROM {db}.observations WHERE project_id = {p:String} GROUP BY trace_id "
                  "HAVING max(finalizeAggregation(start_time)) < toDateTime64({cutoff:String}, 3, 'UTC'))")
    mark_traces(olap, old_traces, params)  # the rollup hours they were counted in
    olap.command(
        f"DELETE FROM {{db}}.trace_bounds WHERE project_id = {{p:String}} AND trace_id IN {old_traces}", params)
    olap.command(
        f"DELETE FROM {{db}}.observations WHERE project_id = {{p:String}} AND trace_id IN {old_traces}", params)


def delete_traces(olap: Olap, project_id: str, ids: list[str]) -> None:
    """Delete traces with their observations and scores (lightweight DELETE: gone for reads at once,
    purged from disk by later merges)."""
    ids = [i for i in dict.fromkeys(ids) if i]
    if not ids:
        return
    p = Params(p=project_id)
    in_ids = p.ids(ids)
    mark_traces(olap, in_ids, p.values)  # the rollup hours they were counted in
    for table, trace_col in (("traces", "id"), ("observations", "trace_id"), ("trace_bounds", "trace_id"),
                             ("scores", "trace_id")):
        olap.command(f"DELETE FROM {{db}}.{table} WHERE project_id = {{p:String}} AND {trace_col} IN {in_ids}",
                     p.values, project=project_id)


def project_tables(olap: Olap) -> list[str]:
    """Every stored OLAP table with a project_id column (base tables, rollups, whatever a later
    migration adds), so deleting a project reaches all of them."""
    return [r[0] for r in olap.query(
        "SELECT c.table FROM system.columns AS c INNER JOIN system.tables AS t "
        "ON t.database = c.database AND t.name = c.table "
        "WHERE c.database = {d:String} AND c.name = 'project_id' AND t.engine LIKE '%MergeTree' "
        "ORDER BY c.table", {"d": olap.database})]


def delete_project_rows(olap: Olap, project_id: str) -> list[str]:
    """Delete every OLAP row of a project; returns the tables it deleted from."""
    tables = project_tables(olap)
    for table in tables:
        olap.command(f"DELETE FROM {{db}}.`{table}` WHERE project_id = {{p:String}}", {"p": project_id})
    return tables


def project_row_counts(olap: Olap, project_id: str) -> dict[str, int]:
    """How many rows each OLAP table holds for a project (what a deletion must bring to zero)."""
    return {table: int(olap.query(f"SELECT count() FROM {{db}}.`{table}` WHERE project_id = {{p:String}}",
                                  {"p": project_id})[0][0]) for table in project_tables(olap)}


def trace_exists(olap: Olap, project_id: str, trace_id: str) -> bool:
    return bool(olap.query(
        "SELECT count() FROM {db}.traces WHERE project_id = {p:String} AND id = {id:String}",
        {"p": project_id, "id": trace_id},
    )[0][0])


def has_traces(olap: Olap, project_id: str) -> bool:
    return bool(olap.query("SELECT 1 FROM {db}.traces WHERE project_id = {p:String} LIMIT 1", {"p": project_id}))


def environments(olap: Olap, project_id: str, limit: int) -> list[str]:
    """The project's environments (an unset one is "default"), sorted with "default" first. Partial
    states are enough for a set of distinct values: no merge needed (a part holding only pieces
    without an environment reads as "" and so adds "default")."""
    rows = olap.query(
        "SELECT DISTINCT finalizeAggregation(environment) AS env FROM {db}.traces"
        " WHERE project_id = {project_id:String} LIMIT {limit:UInt32}",
        {"project_id": project_id, "limit": limit},
    )
    return sorted({str(r[0]) or "default" for r in rows}, key=lambda e: (e != "default", e))
