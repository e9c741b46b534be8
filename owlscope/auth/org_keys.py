"""Organization API keys: the second kind of API key, for the organization endpoints
(`/api/public/organizations/*`, project and membership management, SCIM).

Same form (`pk-lf-...` / `sk-lf-...`, Basic auth) and the same salted SHA-256 of the secret as a
project key (owlscope.auth.keys); a different table and scope. A key acts with the role of the
owner or admin who created it, so an admin's key cannot do what the admin could not (grant OWNER).
Functions flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from owlscope.auth.keys import display_secret, generate_key_pair, hash_secret, verify_org_api_key
from owlscope.errors import Forbidden, InvalidRequest
from owlscope.storage.oltp.admin_models import OrganizationApiKey
from owlscope.storage.oltp.models import Role

KEY_ROLES = (Role.OWNER, Role.ADMIN)
__all__ = ["create_org_api_key", "list_org_api_keys", "revoke_org_api_key", "verify_org_api_key"]


def create_org_api_key(
    session: Session, *, org_id: str, salt: str, role: Role | str, note: str | None = None,
) -> tuple[OrganizationApiKey, str]:
    """A new key for an organization, acting as `role` (the creator's: OWNER or ADMIN); returns
    the row and the secret in clear (shown once)."""
    role = Role(str(role))
    if role not in KEY_ROLES:
        raise Forbidden("Only owners and admins of the organization can create organization API keys")
    public_key, secret_key = generate_key_pair()
    key = OrganizationApiKey(
        org_id=org_id, public_key=public_key, hashed_secret_key=hash_secret(secret_key, salt),
        display_secret_key=display_secret(secret_key), note=note, role=role.value,
    )
    session.add(key)
    session.flush()
    return key, secret_key


def list_org_api_keys(session: Session, *, org_id: str) -> list[OrganizationApiKey]:
    return list(session.scalars(
        select(OrganizationApiKey).where(OrganizationApiKey.org_id == org_id).order_by(OrganizationApiKey.created_at)
    ))


def revoke_org_api_key(session: Session, *, org_id: str, key_id: str, actor_role: Role | str) -> bool:
    """Delete an organization's key; False if it has no such key. An admin cannot revoke an
    owner's key."""
    key = session.scalars(select(OrganizationApiKey).where(
        OrganizationApiKey.org_id == org_id, OrganizationApiKey.id == key_id)).first()
    if key is None:
        return False
    if key.role == Role.OWNER.value and Role(str(actor_role)) != Role.OWNER:
        raise Forbidden("Only an owner can revoke a key created by an owner")
    session.execute(delete(OrganizationApiKey).where(OrganizationApiKey.id == key.id))
    return True


def clean_note(note: str | None, limit: int = 200) -> str | None:
    if note is not None and not isinstance(note, str):
        raise InvalidRequest("note must be a string")
    return " ".join((note or "").split())[:limit] or None
