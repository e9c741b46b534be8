"""Public sharing: the switch on a trace or session page, and the public pages anyone with the link
can read without signing in (no navigation, nothing else of the project).

A link that is not (or no longer) shared is a 404 page, the same as an id that does not exist.
Rules (see owlscope.tracing.sharing): a trace is public when it was switched on here, or when the
SDK marked it public and nobody switched it off here; a session only when switched on here; a trace
of a shared session is readable through that session's link.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope.errors import NotFound
from owlscope.services import Services
from owlscope.storage.oltp.models import Project
from owlscope.tracing.session_stats import session_traces
from owlscope.tracing.sessions import get_session
from owlscope.tracing.sharing import set_shared, share_state, shared_project
from owlscope.tracing.traces import fetch_traces
from owlscope.web.context import ProjectCtx, WebServices, audit_action, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import is_htmx, redirect, render, safe_next
from owlscope.web.views.sessions import session_page_values
from owlscope.web.views.trace_layout import trace_view_values
from owlscope.web.views.traces import load_trace, public_url, selected_detail, trace_summary

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]
NextUrl = Annotated[str, Form(alias="next")]
NOT_SHARED = "This link is not shared, or sharing was switched off."


@router.post("/project/{project_id}/share")
def share(request: Request, ctx: ProjectCtx, services: WebServices, kind: FormStr = "", id: FormStr = "",
          shared: FormStr = "1", next_url: NextUrl = "") -> Response:
    """Switch public sharing of a trace or session on (shared=1) or off (shared=0)."""
    require_role(ctx, "MEMBER")
    kind = kind.upper()
    on = shared not in ("0", "false", "off", "")
    sdk_public = False
    if kind == "TRACE":
        row = fetch_traces(services.olap, ctx.project.id, [id], io=False).get(id)
        if row is None:
            raise NotFound("Trace not found in this project")
        sdk_public = bool(row["t_public"])
    elif kind == "SESSION":
        if not session_traces(services.olap, ctx.project.id, [id]):
            raise NotFound("Session not found in this project")
    else:
        raise NotFound("Only traces and sessions can be shared")
    set_shared(services.sessions, project_id=ctx.project.id, kind=kind, object_id=id, shared=on, user_id=ctx.user.id)
    audit_action(request, ctx, f"{kind.lower()}.{'shared' if on else 'unshared'}", kind.lower(), id)
    state = share_state(services.sessions, project_id=ctx.project.id, kind=kind, object_id=id, sdk_public=sdk_public)
    what = "trace" if kind == "TRACE" else "session"
    if not is_htmx(request):
        flash(request, f"Anyone with the link can now read this {what}." if on else f"The {what} is private again.")
        return redirect(request, safe_next(next_url, ctx.url))
    url = public_url(services, request, "traces" if kind == "TRACE" else "sessions", id, ctx.project.id)
    return render(request, "sharing/_control.html", {"share": state, "share_kind": kind, "share_id": id,
                                                     "share_url": url, "just_shared": on})


# ---- public pages ----------------------------------------------------------------------------
def _project(services: Services, project_id: str) -> str:
    with services.sessions() as session:
        project = session.get(Project, project_id) if project_id else None
    if project is None or project.deleted_at is not None:
        raise NotFound(NOT_SHARED)
    return project.id


def _public_trace(services: Services, trace_id: str, project: str, session: str) -> tuple[str, dict[str, Any]]:
    """(project id, trace) when the trace is readable by anyone; NotFound otherwise."""
    project_id = project or shared_project(services.sessions, kind="TRACE", object_id=trace_id) or (
        shared_project(services.sessions, kind="SESSION", object_id=session) if session else None)
    project_id = _project(services, project_id or "")
    try:
        trace = load_trace(services, project_id, trace_id)
    except NotFound:
        raise NotFound(NOT_SHARED) from None
    if share_state(services.sessions, project_id=project_id, kind="TRACE", object_id=trace_id,
                   sdk_public=trace["public"]).public:
        return project_id, trace
    if session and trace.get("sessionId") == session and share_state(
            services.sessions, project_id=project_id, kind="SESSION", object_id=session).public:
        return project_id, trace
    raise NotFound(NOT_SHARED)


def _public_links(trace_id: str, project_id: str, session: str) -> dict[str, str]:
    suffix = f"?project={quote(project_id, safe='')}" + (f"&session={quote(session, safe='')}" if session else "")
    t = f"/public/traces/{quote(trace_id, safe='')}"
    return {"page_base": t + suffix, "page_sep": "&", "partial_base": f"{t}/observations/",
            "partial_suffix": suffix, "overview_partial": f"{t}/overview{suffix}"}


@router.get("/public/traces/{trace_id}")
def public_trace(request: Request, trace_id: str, services: WebServices, project: str = "", session: str = "",
                 observation: str = "") -> Response:
    project_id, trace = _public_trace(services, trace_id, project, session)
    values = {
        "trace": trace, **trace_view_values(trace), "summary": trace_summary(trace),
        "selected": observation or None, "public_view": True, "base": "", "authors": {},
        "detail": selected_detail(trace, observation or None),
        "back_to_session": (f"/public/sessions/{quote(session, safe='')}?project={quote(project_id, safe='')}"
                            if session else None),
        **_public_links(trace_id, project_id, session),
    }
    return render(request, "traces/detail.html", values)


@router.get("/public/traces/{trace_id}/observations/{observation_id}")
def public_observation(request: Request, trace_id: str, observation_id: str, services: WebServices,
                       project: str = "", session: str = "") -> Response:
    project_id, trace = _public_trace(services, trace_id, project, session)
    if not is_htmx(request):
        return redirect(request, _public_links(trace_id, project_id, session)["page_base"]
                        + f"&observation={quote(observation_id, safe='')}")
    values = {"trace": trace, "public_view": True, "base": "", "authors": {},
              "detail": selected_detail(trace, observation_id)}
    return render(request, "traces/_detail.html", values)


@router.get("/public/traces/{trace_id}/overview")
def public_overview(request: Request, trace_id: str, services: WebServices, project: str = "",
                    session: str = "") -> Response:
    project_id, trace = _public_trace(services, trace_id, project, session)
    if not is_htmx(request):
        return redirect(request, _public_links(trace_id, project_id, session)["page_base"])
    values = {"trace": trace, "public_view": True, "base": "", "authors": {}, "detail": selected_detail(trace, None)}
    return render(request, "traces/_detail.html", values)


@router.get("/public/sessions/{session_id:path}")
def public_session(request: Request, session_id: str, services: WebServices, project: str = "") -> Response:
    project_id = _project(services, project or shared_project(services.sessions, kind="SESSION",
                                                                object_id=session_id) or "")
    if not share_state(services.sessions, project_id=project_id, kind="SESSION", object_id=session_id).public:
        raise NotFound(NOT_SHARED)
    session = get_session(services.olap, project_id, session_id)
    if session is None:
        raise NotFound(NOT_SHARED)
    values = session_page_values(services, project_id, session)
    values.update({"public_view": True, "public_project": project_id})
    return render(request, "sessions/detail.html", values)
