"""Accounts from single sign-on: the provider's verified e-mail names the account.

An existing account with that e-mail (with or without a password, e.g. an invited user) is
signed in: that links it, so one person can use a password and SSO. A new e-mail creates an
account without a password unless sign-up is closed; a domain listed for automatic membership
adds the new user to an organization with a default role (that counts as provisioning, so it
works even with sign-up closed).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from owlscope.accounts.orgs import org_role, parse_role
from owlscope.accounts.users import create_user, find_user
from owlscope.errors import Forbidden
from owlscope.storage.oltp.models import Organization, OrganizationMembership, User


def _domains(value: str | None) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",") if part.strip()}


def auto_join_org(settings: object, email: str) -> str | None:
    """The organization a new SSO user of this e-mail's domain joins, if any."""
    org_id = getattr(settings, "auth_sso_default_org_id", None)
    if not org_id:
        return None
    domains = _domains(getattr(settings, "auth_sso_default_org_domains", None))
    domain = email.rsplit("@", 1)[-1].lower()
    return org_id if not domains or domain in domains else None


def user_for_sso(session: Session, *, settings: object, email: str, name: str | None) -> tuple[User, bool]:
    """The account for a verified e-mail, and whether it was created now."""
    user = find_user(session, email=email)
    if user is not None:
        return user, False
    org_id = auto_join_org(settings, email)
    if org_id is not None and session.get(Organization, org_id) is None:
        org_id = None
    if getattr(settings, "auth_disable_signup", False) and org_id is None:
        raise Forbidden("Sign-up is disabled on this server: ask an organization owner to invite you.")
    user = create_user(session, email=email, password=None, name=name)
    if org_id is not None and org_role(session, user_id=user.id, org_id=org_id) is None:
        role = parse_role(getattr(settings, "auth_sso_default_org_role", "VIEWER"))
        session.add(OrganizationMembership(org_id=org_id, user_id=user.id, role=role))
        session.flush()
    return user, True
