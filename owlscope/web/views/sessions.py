"""Sessions: the list (id, traces, duration, users, cost, tokens, scores) and the session page, which
reads as the conversation: its traces in order with their input and output, the total cost, and on
each trace a place to comment and annotate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from owlscope.errors import NotFound
from owlscope.services import Services
from owlscope.tracing.session_stats import session_summaries
from owlscope.tracing.sessions import SESSION_ORDERS, get_session, list_session_table
from owlscope.tracing.sharing import share_state
from owlscope.tracing.trace_table import trace_aggregates, trace_error_messages, trace_scores
from owlscope.web import present
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, require_role
from owlscope.web.templating import render
from owlscope.web.urls import with_query
from owlscope.web.views.annotations import Subject, comments_context, panel_context
from owlscope.web.views.tracing_common import PRESETS, TimeRange, environment_filter, time_range

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


def session_query(request: Request, ctx: ProjectContext) -> tuple[dict[str, Any], TimeRange]:
    """The table's filters as `list_sessions` arguments, and the time range."""
    qp = request.query_params
    rng = time_range(qp.get("range"), qp.get("from"), qp.get("to"), default="all")
    return dict(from_timestamp=rng.start.isoformat() if rng.start else None,
                to_timestamp=rng.end.isoformat() if rng.end else None,
                environment=environment_filter(ctx.environment) or None, hide_internal=ctx.hide_internal()), rng


@router.get("/project/{project_id}/sessions")
def sessions(request: Request, ctx: ProjectCtx, services: WebServices, page: int = 1, q: str = "",
             sort: str = "") -> Response:
    require_role(ctx, "VIEWER")
    query, rng = session_query(request, ctx)
    page = max(page, 1)
    if sort.partition(".")[0] not in SESSION_ORDERS:
        sort = ""
    found = list_session_table(services.olap, ctx.project.id, search=q.strip() or None, order_by=sort or None,
                               page=page, limit=PAGE_SIZE, **query)
    ids = [s["id"] for s in found["data"]]
    stats = session_summaries(services.olap, ctx.project.id, ids)
    rows = [{**s, "createdAt": present.parse_iso(s["createdAt"]), **stats.get(s["id"], {})} for s in found["data"]]
    meta = found["meta"]
    values = {
        "rows": rows, "meta": meta, "range": rng, "presets": PRESETS, "page": page, "q": q, "sort": sort,
        "sorts": {k: with_query(request, sort=None if sort == f"{k}.desc" else f"{k}.desc", page=None)
                  for k in SESSION_ORDERS},
        "active_nav": "sessions",
    }
    return render(request, "sessions/list.html", values)


def session_page_values(services: Services, project_id: str, session: dict[str, Any]) -> dict[str, Any]:
    """The conversation: traces oldest first with their metrics and trace-level scores, and totals."""
    traces = session["traces"]
    ids = [t["id"] for t in traces]
    aggs = trace_aggregates(services.olap, project_id, ids)
    failed = [t for t, a in aggs.items() if a.get("errors")]
    messages = trace_error_messages(services.olap, project_id, failed) if failed else {}
    scores = trace_scores(services.olap, project_id, ids)
    summary = session_summaries(services.olap, project_id, [session["id"]]).get(session["id"], {})
    items = []
    for t in traces:
        a = aggs.get(t["id"], {})
        items.append({"trace": t, "timestamp": present.parse_iso(t["timestamp"]), "latency": a.get("latency"),
                      "cost": a.get("total_cost", 0.0), "tokens": a.get("total_tokens", 0),
                      "level": a.get("level", "DEFAULT"), "errors": a.get("errors", 0),
                      "warnings": a.get("warnings", 0), "observations": a.get("count", 0),
                      "scores": scores.get(t["id"], []), "error_message": messages.get(t["id"])})
    return {"session": session, "items": items, "summary": summary, "public_view": False}


@router.get("/project/{project_id}/sessions/{session_id:path}")
def session_page(request: Request, session_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    session = get_session(services.olap, ctx.project.id, session_id)
    if session is None:
        raise NotFound("Session not found. Its traces may not have arrived yet, or it belongs to another project.")
    from owlscope.web.views.traces import public_url

    values = session_page_values(services, ctx.project.id, session)
    subject = Subject("session", session_id, None, session["environment"])
    values.update({
        "share": share_state(services.sessions, project_id=ctx.project.id, kind="SESSION", object_id=session_id),
        "share_kind": "SESSION", "share_id": session_id,
        "share_url": public_url(services, request, "sessions", session_id, ctx.project.id),
        "panel": panel_context(services, ctx, subject, None), "thread": comments_context(services, ctx, subject),
        "active_nav": "sessions",
    })
    return render(request, "sessions/detail.html", values)
