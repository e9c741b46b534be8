"""First organization, project, user and API key: headless (LANGFUSE_INIT_*) and `owlscope init`.

Both go through the same validated functions as the UI (owlscope.accounts.users / .orgs): an
e-mail, password or name the sign-up form refuses is refused here too, with the same message
(InvalidRequest), before anything is written.

Headless init follows Langfuse's LANGFUSE_INIT_* variables: nothing happens unless
LANGFUSE_INIT_ORG_ID is set; what is missing is created, what exists is never changed (an
existing organization keeps its name, an existing key its secret, an existing user its
password). It runs at every start, so several processes may run it at once: a lost race
(unique-key conflict) is retried and then finds everything in place.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from owlscope.accounts.orgs import clean_name, create_organization, create_project
from owlscope.accounts.users import create_user, find_user, validate_email, validate_password
from owlscope.auth.keys import create_api_key, hash_secret
from owlscope.config import ConfigError, Settings
from owlscope.errors import InvalidRequest
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.models import ApiKey, Organization, OrganizationMembership, Project, Role, User

log = logging.getLogger(__name__)

_ATTEMPTS = 3
MAX_ID_LENGTH = 64


def _salt(settings: Settings) -> str:
    if not settings.salt:
        raise ValueError("SALT is not set: load settings with load_settings() or set SALT")
    return settings.salt


def init_from_settings(session_factory: sessionmaker[Session], settings: Settings) -> dict[str, Any] | None:
    """Apply LANGFUSE_INIT_*; None when LANGFUSE_INIT_ORG_ID is unset.

    Returns the ids involved, `created` (what this call created: "organization", "project",
    "api_key", "user", "membership") and `warnings` (settings that were not applied, and why).
    """
    if not settings.init_org_id:
        return None
    _validate_init(settings)
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with write_transaction(session_factory) as session:
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


def _validate_init(settings: Settings) -> None:
    """Refuse LANGFUSE_INIT_* values the UI would refuse: a ConfigError naming every bad variable."""
    problems: list[tuple[str, str, str]] = []
    for name, value in (("LANGFUSE_INIT_ORG_ID", settings.init_org_id),
                        ("LANGFUSE_INIT_PROJECT_ID", settings.init_project_id)):
        if value and len(value) > MAX_ID_LENGTH:
            problems.append((name, f"longer than {MAX_ID_LENGTH} characters", "use a shorter id"))
    checks = (
        ("LANGFUSE_INIT_ORG_NAME", settings.init_org_name or settings.init_org_id,
         lambda v: clean_name(v, "organization")),
        ("LANGFUSE_INIT_PROJECT_NAME", settings.init_project_name or settings.init_project_id,
         lambda v: clean_name(v, "project")),
        ("LANGFUSE_INIT_USER_EMAIL", settings.init_user_email, validate_email),
        ("LANGFUSE_INIT_USER_PASSWORD", settings.init_user_password, validate_password),
    )
    for name, value, check in checks:
        if value:
            try:
                check(value)
            except InvalidRequest as exc:
                problems.append((name, exc.message, "set a value the sign-up form accepts"))
    if problems:
        raise ConfigError(problems)


def _apply_init(session: Session, settings: Settings) -> dict[str, Any]:
    created: list[str] = []
    warnings: list[str] = []
    org_id = settings.init_org_id
    assert org_id

    org = session.get(Organization, org_id)
    if org is None:
        org = Organization(id=org_id, name=clean_name(settings.init_org_name or org_id, "organization"))
        session.add(org)
        session.flush()
        created.append("organization")

    project: Project | None = None
    if settings.init_project_id:
        project = session.get(Project, settings.init_project_id)
        if project is None:
            project = Project(
                id=settings.init_project_id, org_id=org.id,
                name=clean_name(settings.init_project_name or settings.init_project_id, "project"),
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
        user = find_user(session, email=settings.init_user_email)
        if user is None:
            user = create_user(session, email=settings.init_user_email, password=settings.init_user_password or None,
                               name=settings.init_user_name)
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

    Names, e-mail and password are checked as the sign-up form checks them (InvalidRequest). An
    existing user with that e-mail is reused as is (password unchanged). Returns the ids, the names
    and the key pair in clear: the secret key cannot be shown again.
    """
    if email is not None:
        validate_email(email)
    if password is not None:
        validate_password(password)
    salt = _salt(settings)
    with write_transaction(session_factory) as session:
        user: User | None = None
        user_created = False
        if email:
            user = find_user(session, email=email)
            if user is None:
                user = create_user(session, email=email, password=password, name=user_name)
                user_created = True
        org = create_organization(session, name=org_name, owner_id=user.id if user else None)
        project = create_project(session, org_id=org.id, name=project_name)
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
