"""Project-level roles: a member's organization role narrowed or raised for one project.

The override lives in `project_memberships` and `orgs.project_role` already applies it wherever
a role is checked (every project page and action). `NONE` removes access to the project. Only
an ADMIN of the project changes overrides; granting OWNER, or changing the role of someone who
is OWNER there, takes an OWNER. Nobody changes their own project role (no self-lockout, no
self-promotion).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from owlscope.accounts.orgs import role_at_least
from owlscope.errors import Forbidden, InvalidRequest, NotFound
from owlscope.storage.oltp.models import OrganizationMembership, Project, ProjectMembership, Role, User

PROJECT_ROLES = (Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER, Role.NONE)


@dataclass
class ProjectMember:
    user_id: str
    email: str
    name: str | None
    org_role: Role
    project_role: Role | None  # the override, None when the organization role applies

    @property
    def effective(self) -> Role:
        return self.project_role or self.org_role


def list_project_members(session: Session, *, project: Project) -> list[ProjectMember]:
    """Every organization member with their role in this project."""
    overrides = dict(session.execute(
        select(ProjectMembership.user_id, ProjectMembership.role).where(ProjectMembership.project_id == project.id)
    ).all())
    rows = session.execute(
        select(OrganizationMembership.role, User)
        .join(User, User.id == OrganizationMembership.user_id)
        .where(OrganizationMembership.org_id == project.org_id)
        .order_by(User.email)
    ).all()
    return [ProjectMember(u.id, u.email, u.name, role, overrides.get(u.id)) for role, u in rows]


def parse_project_role(value: str) -> Role | None:
    """A role for the form's value; "" (or "ORG") means: use the organization role."""
    text = (value or "").strip().upper()
    if text in ("", "ORG", "INHERIT"):
        return None
    try:
        role = Role(text)
    except ValueError:
        raise InvalidRequest(f"Unknown role {value!r}; choose OWNER, ADMIN, MEMBER, VIEWER, NONE or none") from None
    return role


def set_project_role(
    session: Session, *, project: Project, user_id: str, role: Role | None, actor_id: str, actor_role: Role,
) -> ProjectMember:
    """Set (or with None clear) a member's role override in the project."""
    if not role_at_least(actor_role, Role.ADMIN):
        raise Forbidden("Only admins and owners of the project can change project roles")
    if user_id == actor_id:
        raise Forbidden("You cannot change your own project role: ask another admin")
    member = next((m for m in list_project_members(session, project=project) if m.user_id == user_id), None)
    if member is None:
        raise NotFound("This person is not a member of the project's organization")
    if actor_role != Role.OWNER and (member.effective == Role.OWNER or role == Role.OWNER):
        raise Forbidden("Only an owner can grant the OWNER role or change an owner's role")
    session.execute(delete(ProjectMembership).where(
        ProjectMembership.project_id == project.id, ProjectMembership.user_id == user_id))
    if role is not None and role != member.org_role:
        session.add(ProjectMembership(project_id=project.id, user_id=user_id, role=role))
    session.flush()
    member.project_role = role if role != member.org_role else None
    return member
