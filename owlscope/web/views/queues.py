"""Annotation queues in the UI: the list with each queue's progress, a queue's page (items, progress
per reviewer), its settings (name, description, score configs, reviewers) and "add to queue" from the
trace, observation and session pages and from the traces table (several traces at once).

VIEWERs see queues; MEMBERs and up create them, add items and review (see queue_review).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope.accounts.orgs import role_at_least
from owlscope.accounts.project_roles import list_project_members
from owlscope.annotation import items as queue_items
from owlscope.annotation import queues
from owlscope.errors import InvalidRequest, OwlscopeError
from owlscope.services import Services
from owlscope.storage.oltp.models import Project
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import is_htmx, redirect, render, safe_next
from owlscope.web.views.annotations import active_configs
from owlscope.web.views.tracing_common import user_names
from owlscope.wire import PageRequest

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
NextUrl = Annotated[str, Form(alias="next")]
PAGE_SIZE = 50


def queues_url(ctx: ProjectContext) -> str:
    return f"{ctx.url}/annotation-queues"


def all_queues(services: Services, project_id: str) -> list[dict[str, Any]]:
    return queues.list_queues(services.sessions, project_id=project_id, page=PageRequest(1, 100)).data


def reviewers(services: Services, project_id: str) -> list[dict[str, Any]]:
    """Members who may review (MEMBER and up), for the settings form."""
    with services.sessions() as session:
        project = session.get(Project, project_id)
        members = list_project_members(session, project=project) if project else []
    return [{"id": m.user_id, "label": m.name or m.email, "email": m.email} for m in members
            if role_at_least(m.effective, "MEMBER")]


@router.get("/project/{project_id}/annotation-queues")
def queue_list(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    found = all_queues(services, ctx.project.id)
    counts = queue_items.queue_counts(services.sessions, project_id=ctx.project.id)
    for q in found:
        c = counts.get(q["id"], {"PENDING": 0, "COMPLETED": 0})
        total = c["PENDING"] + c["COMPLETED"]
        q["progress"] = {"pending": c["PENDING"], "completed": c["COMPLETED"], "total": total,
                         "percent": round(100 * c["COMPLETED"] / total) if total else 0}
    return render(request, "queues/list.html", {"queues": found, "base": queues_url(ctx), "active_nav": "queues"})


# ---- create and settings ---------------------------------------------------------------------
def _form_values(services: Services, ctx: ProjectContext, queue: dict[str, Any] | None, *, form: dict[str, Any],
                 error: str | None = None) -> dict[str, Any]:
    return {"queue": queue, "form": form, "error": error, "configs": active_configs(services, ctx.project.id),
            "members": reviewers(services, ctx.project.id), "base": queues_url(ctx), "active_nav": "queues"}


@router.get("/project/{project_id}/annotation-queues/new")
def new_queue(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    form = {"name": "", "description": "", "config_ids": [], "user_ids": [ctx.user.id]}
    return render(request, "queues/form.html", _form_values(services, ctx, None, form=form))


def _save(request: Request, ctx: ProjectContext, services: Services, queue: dict[str, Any] | None, *, name: str,
          description: str, config_ids: list[str], user_ids: list[str]) -> Response:
    data = {"name": name, "description": description, "scoreConfigIds": config_ids}
    try:
        if queue is None:
            saved = queues.create_queue(services.sessions, project_id=ctx.project.id, data=data)
        else:
            saved = queues.update_queue(services.sessions, project_id=ctx.project.id, queue_id=queue["id"], data=data)
        _set_reviewers(services, ctx.project.id, saved["id"], user_ids)
    except OwlscopeError as exc:
        form = {"name": name, "description": description, "config_ids": config_ids, "user_ids": user_ids}
        return render(request, "queues/form.html", _form_values(services, ctx, queue, form=form, error=exc.message),
                      status_code=exc.status)
    flash(request, f"Saved queue {saved['name']}.")
    return redirect(request, f"{queues_url(ctx)}/{saved['id']}")


def _set_reviewers(services: Services, project_id: str, queue_id: str, user_ids: list[str]) -> None:
    current = set(queues.assigned_user_ids(services.sessions, project_id=project_id, queue_id=queue_id))
    wanted = set(user_ids)
    for user_id in sorted(wanted - current):
        queues.assign(services.sessions, project_id=project_id, queue_id=queue_id, data={"userId": user_id})
    for user_id in sorted(current - wanted):
        queues.unassign(services.sessions, project_id=project_id, queue_id=queue_id, data={"userId": user_id})


@router.post("/project/{project_id}/annotation-queues/new")
def create_queue(request: Request, ctx: ProjectCtx, services: WebServices, name: FormStr = "",
                 description: FormStr = "", config_id: FormList = [], user_id: FormList = []) -> Response:  # noqa: B006
    require_role(ctx, "MEMBER")
    return _save(request, ctx, services, None, name=name, description=description, config_ids=config_id,
                 user_ids=user_id)


@router.get("/project/{project_id}/annotation-queues/{queue_id}/settings")
def queue_settings(request: Request, queue_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    queue = queues.get_queue(services.sessions, project_id=ctx.project.id, queue_id=queue_id)
    form = {"name": queue["name"], "description": queue["description"] or "", "config_ids": queue["scoreConfigIds"],
            "user_ids": queues.assigned_user_ids(services.sessions, project_id=ctx.project.id, queue_id=queue_id)}
    return render(request, "queues/form.html", _form_values(services, ctx, queue, form=form))


@router.post("/project/{project_id}/annotation-queues/{queue_id}/settings")
def save_queue_settings(request: Request, queue_id: str, ctx: ProjectCtx, services: WebServices,
                        name: FormStr = "", description: FormStr = "", config_id: FormList = [],  # noqa: B006
                        user_id: FormList = []) -> Response:  # noqa: B006
    require_role(ctx, "MEMBER")
    queue = queues.get_queue(services.sessions, project_id=ctx.project.id, queue_id=queue_id)
    return _save(request, ctx, services, queue, name=name, description=description, config_ids=config_id,
                 user_ids=user_id)


@router.post("/project/{project_id}/annotation-queues/{queue_id}/delete")
def delete_queue(request: Request, queue_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "ADMIN")
    queue = queues.get_queue(services.sessions, project_id=ctx.project.id, queue_id=queue_id)
    queues.delete_queue(services.sessions, project_id=ctx.project.id, queue_id=queue_id)
    flash(request, f"Deleted queue {queue['name']}.")
    return redirect(request, queues_url(ctx))


# ---- a queue's page --------------------------------------------------------------------------
@router.get("/project/{project_id}/annotation-queues/{queue_id}")
def queue_page(request: Request, queue_id: str, ctx: ProjectCtx, services: WebServices, status: str = "",
               page: int = 1) -> Response:
    require_role(ctx, "VIEWER")
    project_id = ctx.project.id
    queue = queues.get_queue(services.sessions, project_id=project_id, queue_id=queue_id)
    status = status.upper() if status.upper() in queue_items.STATUSES else ""
    listing = queue_items.list_items(services.sessions, project_id=project_id, queue_id=queue_id,
                                     status=status or None, page=PageRequest(max(page, 1), PAGE_SIZE))
    counts = queue_items.queue_counts(services.sessions, project_id=project_id).get(
        queue_id, {"PENDING": 0, "COMPLETED": 0})
    done_by = queue_items.reviewer_counts(services.sessions, project_id=project_id, queue_id=queue_id)
    assigned = queues.assigned_user_ids(services.sessions, project_id=project_id, queue_id=queue_id)
    names = user_names(services, set(assigned) | set(done_by))
    per_reviewer = [{"name": names.get(u, "(removed user)"), "assigned": u in assigned,
                     **done_by.get(u, {"completed": 0, "in_review": 0})}
                    for u in dict.fromkeys([*assigned, *done_by])]
    configs = {c["id"]: c for c in active_configs(services, project_id)}
    return render(request, "queues/detail.html", {
        "queue": queue, "items": listing.data, "meta": listing.meta(), "status": status, "counts": counts,
        "per_reviewer": per_reviewer, "configs": [configs[i] for i in queue["scoreConfigIds"] if i in configs],
        "base": queues_url(ctx), "active_nav": "queues",
    })


@router.post("/project/{project_id}/annotation-queues/{queue_id}/items/{item_id}/remove")
def remove_item(request: Request, queue_id: str, item_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    queue_items.delete_item(services.sessions, project_id=ctx.project.id, queue_id=queue_id, item_id=item_id)
    flash(request, "Removed the item from the queue.")
    return redirect(request, f"{queues_url(ctx)}/{queue_id}")


# ---- add to queue ----------------------------------------------------------------------------
@router.get("/project/{project_id}/annotation-queues-control")
def add_control(request: Request, ctx: ProjectCtx, services: WebServices, kind: str = "", id: str = "",
                trace: str = "") -> Response:
    """The "add to queue" control of a trace, observation or session page (empty for viewers)."""
    require_role(ctx, "VIEWER")
    if not ctx.can("MEMBER") or kind not in ("trace", "observation", "session", "traces"):
        return Response("", media_type="text/html")
    template = "queues/_bulk_bar.html" if kind == "traces" else "queues/_add_control.html"
    return render(request, template, {
        "queues": all_queues(services, ctx.project.id), "kind": kind, "object_id": id, "trace_id": trace,
        "base": queues_url(ctx)})


@router.post("/project/{project_id}/annotation-queues/add")
def add_to_queue(request: Request, ctx: ProjectCtx, services: WebServices, queue_id: FormStr = "",
                 kind: FormStr = "", id: FormList = [], trace_id: FormList = [],  # noqa: B006
                 next_url: NextUrl = "") -> Response:
    """Add one object (`kind`, `id`) or several traces (`trace_id`, from the traces table)."""
    require_role(ctx, "MEMBER")
    object_ids = trace_id if trace_id else id
    object_type = "TRACE" if trace_id else kind
    back = safe_next(next_url, queues_url(ctx))
    try:
        if not queue_id:
            raise InvalidRequest("Choose a queue")
        if not object_ids:
            raise InvalidRequest("Select at least one trace")
        queue = queues.get_queue(services.sessions, project_id=ctx.project.id, queue_id=queue_id)
        added = queue_items.add_items(services.sessions, services.olap, project_id=ctx.project.id,
                                      queue_id=queue_id, object_type=object_type, object_ids=object_ids)
    except OwlscopeError as exc:
        if is_htmx(request):
            return render(request, "queues/_added.html", {"error": exc.message}, status_code=exc.status)
        raise
    message = f"Added {len(added)} item{'s' if len(added) != 1 else ''} to {queue['name']}."
    if is_htmx(request):
        return render(request, "queues/_added.html", {"message": message, "queue": queue, "base": queues_url(ctx)})
    flash(request, message)
    return redirect(request, back)
