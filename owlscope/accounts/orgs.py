"""Organizations, projects and memberships: who may see what, and the rules for changing it.

Roles, strongest first: OWNER > ADMIN > MEMBER > VIEWER. A project membership overrides the
organization role for that project (NONE hides the project). Rules kept here, whatever edge
calls them: only an OWNER grants, changes or removes OWNER; an organization always keeps at
least one OWNER; project names are unique (case-insensitively) among an organization's live
projects. Functions flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from owlscope.accounts.users import create_user, find_user
from owlscope.errors import Conflict, Forbidden, InvalidRequest, NotFound
from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.models import (
    ApiKey,
    Organization,
    OrganizationMembership,
    Project,
    ProjectMembership,
    Role,
    User,
)

ROLE_RANK: dict[Role, int] = {Role.NONE: 0, Role.VIEWER: 1, Role.MEMBER: 2, Role.ADMIN: 3, Role.OWNER: 4}
ASSIGNABLE_ROLES = (Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER)
MAX_NAME_LENGTH = 60


def parse_role(value: str | Role) -> Role:
    try:
        role = Role(str(value).upper())
    except ValueError:
        raise InvalidRequest(f"Unknown role {value!r}; choose one of OWNER, ADMIN, MEMBER, VIEWER") from None
    if role not in ASSIGNABLE_ROLES:
        raise InvalidRequest("Choose one of OWNER, ADMIN, MEMBER, VIEWER")
    return role


def role_at_least(role: Role | str | None, minimum: Role | str) -> bool:
    if role is None:
        return False
    return ROLE_RANK[Role(role)] >= ROLE_RANK[Role(minimum)]


def clean_name(value: str, what: str) -> str:
    name = " ".join((value or "").split())
    if not name:
        raise InvalidRequest(f"The {what} name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidRequest(f"The {what} name must have at most {MAX_NAME_LENGTH} characters")
    return name


# ---- reading access ---------------------------------------------------------------------------
def org_role(session: Session, *, user_id: str, org_id: str) -> Role | None:
    return session.scalars(
        select(OrganizationMembership.role).where(
            OrganizationMembership.org_id == org_id, OrganizationMembership.user_id == user_id
        )
    ).first()


def project_role(session: Session, *, user_id: str, project: Project) -> Role | None:
    """The user's effective role in a live project; None when they have no access."""
    if project.deleted_at is not None:
        return None
    base = org_role(session, user_id=user_id, org_id=project.org_id)
    if base is None:
        return None
    override = session.scalars(
        select(ProjectMembership.role).where(
            ProjectMembership.project_id == project.id, ProjectMembership.user_id == user_id
        )
    ).first()
    role = override or base
    return None if role == Role.NONE else role


@dataclass
class OrgProjects:
    """One organization the user belongs to, their role in it, and the projects they can open."""

    org: Organization
    role: Role
    projects: list[tuple[Project, Role]] = field(default_factory=list)


def list_user_projects(session: Session, *, user_id: str) -> list[OrgProjects]:
    """Every organization of the user (by name) with the live projects they may open (by name)."""
    rows = session.execute(
        select(Organization, OrganizationMembership.role)
        .join(OrganizationMembership, OrganizationMembership.org_id == Organization.id)
        .where(OrganizationMembership.user_id == user_id)
        .order_by(func.lower(Organization.name), Organization.id)
    ).all()
    if not rows:
        return []
    result = {org.id: OrgProjects(org=org, role=role) for org, role in rows}
    overrides = dict(
        session.execute(
            select(ProjectMembership.project_id, ProjectMembership.role).where(ProjectMembership.user_id == user_id)
        ).all()
    )
    projects = session.scalars(
        select(Project)
        .where(Project.org_id.in_(result), Project.deleted_at.is_(None))
        .order_by(func.lower(Project.name), Project.id)
    )
    for project in projects:
        entry = result[project.org_id]
        role = overrides.get(project.id) or entry.role
        if role != Role.NONE:
            entry.projects.append((project, role))
    return list(result.values())


# ---- organizations and projects ---------------------------------------------------------------
def create_organization(session: Session, *, name: str, owner_id: str | None) -> Organization:
    """A new organization with its first OWNER (`owner_id`; None only for `owlscope init` without a user)."""
    org = Organization(name=clean_name(name, "organization"))
    session.add(org)
    session.flush()
    if owner_id is not None:
        session.add(OrganizationMembership(org_id=org.id, user_id=owner_id, role=Role.OWNER))
        session.flush()
    return org


def rename_organization(session: Session, *, org_id: str, name: str) -> Organization:
    org = session.get(Organization, org_id)
    if org is None:
        raise NotFound("Organization not found")
    org.name = clean_name(name, "organization")
    session.flush()
    return org


def _check_project_name(session: Session, *, org_id: str, name: str, exclude_id: str | None = None) -> str:
    clean = clean_name(name, "project")
    query = select(Project.id).where(
        Project.org_id == org_id, Project.deleted_at.is_(None), func.lower(Project.name) == clean.lower()
    )
    if exclude_id is not None:
        query = query.where(Project.id != exclude_id)
    if session.scalars(query).first() is not None:
        raise Conflict(f"A project named {clean!r} already exists in this organization")
    return clean


def create_project(session: Session, *, org_id: str, name: str) -> Project:
    project = Project(org_id=org_id, name=_check_project_name(session, org_id=org_id, name=name))
    session.add(project)
    session.flush()
    return project


def rename_project(session: Session, *, project: Project, name: str) -> Project:
    project.name = _check_project_name(session, org_id=project.org_id, name=name, exclude_id=project.id)
    session.flush()
    return project


def delete_project(session: Session, *, project: Project, confirm_name: str) -> list[str]:
    """Mark the project deleted and delete its API keys; returns the deleted key ids (to drop
    from caches). `confirm_name` must be the project's exact name."""
    if (confirm_name or "").strip() != project.name:
        raise InvalidRequest("Type the project's name exactly to confirm the deletion")
    key_ids = list(session.scalars(select(ApiKey.id).where(ApiKey.project_id == project.id)))
    session.execute(delete(ApiKey).where(ApiKey.project_id == project.id))
    project.deleted_at = utcnow()
    session.flush()
    return key_ids


# ---- members ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Member:
    membership_id: str
    user_id: str
    email: str
    name: str | None
    role: Role
    pending: bool  # invited, has not set a password yet


def list_members(session: Session, *, org_id: str) -> list[Member]:
    rows = session.execute(
        select(OrganizationMembership, User)
        .join(User, User.id == OrganizationMembership.user_id)
        .where(OrganizationMembership.org_id == org_id)
        .order_by(User.email)
    ).all()
    return [
        Member(m.id, u.id, u.email, u.name, m.role, u.password_hash is None) for m, u in rows
    ]


def _membership(session: Session, *, org_id: str, membership_id: str, lock: bool = False) -> OrganizationMembership:
    query = select(OrganizationMembership).where(
        OrganizationMembership.org_id == org_id, OrganizationMembership.id == membership_id
    )
    membership = session.scalars(query.with_for_update() if lock else query).first()
    if membership is None:
        raise NotFound("Member not found")
    return membership


def _owner_count(session: Session, *, org_id: str) -> int:
    # FOR UPDATE on PostgreSQL serializes concurrent demotions; SQLite callers hold the write lock.
    owners = session.scalars(
        select(OrganizationMembership.id)
        .where(OrganizationMembership.org_id == org_id, OrganizationMembership.role == Role.OWNER)
        .with_for_update()
    ).all()
    return len(owners)


def _require_owner_for(actor_role: Role, *roles: Role) -> None:
    if Role.OWNER in roles and actor_role != Role.OWNER:
        raise Forbidden("Only an owner can grant, change or remove the OWNER role")


def add_member(
    session: Session, *, org_id: str, email: str, role: Role | str, actor_role: Role
) -> tuple[Member, bool]:
    """Add a user to the organization; an unknown email creates an invited user (no password).
    Returns the member and whether the user was created (then show a set-password link)."""
    new_role = parse_role(role)
    _require_owner_for(actor_role, new_role)
    user = find_user(session, email=email or "")
    created = False
    if user is None:
        user = create_user(session, email=email, password=None)
        created = True
    elif org_role(session, user_id=user.id, org_id=org_id) is not None:
        raise Conflict(f"{user.email} is already a member of this organization")
    membership = OrganizationMembership(org_id=org_id, user_id=user.id, role=new_role)
    session.add(membership)
    session.flush()
    return Member(membership.id, user.id, user.email, user.name, new_role, user.password_hash is None), created


def change_member_role(
    session: Session, *, org_id: str, membership_id: str, role: Role | str, actor_role: Role
) -> OrganizationMembership:
    new_role = parse_role(role)
    membership = _membership(session, org_id=org_id, membership_id=membership_id, lock=True)
    _require_owner_for(actor_role, new_role, membership.role)
    if membership.role == Role.OWNER and new_role != Role.OWNER and _owner_count(session, org_id=org_id) <= 1:
        raise Conflict("An organization must keep at least one owner: make someone else an owner first")
    membership.role = new_role
    session.flush()
    return membership


def remove_member(
    session: Session, *, org_id: str, membership_id: str, actor_role: Role, actor_user_id: str
) -> OrganizationMembership:
    """Remove a member (ADMIN+; any member may remove themselves, i.e. leave). Also drops their
    project-level roles in this organization's projects."""
    membership = _membership(session, org_id=org_id, membership_id=membership_id, lock=True)
    leaving = membership.user_id == actor_user_id
    if not leaving and not role_at_least(actor_role, Role.ADMIN):
        raise Forbidden("Removing members needs the ADMIN role")
    if not leaving:
        _require_owner_for(actor_role, membership.role)
    if membership.role == Role.OWNER and _owner_count(session, org_id=org_id) <= 1:
        raise Conflict("An organization must keep at least one owner: make someone else an owner first")
    project_ids = select(Project.id).where(Project.org_id == org_id)
    session.execute(
        delete(ProjectMembership).where(
            ProjectMembership.user_id == membership.user_id, ProjectMembership.project_id.in_(project_ids)
        )
    )
    session.delete(membership)
    session.flush()
    return membership


def pending_member_user(session: Session, *, org_id: str, membership_id: str) -> User:
    """The invited (password-less) user of a membership, for a new set-password link."""
    membership = _membership(session, org_id=org_id, membership_id=membership_id)
    user = session.get(User, membership.user_id)
    if user is None or user.password_hash is not None:
        raise InvalidRequest("This member has already set a password")
    # Whoever holds the link controls the account: an admin may only hand out links for accounts
    # that belong to their organization alone.
    other = session.scalars(
        select(OrganizationMembership.id).where(
            OrganizationMembership.user_id == user.id, OrganizationMembership.org_id != org_id
        )
    ).first()
    if other is not None:
        raise Forbidden("This user also belongs to another organization: only they can set their password")
    return user
