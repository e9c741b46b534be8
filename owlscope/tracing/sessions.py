"""Sessions: the traces of a project grouped by their merged session id.

A session's `createdAt` is its earliest trace's start and its `environment` that trace's
environment. Sessions are listed newest first.

Listing without merging every trace: take the newest K trace *rows* by `timestamp`; every session
created after the K-th row's time has all its traces among them, so the sessions of the newest
traces are the candidates. Their exact `createdAt` comes from all their traces (found by scanning
the partial session states of one column, then merged by primary key); the candidates created
after the bound are exact. K grows until a page is full or the rows run out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from owlscope.errors import InvalidRequest
from owlscope.storage.olap.client import Olap
from owlscope.tracing.common import Params, is_small, iso, kth_newest, parallel, parse_time_param, utc
from owlscope.tracing.model import TRACE, not_internal, rollups_fast, select_list, trace_aggregates_sql
from owlscope.tracing.traces import fetch_traces, trace_shape
from owlscope.wire import PageRequest

_FIRST_K, _K_FACTOR, _GROWTH = 400, 4, 4  # candidate rows: max(_FIRST_K, _K_FACTOR * wanted), × _GROWTH
_MAX_CANDIDATES = 200_000
_PER_TRACE = (
    "SELECT id" + select_list({"t_ts", "t_session", "t_env"}, TRACE).replace("%", "%%")
    + " FROM {db}.traces WHERE project_id = {project_id:String}%s GROUP BY id HAVING %s"
)


class _Query:
    def __init__(self, project_id: str, from_timestamp: Any, to_timestamp: Any, environment: list[str] | None,
                 hide_internal: bool = False):
        self.p = Params(project_id=project_id)
        self.start = parse_time_param(from_timestamp, "fromTimestamp")
        self.end = parse_time_param(to_timestamp, "toTimestamp")
        self.having: list[str] = []  # on sessions
        if self.start is not None:
            self.having.append(f"created >= {self.p.time(self.start)}")
        if self.end is not None:
            self.having.append(f"created < {self.p.time(self.end)}")
        self.trace_having = ["t_session != ''"]
        if environment:
            self.trace_having.append(f"if(t_env = '', 'default', t_env) IN {self.p.texts(environment)}")
        elif hide_internal:
            self.trace_having.append(not_internal("t_env"))

    def sessions_sql(self, restrict: str = "", extra_having: tuple[str, ...] = (),
                     extra_trace_having: tuple[str, ...] = ()) -> str:
        having = [*self.having, *extra_having]
        return (
            "SELECT t_session, min(t_ts) AS created, argMin(t_env, t_ts) AS env FROM (%s) GROUP BY t_session%s"
            % (_PER_TRACE % (restrict, " AND ".join([*self.trace_having, *extra_trace_having])),
               " HAVING " + " AND ".join(having) if having else "")
        )


def _latest_sessions(olap: Olap, q: _Query, want: int) -> list[tuple] | None:
    p = q.p
    where = "project_id = {project_id:String}" + (f" AND timestamp < {p.time(q.end)}" if q.end is not None else "")
    k = max(_K_FACTOR * want, _FIRST_K)
    while k <= _MAX_CANDIDATES:
        bound: datetime | None = kth_newest(olap, "traces", "timestamp", where, k, p.values, indexed=True)
        cand, trace_bound, created_after = where, [], ()
        if bound is not None:
            b = p.time(bound)
            cand += f" AND timestamp > {b}"
            trace_bound, created_after = [f"t_ts > {b}"], (f"created > {b}",)
        # Sessions of the traces that start after the bound, then all traces of those sessions.
        sessions = "(SELECT DISTINCT t_session FROM (%s))" % (
            _PER_TRACE % (f" AND id IN (SELECT id FROM {{db}}.traces WHERE {cand})",
                          " AND ".join([*q.trace_having, *trace_bound])))
        restrict = (" AND id IN (SELECT id FROM {db}.traces WHERE project_id = {project_id:String}"
                    f" AND finalizeAggregation(session_id) IN {sessions})")
        found = olap.query(
            q.sessions_sql(restrict, created_after, (f"t_session IN {sessions}",))
            + f" ORDER BY created DESC, t_session DESC LIMIT {want}",
            p.values,
        )
        if len(found) >= want or bound is None or (q.start is not None and utc(bound) < q.start):
            return found
        k *= _GROWTH
    return None


def _count(olap: Olap, q: _Query, filtered: bool) -> int:
    if not filtered:
        # Distinct partial session values: exact, except that a trace moved to another session counts
        # its old one too until the engine merges its rows.
        return int(olap.query(
            "SELECT uniqExact(s) FROM (SELECT finalizeAggregation(session_id) AS s FROM {db}.traces"
            " WHERE project_id = {project_id:String}) WHERE s != ''",
            q.p.values,
        )[0][0])
    return int(olap.query(f"SELECT count() FROM ({q.sessions_sql()})", q.p.values)[0][0])


def list_sessions(
    olap: Olap, project_id: str, *, page: int | None = 1, limit: int | None = 50, from_timestamp: Any = None,
    to_timestamp: Any = None, environment: list[str] | None = None, hide_internal: bool = False,
) -> dict[str, Any]:
    """GET /api/public/sessions: `{"data": [Session], "meta": {...}}`; from/to bound `createdAt`.
    `hide_internal` (the UI's default): without `environment`, only traces outside the internal
    environments make sessions."""
    req = PageRequest.of(page, limit)
    page, limit = req.page, req.limit
    q = _Query(project_id, from_timestamp, to_timestamp, environment, hide_internal)
    offset = (page - 1) * limit
    filtered = bool(q.having) or len(q.trace_having) > 1
    rows: list[tuple] | None = None
    # A small project is grouped whole in one query (page and total together): the latest-rows bound
    # would take rounds of growing K whenever its sessions outlive the newest few hundred traces.
    if offset + limit <= 1000 and not is_small(olap, "traces", project_id):
        rows, total = parallel(lambda: _latest_sessions(olap, q, offset + limit),
                               lambda: _count(olap, _Query(project_id, from_timestamp, to_timestamp, environment,
                                                                   hide_internal), filtered))
        if rows is not None:
            rows = rows[offset:]
    if rows is None:
        rows = olap.query(
            f"SELECT t_session, created, env, count() OVER () FROM ({q.sessions_sql()})"
            f" ORDER BY created DESC, t_session DESC LIMIT {limit} OFFSET {offset}", q.p.values)
        total = int(rows[0][3]) if rows else (_count(olap, q, True) if offset else 0)
    data = [{"id": r[0], "createdAt": iso(r[1]), "projectId": project_id, "environment": r[2] or "default"}
            for r in rows]
    return {"data": data, "meta": req.meta(total)}


# The session table's other orders (the UI): by an aggregate over the session's traces and their
# observations. Default order (newest first) is `list_sessions`.
SESSION_ORDERS = {"traces": "s_traces", "cost": "s_cost", "duration": "s_duration"}


def list_session_table(
    olap: Olap, project_id: str, *, search: str | None = None, order_by: str | None = None, page: int = 1,
    limit: int = 50, from_timestamp: Any = None, to_timestamp: Any = None, environment: list[str] | None = None,
    hide_internal: bool = False,
) -> dict[str, Any]:
    """The UI's sessions list: `list_sessions`' rows, optionally only the session ids containing
    `search` (any case) and ordered by `order_by` (`traces|cost|duration[.asc|.desc]`, most first
    by default). Counts and aggregates only the traces of the matching sessions."""
    field, _, direction = (order_by or "").partition(".")
    direction = (direction or "desc").upper()
    if field and field not in SESSION_ORDERS or direction not in ("ASC", "DESC"):
        raise InvalidRequest(f"Invalid order: use one of {', '.join(SESSION_ORDERS)} with .asc or .desc")
    if not search and not field:
        return list_sessions(olap, project_id, page=page, limit=limit, from_timestamp=from_timestamp,
                             to_timestamp=to_timestamp, environment=environment, hide_internal=hide_internal)
    req = PageRequest.of(page, limit)
    q = _Query(project_id, from_timestamp, to_timestamp, environment, hide_internal)
    restrict, extra = "", ()
    if search:
        needle = q.p.text(search)
        restrict = (" AND id IN (SELECT id FROM {db}.traces WHERE project_id = {project_id:String}"
                    f" AND positionCaseInsensitiveUTF8(finalizeAggregation(session_id), {needle}) > 0)")
        extra = (f"positionCaseInsensitiveUTF8(t_session, {needle}) > 0",)
    per_trace = _PER_TRACE % (restrict, " AND ".join([*q.trace_having, *extra]))
    obs = f"trace_id IN (SELECT id FROM ({per_trace}))" if search else "1"
    ms = "toUnixTimestamp64Milli(t_ts)"
    fast = rollups_fast(olap, project_id)
    sql = (
        "SELECT t_session, min(t_ts) AS created, argMin(t_env, t_ts) AS env, count() AS s_traces,"
        " sum(a_total_cost) AS s_cost,"
        f" (max({ms} + toInt64(a_latency * 1000)) - min({ms})) / 1000 AS s_duration,"
        " count() OVER () AS total_"
        f" FROM ({per_trace}) AS tr LEFT JOIN ({trace_aggregates_sql(obs, {'a_total_cost', 'a_latency'}, fast=fast)}) AS a"
        " ON a.trace_id = tr.id GROUP BY t_session"
        + (" HAVING " + " AND ".join(q.having) if q.having else "")
        + f" ORDER BY {SESSION_ORDERS.get(field, 'created')} {direction}, t_session {direction}"
        f" LIMIT {req.limit} OFFSET {(req.page - 1) * req.limit}"
    )
    rows = olap.query(sql, q.p.values)
    total = int(rows[0][6]) if rows else (
        0 if req.page == 1 else int(olap.query(f"SELECT count() FROM ({q.sessions_sql(restrict, (), extra)})",
                                               q.p.values)[0][0]))
    data = [{"id": r[0], "createdAt": iso(r[1]), "projectId": project_id, "environment": r[2] or "default"}
            for r in rows]
    return {"data": data, "meta": req.meta(total)}


def get_session(olap: Olap, project_id: str, session_id: str) -> dict[str, Any] | None:
    """GET /api/public/sessions/{id}: the Session with all its traces (oldest first), or None."""
    rows = [r for r in fetch_traces(olap, project_id, _candidates(olap, project_id, session_id)).values()
            if r["t_session"] == session_id]
    if not rows:
        return None
    rows.sort(key=lambda r: (r["t_ts"], r["id"]))
    first = rows[0]
    return {
        "id": session_id,
        "createdAt": iso(first["t_ts"]),
        "projectId": project_id,
        "environment": first["t_env"] or "default",
        "traces": [trace_shape(project_id, r) for r in rows],
    }


def _candidates(olap: Olap, project_id: str, session_id: str) -> list[str]:
    """The traces whose partial states name the session (a superset of its traces: the merged value
    is one of them)."""
    return [r[0] for r in olap.query(
        "SELECT DISTINCT id FROM {db}.traces WHERE project_id = {p:String}"
        " AND finalizeAggregation(session_id) = {s:String}",
        {"p": project_id, "s": session_id},
    )]


def session_exists(olap: Olap, project_id: str, session_id: str) -> bool:
    """Whether a trace of the project belongs to the session (by its merged session id)."""
    ids = _candidates(olap, project_id, session_id)
    return any(r["t_session"] == session_id
               for r in fetch_traces(olap, project_id, ids, io=False, aliases={"t_session"}).values())
