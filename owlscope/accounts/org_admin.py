"""Organization administration by API key: projects, memberships and users of one organization.

The public organization API and SCIM call these with the organization key's role as the actor,
so the rules are the UI's (owlscope.accounts.orgs): only an OWNER grants, changes or removes
OWNER; an organization keeps at least one OWNER; project names are unique among live projects.
Everything is looked up within the key's organization: another organization's project, user or
membership is "not found". Functions flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from owlscope.accounts.orgs import (
    _owner_count,
    _require_owner_for,
    create_project,
    parse_role,
    rename_project,
)
from owlscope.accounts.project_roles import list_project_members, set_project_role
from owlscope.accounts.users import create_user, find_user, validate_email
from owlscope.errors import Conflict, InvalidRequest, NotFound
from owlscope.storage.oltp.models import OrganizationMembership, Project, ProjectMembership, Role, User

MIN_RETENTION_DAYS = 3
MAX_RETENTION_DAYS = 36_500


@dataclass(frozen=True)
class MembershipView:
    user_id: str
    role: Role
    email: str
    name: str | None


# ---- projects ---------------------------------------------------------------------------------
def org_projects(session: Session, *, org_id: str) -> list[Project]:
    return list(session.scalars(
        select(Project).where(Project.org_id == org_id, Project.deleted_at.is_(None))
        .order_by(Project.created_at, Project.id)
    ))


def org_project(session: Session, *, org_id: str, project_id: str) -> Project:
    """A live project of the organization, or NotFound (also for another organization's)."""
    project = session.get(Project, project_id)
    if project is None or project.org_id != org_id or project.deleted_at is not None:
        raise NotFound("Project not found")
    return project


def _metadata(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("Invalid metadata. Should be a valid JSON object.")
    return value


def _retention(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not (
            value == 0 or MIN_RETENTION_DAYS <= value <= MAX_RETENTION_DAYS):
        raise InvalidRequest(f"Invalid retention value. Must be 0 or at least {MIN_RETENTION_DAYS} days "
                             f"(at most {MAX_RETENTION_DAYS}).")
    return value or None


def create_org_project(
    session: Session, *, org_id: str, name: Any, metadata: Any = None, retention: Any = None,
) -> Project:
    if not isinstance(name, str):
        raise InvalidRequest("name is required and must be a string")
    meta, days = _metadata(metadata), _retention(retention)
    project = create_project(session, org_id=org_id, name=name)
    project.meta = meta
    project.retention_days = days
    session.flush()
    return project


_UNSET: Any = object()


def update_org_project(
    session: Session, *, org_id: str, project_id: str, name: Any, metadata: Any = _UNSET, retention: Any = _UNSET,
) -> Project:
    """Rename the project; metadata and retention change only when given (as in the contract)."""
    project = org_project(session, org_id=org_id, project_id=project_id)
    if not isinstance(name, str):
        raise InvalidRequest("name is required and must be a string")
    meta = project.meta if metadata is _UNSET else _metadata(metadata)
    days = project.retention_days if retention is _UNSET else _retention(retention)
    rename_project(session, project=project, name=name)
    project.meta, project.retention_days = meta, days
    session.flush()
    return project


# ---- organization memberships -----------------------------------------------------------------
def org_memberships(session: Session, *, org_id: str) -> list[MembershipView]:
    rows = session.execute(
        select(OrganizationMembership.role, User).join(User, User.id == OrganizationMembership.user_id)
        .where(OrganizationMembership.org_id == org_id).order_by(User.email)
    ).all()
    return [MembershipView(u.id, role, u.email, u.name) for role, u in rows]


def _org_membership(session: Session, *, org_id: str, user_id: str) -> OrganizationMembership | None:
    return session.scalars(select(OrganizationMembership).where(
        OrganizationMembership.org_id == org_id, OrganizationMembership.user_id == user_id).with_for_update()
    ).first()


def _user(session: Session, user_id: Any) -> User:
    if not isinstance(user_id, str) or not user_id:
        raise InvalidRequest("userId is required and must be a string")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    return user


def upsert_org_membership(
    session: Session, *, org_id: str, user_id: Any, role: Any, actor_role: Role,
) -> MembershipView:
    """Add an existing user to the organization with `role`, or change their role."""
    new_role = parse_role(role if isinstance(role, str) else "")
    user = _user(session, user_id)
    membership = _org_membership(session, org_id=org_id, user_id=user.id)
    if membership is None:
        _require_owner_for(actor_role, new_role)
        session.add(OrganizationMembership(org_id=org_id, user_id=user.id, role=new_role))
    else:
        _require_owner_for(actor_role, new_role, membership.role)
        if membership.role == Role.OWNER and new_role != Role.OWNER and _owner_count(session, org_id=org_id) <= 1:
            raise Conflict("An organization must keep at least one owner: make someone else an owner first")
        membership.role = new_role
    session.flush()
    return MembershipView(user.id, new_role, user.email, user.name)


def remove_org_membership(session: Session, *, org_id: str, user_id: Any, actor_role: Role) -> str:
    """Remove a user from the organization (and their project roles in it); returns the user id."""
    if not isinstance(user_id, str) or not user_id:
        raise InvalidRequest("userId is required and must be a string")
    membership = _org_membership(session, org_id=org_id, user_id=user_id)
    if membership is None:
        raise NotFound("Membership not found: the user is not a member of this organization")
    _require_owner_for(actor_role, membership.role)
    if membership.role == Role.OWNER and _owner_count(session, org_id=org_id) <= 1:
        raise Conflict("An organization must keep at least one owner: make someone else an owner first")
    session.execute(delete(ProjectMembership).where(
        ProjectMembership.user_id == user_id,
        ProjectMembership.project_id.in_(select(Project.id).where(Project.org_id == org_id))))
    session.delete(membership)
    session.flush()
    return user_id


# ---- project memberships ----------------------------------------------------------------------
def project_memberships(session: Session, *, project: Project) -> list[MembershipView]:
    """Every member who can open the project, with their role there (project role or else the
    organization's); members whose project role is NONE are left out."""
    return [MembershipView(m.user_id, m.effective, m.email, m.name)
            for m in list_project_members(session, project=project) if m.effective != Role.NONE]


def upsert_project_membership(
    session: Session, *, project: Project, user_id: Any, role: Any, actor_role: Role,
) -> MembershipView:
    """Set a member's role in one project; the user must already belong to the organization."""
    new_role = parse_role(role if isinstance(role, str) else "")
    user = _user(session, user_id)
    if _org_membership(session, org_id=project.org_id, user_id=user.id) is None:
        raise NotFound("User is not a member of this organization")
    member = set_project_role(session, project=project, user_id=user.id, role=new_role, actor_id="",
                              actor_role=actor_role)
    return MembershipView(user.id, member.effective, user.email, user.name)


def remove_project_membership(session: Session, *, project: Project, user_id: Any, actor_role: Role) -> str:
    """Drop the member's project role: the organization role applies again."""
    user = _user(session, user_id)
    if _org_membership(session, org_id=project.org_id, user_id=user.id) is None:
        raise NotFound("User is not a member of this organization")
    set_project_role(session, project=project, user_id=user.id, role=None, actor_id="", actor_role=actor_role)
    return user.id


# ---- users (SCIM) -----------------------------------------------------------------------------
def org_users(
    session: Session, *, org_id: str, email: str | None = None, offset: int = 0, limit: int = 100,
) -> tuple[int, list[User]]:
    """(total, one page of) the organization's users, by email; `email` filters on one address."""
    query = select(User).join(OrganizationMembership, OrganizationMembership.user_id == User.id).where(
        OrganizationMembership.org_id == org_id)
    if email is not None:
        query = query.where(User.email == email.strip().lower())
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    users = list(session.scalars(query.order_by(User.email, User.id).offset(offset).limit(limit)))
    return int(total), users


def org_user(session: Session, *, org_id: str, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None or _org_membership(session, org_id=org_id, user_id=user_id) is None:
        raise NotFound("User not found in organization")
    return user


def provision_user(
    session: Session, *, org_id: str, email: Any, name: str | None, role: Role, actor_role: Role,
) -> User:
    """Create the user if needed (no password: they sign in with SSO or set one through a link)
    and add them to the organization with `role`; Conflict if already a member."""
    address = validate_email(email if isinstance(email, str) else "")
    _require_owner_for(actor_role, role)
    user = find_user(session, email=address)
    if user is None:
        user = create_user(session, email=address, password=None, name=(name or None))
    elif _org_membership(session, org_id=org_id, user_id=user.id) is not None:
        raise Conflict("User with this userName already exists")
    session.add(OrganizationMembership(org_id=org_id, user_id=user.id, role=role))
    session.flush()
    return user


def reactivate_user(session: Session, *, org_id: str, user_id: str) -> User:
    """Give a known user back a membership (role NONE, as provisioning does) if they have none:
    an identity provider's `active: true` after it deactivated them."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    if _org_membership(session, org_id=org_id, user_id=user.id) is None:
        session.add(OrganizationMembership(org_id=org_id, user_id=user.id, role=Role.NONE))
        session.flush()
    return user
