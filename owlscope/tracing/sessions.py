"""Sessions: the traces of a project grouped by their merged session id.

A session's `createdAt` is its earliest trace's start and its `environment` that trace's
environment. Sessions are listed newest first.
"""

from __future__ import annotations

from typing import Any

from owlscope.storage.olap.client import Olap
from owlscope.tracing.common import Params, check_page, iso, page_meta, parse_time_param
from owlscope.tracing.traces import fetch_traces, trace_shape


def list_sessions(
    olap: Olap, project_id: str, *, page: int | None = 1, limit: int | None = 50, from_timestamp: Any = None,
    to_timestamp: Any = None, environment: list[str] | None = None,
) -> dict[str, Any]:
    """GET /api/public/sessions: `{"data": [Session], "meta": {...}}`; from/to bound `createdAt`."""
    page, limit = check_page(page, limit)
    p = Params(project_id=project_id)
    having = []
    start = parse_time_param(from_timestamp, "fromTimestamp")
    end = parse_time_param(to_timestamp, "toTimestamp")
    if start is not None:
        having.append(f"created >= {p.time(start)}")
    if end is not None:
        having.append(f"created < {p.time(end)}")
    trace_having = ["t_session != ''"]
    if environment:
        trace_having.append(f"if(t_env = '', 'default', t_env) IN {p.texts(environment)}")
    rows = olap.query(
        "SELECT t_session, min(t_ts) AS created, argMin(t_env, t_ts) AS env, count() OVER () AS total_ FROM ("
        " SELECT id, min(timestamp) AS t_ts, argMaxIfMerge(session_id) AS t_session,"
        " argMaxIfMerge(environment) AS t_env FROM {db}.traces WHERE project_id = {project_id:String}"
        " GROUP BY id HAVING %s) GROUP BY t_session%s ORDER BY created DESC, t_session DESC LIMIT %d OFFSET %d"
        % (" AND ".join(trace_having), " HAVING " + " AND ".join(having) if having else "", limit,
           (page - 1) * limit),
        p.values,
    )
    if rows:
        total = int(rows[0][3])
    elif page > 1:
        total = int(olap.query(
            "SELECT count() FROM (SELECT t_session, min(t_ts) AS created FROM ("
            " SELECT id, min(timestamp) AS t_ts, argMaxIfMerge(session_id) AS t_session,"
            " argMaxIfMerge(environment) AS t_env FROM {db}.traces WHERE project_id = {project_id:String}"
            " GROUP BY id HAVING %s) GROUP BY t_session%s)"
            % (" AND ".join(trace_having), " HAVING " + " AND ".join(having) if having else ""),
            p.values,
        )[0][0])
    else:
        total = 0
    data = [{"id": r[0], "createdAt": iso(r[1]), "projectId": project_id, "environment": r[2] or "default"}
            for r in rows]
    return {"data": data, "meta": page_meta(page, limit, total)}


def get_session(olap: Olap, project_id: str, session_id: str) -> dict[str, Any] | None:
    """GET /api/public/sessions/{id}: the Session with all its traces (oldest first), or None."""
    ids = [r[0] for r in olap.query(
        "SELECT DISTINCT id FROM {db}.traces WHERE project_id = {p:String}"
        " AND finalizeAggregation(session_id) = {s:String}",
        {"p": project_id, "s": session_id},
    )]
    rows = [r for r in fetch_traces(olap, project_id, ids).values() if r["t_session"] == session_id]
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
