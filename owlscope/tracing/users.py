"""Users: the end users of an application (a trace's `userId`), with when they were first and last
seen, their traces, tokens and cost.

The list reads the partial user states of `traces` (one column plus the row's start, no merge): a
trace's merged user is the value one of its rows carries, so grouping rows by that value finds every
user and their traces. (A trace that was moved to another user by a later event counts for both
until the engine merges its rows.) Tokens and cost are then aggregated for the page's users only.
An environment filter keeps the traces with a row in that environment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from owlscope.errors import InvalidRequest
from owlscope.storage.olap.client import Olap
from owlscope.tracing.common import Params, parallel, utc
from owlscope.tracing.model import not_internal, rollups_fast, trace_aggregates_sql

ORDERS = {
    "lastSeen": "last_seen", "firstSeen": "first_seen", "traces": "n_traces", "userId": "u",
}


def _rows_sql(p: Params, *, search: str | None, start: datetime | None, end: datetime | None,
              environment: list[str] | None, users: list[str] | None = None, hide_internal: bool = False) -> str:
    """Trace rows (id, u, ts) carrying a user, within the filters (`hide_internal`: without an
    environment, none of a trace in an internal one)."""
    where = ["project_id = {project_id:String}"]
    if start is not None:
        where.append(f"timestamp >= {p.time(start)}")
    if end is not None:
        where.append(f"timestamp < {p.time(end)}")
    if environment:
        envs = list(environment) + ([""] if "default" in environment else [])
        where.append("id IN (SELECT id FROM {db}.traces WHERE project_id = {project_id:String}"
                     f" AND finalizeAggregation(environment) IN {p.texts(envs)})")
    elif hide_internal:
        where.append("id NOT IN (SELECT id FROM {db}.traces WHERE project_id = {project_id:String}"
                     f" AND NOT ({not_internal('finalizeAggregation(environment)')}))")
    outer = ["u != ''"]
    if search:
        outer.append(f"positionCaseInsensitive(u, {p.text(search)}) > 0")
    if users is not None:
        outer.append(f"u IN {p.texts(users)}")
    return ("SELECT id, u, ts FROM (SELECT id, finalizeAggregation(user_id) AS u, timestamp AS ts FROM {db}.traces"
            f" WHERE {' AND '.join(where)}) WHERE {' AND '.join(outer)}")


def list_users(
    olap: Olap, project_id: str, *, search: str | None = None, start: datetime | None = None,
    end: datetime | None = None, environment: list[str] | None = None, order_by: str = "lastSeen",
    page: int = 1, limit: int = 50, hide_internal: bool = False,
) -> dict[str, Any]:
    """`{"data": [{userId, firstSeen, lastSeen, traces, totalTokens, totalCost}], "total": n}`.
    `order_by`: lastSeen (default, newest first), firstSeen, traces (most first) or userId."""
    if order_by not in ORDERS:
        raise InvalidRequest(f"Invalid order: use one of {', '.join(ORDERS)}")
    if page < 1 or not 1 <= limit <= 200:
        raise InvalidRequest("page must be 1 or more and limit 1 to 200")
    p = Params(project_id=project_id)
    rows_sql = _rows_sql(p, search=search, start=start, end=end, environment=environment, hide_internal=hide_internal)
    direction = "ASC" if order_by == "userId" else "DESC"
    page_sql = (
        f"SELECT u, min(ts) AS first_seen, max(ts) AS last_seen, uniqExact(id) AS n_traces FROM ({rows_sql})"
        f" GROUP BY u ORDER BY {ORDERS[order_by]} {direction}, u ASC LIMIT {limit} OFFSET {(page - 1) * limit}"
    )
    found, total = parallel(
        lambda: olap.query(page_sql, p.values),
        lambda: olap.query(f"SELECT uniqExact(u) FROM ({rows_sql})", p.values)[0][0],
    )
    users = [r[0] for r in found]
    usage = user_usage(olap, project_id, users, start=start, end=end, environment=environment,
                       hide_internal=hide_internal)
    data = []
    for u, first, last, n in found:
        m = usage.get(u, {})
        data.append({"userId": u, "firstSeen": utc(first), "lastSeen": utc(last), "traces": int(n),
                     "totalTokens": m.get("tokens", 0), "totalCost": m.get("cost", 0.0)})
    return {"data": data, "total": int(total)}


def user_usage(olap: Olap, project_id: str, users: list[str], *, start: datetime | None = None,
               end: datetime | None = None, environment: list[str] | None = None,
               hide_internal: bool = False) -> dict[str, dict[str, Any]]:
    """Tokens and cost of the given users' traces (within the filters), by user."""
    if not users:
        return {}
    p = Params(project_id=project_id)
    rows_sql = _rows_sql(p, search=None, start=start, end=end, environment=environment, users=users,
                         hide_internal=hide_internal)
    owner = dict(olap.query(f"SELECT DISTINCT id, u FROM ({rows_sql})", p.values))
    if not owner:
        return {}
    # The traces' ids as a parameter: the observations are read by primary key (a subquery here
    # made the engine read far more).
    rows = olap.query(
        "SELECT trace_id, a_total_tokens, a_total_cost FROM ("
        + trace_aggregates_sql("trace_id IN {tids:Array(String)}", {"a_total_tokens", "a_total_cost"},
                               fast=rollups_fast(olap, project_id)) + ")",
        {"project_id": project_id, "tids": list(owner)},
    )
    out: dict[str, dict[str, Any]] = {}
    for trace_id, tokens, cost in rows:
        u = out.setdefault(owner[trace_id], {"tokens": 0, "cost": 0.0})
        u["tokens"] += int(tokens)
        u["cost"] += float(cost)
    return out


def get_user(olap: Olap, project_id: str, user_id: str, *, environment: list[str] | None = None,
             hide_internal: bool = False) -> dict[str, Any] | None:
    """One user's summary (as a list item) or None when no trace carries the id."""
    p = Params(project_id=project_id)
    rows_sql = _rows_sql(p, search=None, start=None, end=None, environment=environment, users=[user_id],
                         hide_internal=hide_internal)
    found = olap.query(
        f"SELECT min(ts), max(ts), uniqExact(id) FROM ({rows_sql}) HAVING count() > 0", p.values)
    if not found:
        return None
    usage = user_usage(olap, project_id, [user_id], environment=environment,
                       hide_internal=hide_internal).get(user_id, {})
    first, last, n = found[0]
    return {"userId": user_id, "firstSeen": utc(first), "lastSeen": utc(last), "traces": int(n),
            "totalTokens": usage.get("tokens", 0), "totalCost": usage.get("cost", 0.0)}


def user_sessions(olap: Olap, project_id: str, user_id: str, *, environment: list[str] | None = None,
                  limit: int = 50, hide_internal: bool = False) -> list[dict[str, Any]]:
    """The sessions of a user's traces, most recent first: id, traces, first and last trace start."""
    p = Params(project_id=project_id)
    rows_sql = _rows_sql(p, search=None, start=None, end=None, environment=environment, users=[user_id],
                         hide_internal=hide_internal)
    rows = olap.query(
        "SELECT s, uniqExact(id), min(timestamp), max(timestamp) FROM (SELECT id, timestamp,"
        " finalizeAggregation(session_id) AS s FROM {db}.traces WHERE project_id = {project_id:String}"
        f" AND id IN (SELECT id FROM ({rows_sql}))) WHERE s != '' GROUP BY s ORDER BY max(timestamp) DESC"
        f" LIMIT {int(limit)}",
        p.values,
    )
    return [{"id": r[0], "traces": int(r[1]), "start": utc(r[2]), "end": utc(r[3])} for r in rows]
