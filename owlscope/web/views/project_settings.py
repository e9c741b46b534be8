"""Project settings, General tab: rename (ADMIN) and delete with a typed-name confirmation (OWNER)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope import audit
from owlscope.accounts.orgs import rename_project
from owlscope.errors import OwlscopeError
from owlscope.media import forget_project as forget_project_media
from owlscope.pipeline.failures import count_failures, list_failures
from owlscope.project_deletion import request_project_deletion
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.models import Project
from owlscope.web.context import ProjectContext, ProjectCtx, WebActor, WebServices, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]


def _general_page(
    request: Request, ctx: ProjectContext, *, status: int = 200, **extra: Any
) -> Response:
    values = {"tab": "general", "active_nav": "settings", **extra}
    return render(request, "project/settings_general.html", values, status_code=status)


@router.get("/project/{project_id}/settings")
def project_settings(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    extra: dict[str, Any] = {}
    if ctx.can("ADMIN"):
        extra["failures"] = list_failures(services, ctx.project.id)
        extra["failure_count"] = count_failures(services, ctx.project.id)
    return _general_page(request, ctx, **extra)


@router.post("/project/{project_id}/settings/name")
def project_rename(request: Request, ctx: ProjectCtx, services: WebServices, actor: WebActor,
                   name: FormStr = "") -> Response:
    require_role(ctx, "ADMIN")
    try:
        with write_transaction(services.sessions) as session:
            project = session.get(Project, ctx.project.id)
            assert project is not None
            old_name = project.name
            rename_project(session, project=project, name=name)
            audit.record(session, actor, "project.renamed", org_id=ctx.org.id, project_id=project.id,
                         resource_type="project", resource_id=project.id, before={"name": old_name},
                         after={"name": project.name})
    except OwlscopeError as exc:
        return _general_page(request, ctx, status=exc.status, name_error=exc.message, name_value=name)
    flash(request, f"Project renamed to {project.name}.")
    return redirect(request, f"{ctx.url}/settings")


@router.post("/project/{project_id}/settings/delete")
def project_delete(request: Request, ctx: ProjectCtx, services: WebServices, actor: WebActor,
                   confirm: FormStr = "") -> Response:
    require_role(ctx, "OWNER")
    if (confirm or "").strip() != ctx.project.name:
        return _general_page(request, ctx, status=400,
                             delete_error="Type the project's name exactly to confirm the deletion")
    try:
        request_project_deletion(services, org_id=ctx.project.org_id, project_id=ctx.project.id, actor=actor)
    except OwlscopeError as exc:
        return _general_page(request, ctx, status=exc.status, delete_error=exc.message)
    forget_project_media(services, ctx.project.id)  # at once: no shared link serves its media any more
    services.read_caches.environments.pop(ctx.project.id)
    flash(request, f"Project {ctx.project.name} was deleted. Its data is being removed in the background "
                   "(progress in the organization settings).")
    return redirect(request, "/")
