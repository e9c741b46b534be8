"""Project settings, Roles tab: each organization member's role in this project (ADMIN edits)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from starlette.responses import Response

from owlscope import audit
from owlscope.accounts.project_roles import (
    PROJECT_ROLES,
    list_project_members,
    parse_project_role,
    set_project_role,
)
from owlscope.errors import OwlscopeError
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.models import Project, ProjectMembership
from owlscope.web.context import ProjectContext, ProjectCtx, WebActor, WebServices, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render

router = APIRouter(include_in_schema=False)


def _page(request: Request, ctx: ProjectContext, services: WebServices, *, status: int = 200, **extra: Any) -> Response:
    with services.sessions() as session:
        members = list_project_members(session, project=ctx.project)
    values = {"tab": "members", "active_nav": "settings", "members": members,
              "project_roles": [r.value for r in PROJECT_ROLES], **extra}
    return render(request, "project/settings_members.html", values, status_code=status)


@router.get("/project/{project_id}/settings/members")
def project_members(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    return _page(request, ctx, services)


@router.post("/project/{project_id}/settings/members/{user_id}/role")
def project_member_role(
    request: Request, user_id: str, ctx: ProjectCtx, services: WebServices, actor: WebActor,
    role: Annotated[str, Form()] = "",
) -> Response:
    require_role(ctx, "ADMIN")
    try:
        with write_transaction(services.sessions) as session:
            project = session.get(Project, ctx.project.id)
            assert project is not None
            old = session.scalar(select(ProjectMembership.role).where(
                ProjectMembership.project_id == project.id, ProjectMembership.user_id == user_id))
            member = set_project_role(session, project=project, user_id=user_id, role=parse_project_role(role),
                                      actor_id=ctx.user.id, actor_role=ctx.role)
            audit.record(session, actor, "project_member.role_changed", org_id=ctx.org.id, project_id=project.id,
                         resource_type="member", resource_id=user_id,
                         before={"email": member.email, "project_role": old.value if old else None},
                         after={"email": member.email,
                                "project_role": member.project_role.value if member.project_role else None})
    except OwlscopeError as exc:
        return _page(request, ctx, services, status=exc.status, error=exc.message)
    what = member.project_role.value if member.project_role else f"the organization role ({member.org_role.value})"
    flash(request, f"{member.email} now has {what} in {ctx.project.name}.")
    return redirect(request, f"{ctx.url}/settings/members")
