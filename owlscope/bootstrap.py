"""First organization, project, user and API key: headless (LANGFUSE_INIT_*) and `owlscope init`.

Headless init follows Langfuse's LANGFUSE_INIT_* variables: nothing happens unless
LANGFUSE_INIT_ORG_ID is set; what is missing is created, what exists is never changed (an
existing organization keeps its name, an existing key its secret, an existing user its
password). It runs at every start, so several processes may run it at once: a lost race
(unique-key conflict) is retried and then finds everything in place.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from owlscope.auth.keys import create_api_key, hash_secret
from owlscope.auth.passwords import hash_password
from owlscope.config import Settings
from owlscope.storage.oltp.models import (
    ApiKey,
    Organization,
    OrganizationMembership,
    Project,
    Role,
    User,
    normalise_email,
)

log = logging.getLogger(__name__)

_ATTEMPTS = 3
MAX_ID_LENGTH = 64


def _salt(settings: Settings) -> str:
    if not settings.salt:
        raise ValueError("SALT is not set: load settings with load_settings() or set SALT")
    return settings.salt


@contextmanager
def _write_transaction(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A committed-on-exit session; on SQLite it takes the write lock up front (BEGIN IMMEDIATE),
    so a read-then-write cannot fail on a snapshot another process changed meanwhile."""
    with session_factory() as session, session.begin():
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session


def init_from_settings(session_factory: sessionmaker[Session], settings: Settings) -> dict[str, Any] | None:
    """Apply LANGFUSE_INIT_*; None when LANGFUSE_INIT_ORG_ID is unset.

    Returns the ids involved, `created` (what this call created: "organization", "project",
    "api_key", "user", "membership") and `warnings` (settings that were not applied, and why).
    """
    if not settings.init_org_id:
        return None
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with _write_transaction(session_factory) as session:
                result = _apply_init(session, settings)
            break
        except IntegrityError:
            if attempt == _ATTEMPTS:
                raise
            log.info("headless init raced with another process; retrying")
    for what in result["created"]:
        log.info("headless init: created %s", what)
    for warning in result["warnings"]:
        log.warning("headless init: %s", warning)
    return result


def _apply_init(session: Session, settings: Settings) -> dict[str, Any]:
    created: list[str] = []
    warnings: list[str] = []
    org_id = settings.init_org_id
    assert org_id
    for name, value in (("LANGFUSE_INIT_ORG_ID", org_id), ("LANGFUSE_INIT_PROJECT_ID", settings.init_project_id)):
        if value and len(value) > MAX_ID_LENGTH:
            raise ValueError(f"{name} is longer than {MAX_ID_LENGTH} characters")

    org = session.get(Organization, org_id)
    if org is None:
        org = Organization(id=org_id, name=settings.init_org_name or org_id)
        session.add(org)
        session.flush()
        created.append("organization")

    project: Project | None = None
    if settings.init_project_id:
        project = session.get(Project, settings.init_project_id)
        if project is None:
            project = Project(
                id=settings.init_project_id, org_id=org.id,
                name=settings.init_project_name or settings.init_project_id,
            )
            session.add(project)
            session.flush()
            created.append("project")
        elif project.org_id != org.id:
            warnings.append(f"project {project.id} exists in another organization ({project.org_id}); left as is")

    public_key, secret_key = settings.init_project_public_key, settings.init_project_secret_key
    if public_key and secret_key:
        if project is None:
            warnings.append("LANGFUSE_INIT_PROJECT_PUBLIC_KEY/SECRET_KEY ignored: LANGFUSE_INIT_PROJECT_ID is not set")
        else:
            key = session.scalars(select(ApiKey).where(ApiKey.public_key == public_key)).first()
            if key is None:
                create_api_key(
                    session, project_id=project.id, salt=_salt(settings), public_key=public_key,
                    secret_key=secret_key, note="Provisioned from LANGFUSE_INIT_PROJECT_*_KEY",
                )
                created.append("api_key")
            elif key.project_id != project.id:
                warnings.append(f"API key {public_key} belongs to another project ({key.project_id}); left as is")
            elif key.hashed_secret_key != hash_secret(secret_key, _salt(settings)):
                warnings.append(f"API key {public_key} exists with a different secret; it keeps its secret")

    user: User | None = None
    if settings.init_user_email:
        email = normalise_email(settings.init_user_email)
        user = session.scalars(select(User).where(User.email == email)).first()
        if user is None:
            password = settings.init_user_password
            user = User(
                email=email, name=settings.init_user_name,
                password_hash=hash_password(password) if password else None,
            )
            session.add(user)
            session.flush()
            created.append("user")
        if _ensure_owner(session, org_id=org.id, user_id=user.id):
            created.append("membership")

    return {
        "org_id": org.id,
        "project_id": project.id if project else None,
        "public_key": public_key if project and public_key and secret_key else None,
        "user_id": user.id if user else None,
        "created": created,
        "warnings": warnings,
    }


def _ensure_owner(session: Session, *, org_id: str, user_id: str) -> bool:
    """Make the user an OWNER of the org unless they are a member already. True if added."""
    existing = session.scalars(
        select(OrganizationMembership).where(
            OrganizationMembership.org_id == org_id, OrganizationMembership.user_id == user_id
        )
    ).first()
    if existing is not None:
        return False
    session.add(OrganizationMembership(org_id=org_id, user_id=user_id, role=Role.OWNER))
    session.flush()
    return True


def create_org_project_user(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    org_name: str,
    project_name: str,
    email: str | None = None,
    password: str | None = None,
    user_name: str | None = None,
) -> dict[str, Any]:
    """Create an organization, a project, an API key pair and optionally a user (as OWNER).

    An existing user with that email is reused as is (password unchanged). Returns the ids, the
    names and the key pair in clear: the secret key cannot be shown again.
    """
    if not org_name.strip() or not project_name.strip():
        raise ValueError("organization and project names must not be empty")
    salt = _salt(settings)
    with _write_transaction(session_factory) as session:
        org = Organization(name=org_name.strip())
        session.add(org)
        session.flush()
        project = Project(org_id=org.id, name=project_name.strip())
        session.add(project)
        session.flush()

        user: User | None = None
        user_created = False
        if email:
            normalised = normalise_email(email)
            user = session.scalars(select(User).where(User.email == normalised)).first()
            if user is None:
                user = User(
                    email=normalised, name=user_name, password_hash=hash_password(password) if password else None
                )
                session.add(user)
                session.flush()
                user_created = True
            _ensure_owner(session, org_id=org.id, user_id=user.id)

        key, secret_key = create_api_key(session, project_id=project.id, salt=salt, note="Created by owlscope init")
        result = {
            "org_id": org.id,
            "org_name": org.name,
            "project_id": project.id,
            "project_name": project.name,
            "user_id": user.id if user else None,
            "user_email": user.email if user else None,
            "user_created": user_created,
            "api_key_id": key.id,
            "public_key": key.public_key,
            "secret_key": secret_key,
        }
    return result
