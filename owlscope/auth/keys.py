"""Project API keys: `pk-lf-...` / `sk-lf-...` pairs, as the Langfuse SDKs send them (Basic auth).

The secret is never stored. The database keeps a salted SHA-256 (HMAC-SHA256 keyed by SALT) of
it, which is fast enough to check on every ingestion request, and a display form `sk-lf-...abcd`.
Functions that take a session flush but never commit: the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, contains_eager, sessionmaker

from owlscope.cache import TTLCache
from owlscope.storage.oltp.admin_models import OrganizationApiKey
from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.models import ApiKey

log = logging.getLogger(__name__)

PROJECT_SCOPE = "project"
ORGANIZATION_SCOPE = "organization"
PUBLIC_KEY_PREFIX = "pk-lf-"
SECRET_KEY_PREFIX = "sk-lf-"
# last_used_at is informational: refresh it at most this often per key.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def generate_key_pair() -> tuple[str, str]:
    """A new (public_key, secret_key): `pk-lf-<uuid4>`, `sk-lf-<uuid4>` (122 random bits each)."""
    return f"{PUBLIC_KEY_PREFIX}{uuid.uuid4()}", f"{SECRET_KEY_PREFIX}{uuid.uuid4()}"


def hash_secret(secret: str, salt: str) -> str:
    """Salted SHA-256 (HMAC-SHA256 with the salt as key) of a secret key, as 64 hex characters."""
    if not salt:
        raise ValueError("a salt is required to hash secret keys (setting SALT)")
    return hmac.new(salt.encode(), secret.encode(), hashlib.sha256).hexdigest()


def display_secret(secret: str) -> str:
    """The form shown in the UI: `sk-lf-...abcd` (prefix and last 4 characters)."""
    prefix = SECRET_KEY_PREFIX if secret.startswith(SECRET_KEY_PREFIX) else secret[:3]
    return f"{prefix}...{secret[-4:]}"


def create_api_key(
    session: Session,
    *,
    project_id: str,
    salt: str,
    note: str | None = None,
    public_key: str | None = None,
    secret_key: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Create a key for a project; returns the row and the secret in clear (shown once).

    Pass `public_key` and `secret_key` together to register a given pair (headless init);
    otherwise a new pair is generated.
    """
    if (public_key is None) != (secret_key is None):
        raise ValueError("public_key and secret_key must be given together")
    if public_key is None or secret_key is None:
        public_key, secret_key = generate_key_pair()
    if not public_key.startswith(PUBLIC_KEY_PREFIX):
        raise ValueError(f"public key must start with {PUBLIC_KEY_PREFIX}")
    if not secret_key.startswith(SECRET_KEY_PREFIX):
        raise ValueError(f"secret key must start with {SECRET_KEY_PREFIX}")
    key = ApiKey(
        project_id=project_id,
        public_key=public_key,
        hashed_secret_key=hash_secret(secret_key, salt),
        display_secret_key=display_secret(secret_key),
        note=note,
        expires_at=expires_at,
    )
    session.add(key)
    session.flush()
    return key, secret_key


def verify_api_key(session: Session, *, public_key: str, secret_key: str, salt: str) -> ApiKey | None:
    """The key if the pair is valid, not expired and its project not deleted; else None.

    The secret's hash is compared in constant time. `key.project` is loaded (for its org_id).
    """
    if not public_key or not secret_key:
        return None
    key = session.scalars(
        select(ApiKey)
        .join(ApiKey.project)
        .options(contains_eager(ApiKey.project))
        .where(ApiKey.public_key == public_key)
    ).first()
    if not _secret_matches(key, secret_key, salt) or key.project.deleted_at is not None:  # type: ignore[union-attr]
        return None
    return key


def _secret_matches(key: ApiKey | OrganizationApiKey | None, secret_key: str, salt: str) -> bool:
    """The secret's hash compared in constant time (the same work whether or not the key exists),
    and the key not expired."""
    computed = hash_secret(secret_key, salt)
    if key is None:
        hmac.compare_digest(computed, computed)
        return False
    if not hmac.compare_digest(key.hashed_secret_key.encode(), computed.encode()):
        return False
    return key.expires_at is None or key.expires_at > utcnow()


def verify_org_api_key(
    session: Session, *, public_key: str, secret_key: str, salt: str,
) -> OrganizationApiKey | None:
    """The organization key if the pair is valid and not expired; else None."""
    if not public_key or not secret_key:
        return None
    key = session.scalars(select(OrganizationApiKey).where(OrganizationApiKey.public_key == public_key)).first()
    return key if _secret_matches(key, secret_key, salt) else None


def find_public_key(session: Session, *, public_key: str) -> ApiKey | None:
    """The key with this public key, if not expired and its project not deleted (the public-key-only
    check that score creation allows, as Langfuse does for browser clients); else None."""
    if not public_key:
        return None
    key = session.scalars(
        select(ApiKey).join(ApiKey.project).options(contains_eager(ApiKey.project))
        .where(ApiKey.public_key == public_key)
    ).first()
    if key is None or (key.expires_at is not None and key.expires_at <= utcnow()):
        return None
    return None if key.project.deleted_at is not None else key


def list_api_keys(session: Session, *, project_id: str) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).where(ApiKey.project_id == project_id).order_by(ApiKey.created_at))
    )


def revoke_api_key(session: Session, *, project_id: str, key_id: str) -> bool:
    """Delete a project's key. False if the project has no such key.

    Other processes' ApiKeyCache may accept the key until their entry expires (TTL).
    """
    result = session.execute(delete(ApiKey).where(ApiKey.project_id == project_id, ApiKey.id == key_id))
    return bool(getattr(result, "rowcount", 0))


@dataclass(frozen=True, slots=True)
class AuthenticatedKey:
    """What a request authenticated with an API key may act as: one project (a project key), or
    one organization (an organization key: `project_id` is empty, `role` its authority)."""

    key_id: str
    project_id: str
    org_id: str
    public_key: str
    scope: str = "project"  # PROJECT_SCOPE | ORGANIZATION_SCOPE
    role: str | None = None

    @property
    def is_org_key(self) -> bool:
        return self.scope == ORGANIZATION_SCOPE


class ApiKeyCache:
    """In-process TTL cache in front of `verify_api_key`, for the per-request auth check.

    Entries are keyed by an HMAC of (public key, secret key), so neither is kept in memory, and
    live `ttl_seconds` (never past the key's own expiry). Only successes are cached. Revocation
    takes effect here at once through `invalidate()`, in other processes within the TTL.
    Thread-safe.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        salt: str,
        *,
        ttl_seconds: float = 60.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not salt:
            raise ValueError("a salt is required (setting SALT)")
        self._session_factory = session_factory
        self._salt = salt
        self._entries: TTLCache[bytes, AuthenticatedKey] = TTLCache(ttl_seconds, max_entries, clock=clock)

    def _cache_key(self, public_key: str, secret_key: str) -> bytes:
        return hmac.new(self._salt.encode(), f"{public_key}\0{secret_key}".encode(), hashlib.sha256).digest()

    def cached(self, public_key: str, secret_key: str) -> AuthenticatedKey | None:
        """The key when it was verified within the TTL, without touching the database (None: not
        known here; `authenticate` decides). Cheap enough for the event loop."""
        return self._entries.get(self._cache_key(public_key, secret_key))

    def authenticate(self, public_key: str, secret_key: str) -> AuthenticatedKey | None:
        ck = self._cache_key(public_key, secret_key)
        hit = self._entries.get(ck)
        if hit is not None:
            return hit
        found = self._load(public_key, secret_key)
        if found is None:
            return None
        auth, key_expires_at = found
        ttl = self._entries.ttl_seconds
        if key_expires_at is not None:
            ttl = min(ttl, (key_expires_at - utcnow()).total_seconds())
        self._entries.put(ck, auth, ttl_seconds=ttl)
        return auth

    def _load(self, public_key: str, secret_key: str) -> tuple[AuthenticatedKey, datetime | None] | None:
        with self._session_factory() as session:
            table: type[ApiKey] | type[OrganizationApiKey] = ApiKey
            key: ApiKey | OrganizationApiKey | None = verify_api_key(
                session, public_key=public_key, secret_key=secret_key, salt=self._salt)
            if isinstance(key, ApiKey):
                auth = AuthenticatedKey(
                    key_id=key.id, project_id=key.project_id, org_id=key.project.org_id, public_key=key.public_key
                )
            else:
                key = verify_org_api_key(session, public_key=public_key, secret_key=secret_key, salt=self._salt)
                if key is None:
                    return None
                table = OrganizationApiKey
                auth = AuthenticatedKey(key_id=key.id, project_id="", org_id=key.org_id, public_key=key.public_key,
                                        scope=ORGANIZATION_SCOPE, role=key.role)
            expires_at = key.expires_at
            now = utcnow()
            if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
                try:
                    session.execute(update(table).where(table.id == key.id).values(last_used_at=now))
                    session.commit()
                except SQLAlchemyError:  # informational only: never fail a request over it
                    log.debug("could not update last_used_at of key %s", key.id, exc_info=True)
                    session.rollback()
        return auth, expires_at

    def authenticate_public_key(self, public_key: str) -> AuthenticatedKey | None:
        """Public key only (no secret): for score creation alone. Not cached."""
        with self._session_factory() as session:
            key = find_public_key(session, public_key=public_key)
            if key is None:
                return None
            return AuthenticatedKey(
                key_id=key.id, project_id=key.project_id, org_id=key.project.org_id, public_key=key.public_key
            )

    def invalidate(self, *, key_id: str | None = None, project_id: str | None = None) -> None:
        """Forget cached keys: all of them, or those of one key or one project."""
        if key_id is None and project_id is None:
            self._entries.clear()
        else:
            self._entries.pop_where(
                lambda _k, auth: auth.key_id == key_id or (bool(project_id) and auth.project_id == project_id))

    def __len__(self) -> int:
        return len(self._entries)
