"""Organization settings: name, projects, members and their roles.

Everyone in the organization may look; ADMIN renames, creates projects and manages members;
only an OWNER grants, changes or removes OWNER (the rules live in owlscope.accounts.orgs).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlalchemy import select
from starlette.responses import Response

from owlscope import audit
from owlscope.accounts.orgs import (
    ASSIGNABLE_ROLES,
    add_member,
    change_member_role,
    create_project,
    list_members,
    pending_member_user,
    remove_member,
    rename_organization,
)
from owlscope.accounts.users import make_set_password_token
from owlscope.auth.oidc import enforced_domain
from owlscope.errors import OwlscopeError
from owlscope.project_deletion import org_deletions
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.models import OrganizationMembership, Project, User
from owlscope.web.context import OrgContext, OrgCtx, WebActor, WebServices, require_role, session_secret
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]


def _base_url(request: Request, services: WebServices) -> str:
    return (services.settings.public_url or str(request.base_url)).rstrip("/")


# ---- general ----------------------------------------------------------------------------------
def _general_page(
    request: Request, ctx: OrgContext, services: WebServices, *, status: int = 200, **extra: Any
) -> Response:
    with services.sessions() as session:
        projects = list(
            session.scalars(
                select(Project).where(Project.org_id == ctx.org.id, Project.deleted_at.is_(None)).order_by(Project.name)
            )
        )
    deletions = org_deletions(services, ctx.org.id) if ctx.can("ADMIN") else []
    values = {"projects": projects, "deletions": deletions, "active_nav": "org-settings", "tab": "general", **extra}
    return render(request, "org/settings.html", values, status_code=status)


@router.get("/organization/{org_id}/settings")
def org_settings(request: Request, ctx: OrgCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    return _general_page(request, ctx, services)


@router.post("/organization/{org_id}/settings/name")
def org_rename(request: Request, ctx: OrgCtx, services: WebServices, name: FormStr = "") -> Response:
    require_role(ctx, "ADMIN")
    try:
        with write_transaction(services.sessions) as session:
            org = rename_organization(session, org_id=ctx.org.id, name=name)
    except OwlscopeError as exc:
        return _general_page(request, ctx, services, status=exc.status, name_error=exc.message, name_value=name)
    flash(request, f"Organization renamed to {org.name}.")
    return redirect(request, f"/organization/{ctx.org.id}/settings")


@router.post("/organization/{org_id}/projects")
def org_create_project(request: Request, ctx: OrgCtx, services: WebServices, actor: WebActor,
                       name: FormStr = "") -> Response:
    require_role(ctx, "ADMIN")
    try:
        with write_transaction(services.sessions) as session:
            project = create_project(session, org_id=ctx.org.id, name=name)
            audit.record(session, actor, "project.created", org_id=ctx.org.id, project_id=project.id,
                         resource_type="project", resource_id=project.id, after={"name": project.name})
    except OwlscopeError as exc:
        return _general_page(
            request, ctx, services, status=exc.status, project_error=exc.message, project_value=name
        )
    flash(request, f"Project {project.name} created. Create an API key to start sending traces.")
    return redirect(request, f"/project/{project.id}/settings/api-keys")


# ---- members ----------------------------------------------------------------------------------
def _members_page(
    request: Request, ctx: OrgContext, services: WebServices, *, status: int = 200, **extra: Any
) -> Response:
    with services.sessions() as session:
        members = list_members(session, org_id=ctx.org.id)
    values = {
        "members": members, "roles": [r.value for r in ASSIGNABLE_ROLES], "active_nav": "org-members",
        "tab": "members", "owner_count": sum(1 for m in members if m.role == "OWNER"), **extra,
    }
    return render(request, "org/members.html", values, status_code=status)


def _invite_link(request: Request, services: WebServices, user: User) -> str:
    token = make_set_password_token(session_secret(services), user)
    return f"{_base_url(request, services)}/auth/set-password/{token}"


@router.get("/organization/{org_id}/settings/members")
def org_members(request: Request, ctx: OrgCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    return _members_page(request, ctx, services)


@router.post("/organization/{org_id}/members")
def org_add_member(
    request: Request, ctx: OrgCtx, services: WebServices, actor: WebActor, email: FormStr = "",
    role: FormStr = "MEMBER",
) -> Response:
    require_role(ctx, "ADMIN")
    try:
        with write_transaction(services.sessions) as session:
            member, created = add_member(session, org_id=ctx.org.id, email=email, role=role, actor_role=ctx.role)
            audit.record(session, actor, "member.invited", org_id=ctx.org.id, resource_type="member",
                         resource_id=member.user_id,
                         after={"email": member.email, "role": member.role.value, "new_account": created})
            # A domain that signs in only with SSO gets no set-password link: the provider admits them.
            sso_only = enforced_domain(services.settings, member.email) is not None
            invited = session.get(User, member.user_id) if created and not sso_only else None
            link = _invite_link(request, services, invited) if invited is not None else None
    except OwlscopeError as exc:
        return _members_page(
            request, ctx, services, status=exc.status, add_error=exc.message, add_email=email, add_role=role,
        )
    if link is None:
        how = " They sign in with single sign-on." if created else ""
        flash(request, f"{member.email} was added as {member.role.value}.{how}")
        return redirect(request, f"/organization/{ctx.org.id}/settings/members")
    # The link is shown once, in this response: it is never stored.
    return _members_page(request, ctx, services, invite={"email": member.email, "link": link})


@router.post("/organization/{org_id}/members/{membership_id}/role")
def org_change_role(
    request: Request, membership_id: str, ctx: OrgCtx, services: WebServices, actor: WebActor, role: FormStr = "",
) -> Response:
    require_role(ctx, "ADMIN")
    try:
        with write_transaction(services.sessions) as session:
            old = session.get(OrganizationMembership, membership_id)
            old_role = old.role.value if old is not None else None
            membership = change_member_role(
                session, org_id=ctx.org.id, membership_id=membership_id, role=role, actor_role=ctx.role
            )
            email = session.get(User, membership.user_id).email  # type: ignore[union-attr]
            audit.record(session, actor, "member.role_changed", org_id=ctx.org.id, resource_type="member",
                         resource_id=membership.user_id, before={"email": email, "role": old_role},
                         after={"email": email, "role": membership.role.value})
    except OwlscopeError as exc:
        return _members_page(request, ctx, services, status=exc.status, error=exc.message)
    flash(request, f"{email} is now {membership.role.value}.")
    return redirect(request, f"/organization/{ctx.org.id}/settings/members")


@router.post("/organization/{org_id}/members/{membership_id}/remove")
def org_remove_member(request: Request, membership_id: str, ctx: OrgCtx, services: WebServices,
                      actor: WebActor) -> Response:
    require_role(ctx, "VIEWER")  # anyone may leave; removing others is checked in remove_member
    try:
        with write_transaction(services.sessions) as session:
            membership = remove_member(
                session, org_id=ctx.org.id, membership_id=membership_id, actor_role=ctx.role,
                actor_user_id=ctx.user.id,
            )
            email = session.get(User, membership.user_id).email  # type: ignore[union-attr]
            audit.record(session, actor, "member.removed", org_id=ctx.org.id, resource_type="member",
                         resource_id=membership.user_id, before={"email": email, "role": membership.role.value})
    except OwlscopeError as exc:
        return _members_page(request, ctx, services, status=exc.status, error=exc.message)
    if membership.user_id == ctx.user.id:
        flash(request, f"You left {ctx.org.name}.", "info")
        return redirect(request, "/")
    flash(request, f"{email} was removed from {ctx.org.name}.")
    return redirect(request, f"/organization/{ctx.org.id}/settings/members")


@router.post("/organization/{org_id}/members/{membership_id}/invite-link")
def org_new_invite_link(request: Request, membership_id: str, ctx: OrgCtx, services: WebServices) -> Response:
    require_role(ctx, "ADMIN")
    try:
        with services.sessions() as session:
            user = pending_member_user(session, org_id=ctx.org.id, membership_id=membership_id)
    except OwlscopeError as exc:
        return _members_page(request, ctx, services, status=exc.status, error=exc.message)
    link = _invite_link(request, services, user)
    return _members_page(request, ctx, services, invite={"email": user.email, "link": link})
