"""The review screen of an annotation queue: one item at a time (a trace with its observation tree,
an observation, or a session's turns), the queue's score form and the item's comments.

Keyboard: Ctrl/⌘+Enter (or `c`) completes the item and opens the next, `s` skips it, `p` goes back
(see static/queues.js). Opening an item locks it to the reviewer for a few minutes
(annotation.items.LOCK_SECONDS); the next item is one nobody else holds. Scores are written by the
annotation panel's path (annotations.write_annotation): source ANNOTATION, the reviewer as author,
on the item's trace, observation or session; the scores carry the queue's id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope.annotation import items as queue_items
from owlscope.annotation import queues
from owlscope.errors import NotFound, OwlscopeError
from owlscope.services import Services
from owlscope.tracing.sessions import get_session
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render
from owlscope.web.views.annotations import (
    Subject,
    active_configs,
    comments_context,
    panel_context,
    parse_value,
    resolve_subject,
    write_annotation,
)
from owlscope.web.views.sessions import session_page_values
from owlscope.web.views.trace_layout import trace_view_values
from owlscope.web.views.traces import detail_values, load_trace, trace_links, trace_summary
from owlscope.web.views.tracing_common import user_names

router = APIRouter(include_in_schema=False)

FormList = Annotated[list[str], Form()]
BASE = "/project/{project_id}/annotation-queues/{queue_id}/review"


def _review_url(ctx: ProjectContext, queue_id: str, item_id: str | None = None) -> str:
    url = f"{ctx.url}/annotation-queues/{queue_id}/review"
    return f"{url}/{item_id}" if item_id else url


def _go(request: Request, ctx: ProjectContext, queue_id: str, item: queue_items.ReviewItem | None) -> Response:
    if item is None:
        flash(request, "Nothing left to review in this queue.")
        return redirect(request, f"{ctx.url}/annotation-queues/{queue_id}")
    return redirect(request, _review_url(ctx, queue_id, item.id))


def _queue_configs(services: Services, project_id: str, queue: dict[str, Any]) -> list[dict[str, Any]]:
    by_id = {c["id"]: c for c in active_configs(services, project_id)}
    return [by_id[i] for i in queue["scoreConfigIds"] if i in by_id]


def _subject(services: Services, project_id: str, item: queue_items.ReviewItem) -> Subject:
    return resolve_subject(services, project_id, item.object_type.lower(), item.object_id, item.trace_id)


def _item_view(services: Services, ctx: ProjectContext, item: queue_items.ReviewItem) -> dict[str, Any]:
    """What shows the item (the trace tree and detail, or the session's turns), its subject and the
    current annotation scores, from one read of the trace or session."""
    if item.object_type == "SESSION":
        session = get_session(services.olap, ctx.project.id, item.object_id)
        if session is None:
            raise NotFound("Session not found in this project")
        subject = Subject("session", item.object_id, None, session["environment"] or "default")
        return {**session_page_values(services, ctx.project.id, session), "subject": subject,
                "thread": comments_context(services, ctx, subject),
                "current": panel_context(services, ctx, subject, None)["current"]}
    trace_id = item.trace_id or item.object_id
    trace = load_trace(services, ctx.project.id, trace_id)
    selected = item.object_id if item.object_type == "OBSERVATION" else None
    values = detail_values(services, ctx, trace, selected)  # NotFound when the observation is not in it
    return {"trace": trace, **trace_view_values(trace), "summary": trace_summary(trace),
            "selected": selected, "base": ctx.url, "public_view": False, **trace_links(ctx.url, trace_id),
            **values, "current": values["panel"]["current"]}


def _page(request: Request, ctx: ProjectContext, services: Services, queue: dict[str, Any],
          item: queue_items.ReviewItem, *, error: str | None = None, entered: dict[str, str] | None = None,
          status: int = 200) -> Response:
    configs = _queue_configs(services, ctx.project.id, queue)
    holder = user_names(services, {item.locked_by}).get(item.locked_by or "", "Someone") if item.locked_by else None
    try:
        shown = _item_view(services, ctx, item)
    except NotFound as exc:  # deleted since it was queued: the reviewer can still skip or remove it
        shown = {"missing": exc.message, "subject": None, "current": {}}
    values = {
        "queue": queue, "item": item, "configs": configs, "entered": entered or {}, "error": error,
        "holder": holder, "can_annotate": ctx.can("MEMBER"), "review_url": _review_url(ctx, queue["id"], item.id),
        "queue_url": f"{ctx.url}/annotation-queues/{queue['id']}", "active_nav": "queues", "review": True,
        **shown,
    }
    return render(request, "queues/review.html", values, status_code=status)


@router.get(BASE)
def start_review(request: Request, queue_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    """The first pending item nobody else is reviewing."""
    require_role(ctx, "MEMBER")
    item = queue_items.next_item(services.sessions, project_id=ctx.project.id, queue_id=queue_id,
                                 user_id=ctx.user.id)
    return _go(request, ctx, queue_id, item)


@router.get(BASE + "/{item_id}")
def review_item(request: Request, queue_id: str, item_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    queue = queues.get_queue(services.sessions, project_id=ctx.project.id, queue_id=queue_id)
    item = queue_items.open_item(services.sessions, project_id=ctx.project.id, queue_id=queue_id, item_id=item_id,
                                 user_id=ctx.user.id, lock=ctx.can("MEMBER"))
    return _page(request, ctx, services, queue, item)


@router.post(BASE + "/{item_id}/complete")
def complete(request: Request, queue_id: str, item_id: str, ctx: ProjectCtx, services: WebServices,
             config_id: FormList = [], value: FormList = [], comment: FormList = []) -> Response:  # noqa: B006
    """Save the filled-in scores (all checked before any is written), complete the item, go on."""
    require_role(ctx, "MEMBER")
    project_id = ctx.project.id
    queue = queues.get_queue(services.sessions, project_id=project_id, queue_id=queue_id)
    item = queue_items.check_not_held(services.sessions, project_id=project_id, queue_id=queue_id, item_id=item_id,
                                      user_id=ctx.user.id)
    configs = {c["id"]: c for c in _queue_configs(services, project_id, queue)}
    comments = comment + [""] * (len(config_id) - len(comment))
    entered = {cid: raw for cid, raw in zip(config_id, value, strict=False)}
    subject = _subject(services, project_id, item)
    try:
        parsed = []
        for cid, raw, note in zip(config_id, value, comments, strict=False):
            config = configs.get(cid)
            if config is None:
                raise NotFound("Score config not found (or archived), or not one of this queue's")
            if raw.strip():
                parsed.append((config, parse_value(config, raw), note.strip()[:2000] or None))
    except OwlscopeError as exc:
        return _page(request, ctx, services, queue, item, error=exc.message, entered=entered, status=exc.status)
    current = panel_context(services, ctx, subject, None)["current"]
    for config, parsed_value, note in parsed:
        write_annotation(services, project_id=project_id, user_id=ctx.user.id, subject=subject, config=config,
                         value=parsed_value, comment=note, existing=current.get(config["id"]), queue_id=queue_id)
    queue_items.complete_item(services.sessions, project_id=project_id, queue_id=queue_id, item_id=item_id,
                              user_id=ctx.user.id)
    nxt = queue_items.next_item(services.sessions, project_id=project_id, queue_id=queue_id, user_id=ctx.user.id,
                                after_item_id=item_id)
    return _go(request, ctx, queue_id, nxt)


@router.post(BASE + "/{item_id}/skip")
def skip(request: Request, queue_id: str, item_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    kw = {"project_id": ctx.project.id, "queue_id": queue_id, "user_id": ctx.user.id}
    queue_items.release_item(services.sessions, item_id=item_id, **kw)
    nxt = queue_items.next_item(services.sessions, after_item_id=item_id, **kw)
    return _go(request, ctx, queue_id, nxt)


@router.post(BASE + "/{item_id}/previous")
def previous(request: Request, queue_id: str, item_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    kw = {"project_id": ctx.project.id, "queue_id": queue_id, "user_id": ctx.user.id}
    prev = queue_items.previous_item(services.sessions, before_item_id=item_id, **kw)
    if prev is None:
        flash(request, "This is the first item of the queue.", "info")
        return redirect(request, _review_url(ctx, queue_id, item_id))
    queue_items.release_item(services.sessions, item_id=item_id, **kw)
    return redirect(request, _review_url(ctx, queue_id, prev.id))
