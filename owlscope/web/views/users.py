"""Users (the end users of the traced application): the list (first and last seen, traces, tokens,
cost) and a user's page with their traces and sessions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from owlscope.errors import NotFound
from owlscope.tracing.trace_table import TraceFilters, list_trace_table
from owlscope.tracing.users import ORDERS, get_user, list_users, user_sessions
from owlscope.web.context import ProjectCtx, WebServices, require_role
from owlscope.web.templating import render
from owlscope.web.urls import with_query
from owlscope.web.views.tracing_common import PRESETS, environment_filter, time_range

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
USER_TRACES = 50


@router.get("/project/{project_id}/users")
def users(request: Request, ctx: ProjectCtx, services: WebServices, q: str = "", sort: str = "lastSeen",
          page: int = 1) -> Response:
    require_role(ctx, "VIEWER")
    qp = request.query_params
    rng = time_range(qp.get("range"), qp.get("from"), qp.get("to"), default="all")
    sort = sort if sort in ORDERS else "lastSeen"
    page = max(page, 1)
    found = list_users(services.olap, ctx.project.id, search=q.strip() or None, start=rng.start, end=rng.end,
                       environment=environment_filter(ctx.environment) or None, order_by=sort, page=page,
                       limit=PAGE_SIZE, hide_internal=ctx.hide_internal())
    pages = max((found["total"] + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    values = {
        "rows": found["data"], "total": found["total"], "range": rng, "presets": PRESETS, "q": q, "sort": sort,
        "sorts": {k: with_query(request, sort=k) for k in ORDERS}, "page": page, "pages": pages,
        "active_nav": "users",
    }
    return render(request, "users/list.html", values)


@router.get("/project/{project_id}/users/{user_id:path}")
def user_page(request: Request, user_id: str, ctx: ProjectCtx, services: WebServices, cursor: str = "",
              n: int = 1) -> Response:
    require_role(ctx, "VIEWER")
    envs = environment_filter(ctx.environment) or None
    hide = ctx.hide_internal()
    user = get_user(services.olap, ctx.project.id, user_id, environment=envs, hide_internal=hide)
    if user is None:
        raise NotFound("No traces carry this user id in this project" + (" and environment" if envs else "") + ".")
    page = list_trace_table(services.olap, ctx.project.id, TraceFilters(
        user_id=user_id, environment=envs or [], hide_internal=hide), cursor=cursor or None, limit=USER_TRACES)
    values = {
        "user_summary": user, "rows": page.rows, "sessions": user_sessions(services.olap, ctx.project.id, user_id,
                                                                          environment=envs, hide_internal=hide),
        "next_href": with_query(request, cursor=page.next_cursor, n=n + 1) if page.next_cursor else None,
        "first_href": with_query(request) if cursor else None, "page_number": max(n, 1),
        "active_nav": "users",
    }
    return render(request, "users/detail.html", values)
