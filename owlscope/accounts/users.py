"""User accounts: sign-up, sign-in, and one-time set-password links for invited users.

Plain functions over an OLTP session (they flush, the caller commits) that raise the domain
errors of owlscope.errors. Nothing here knows about HTTP: the UI, `owlscope init` and headless
initialization (owlscope.accounts.bootstrap) all create users through them.

Set-password links are signed tokens (itsdangerous), not table rows: the token names the user
and a fingerprint of the user's password hash at the time it was issued, so it stops working
once a password has been set (one use) or after `SET_PASSWORD_MAX_AGE`.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from owlscope.auth.passwords import hash_password, needs_rehash, verify_password
from owlscope.errors import Conflict, InvalidRequest
from owlscope.storage.oltp.models import User, normalise_email

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256
SET_PASSWORD_MAX_AGE = 7 * 24 * 3600
_SET_PASSWORD_SALT = "owlscope.set-password"
# Deliberately loose: one @, something on both sides, a dot in the domain, no spaces.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def validate_email(email: str) -> str:
    """The normalised (lower-cased) email, or InvalidRequest."""
    value = normalise_email(email or "")
    if not value or len(value) > 320 or not _EMAIL.match(value):
        raise InvalidRequest("Enter a valid email address")
    return value


def validate_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"The password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidRequest(f"The password must have at most {MAX_PASSWORD_LENGTH} characters")
    return password


def find_user(session: Session, *, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == normalise_email(email))).first()


def create_user(session: Session, *, email: str, password: str | None, name: str | None = None) -> User:
    """A new user; without a password it is an invited user who sets one through a link.

    Conflict if the email is taken (whether or not that account has a password: an invited
    account is claimed through its link, never by signing up with its email).
    """
    address = validate_email(email)
    if password is not None:
        validate_password(password)
    clean_name = (name or "").strip()[:255] or None
    if find_user(session, email=address) is not None:
        raise Conflict("An account with this email already exists")
    user = User(email=address, name=clean_name, password_hash=hash_password(password) if password else None)
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("An account with this email already exists") from None
    return user


def authenticate_user(session: Session, *, email: str, password: str) -> User | None:
    """The user if the password matches; None otherwise (same time whether or not the user exists).

    Upgrades the stored hash when it was made with weaker parameters.
    """
    user = find_user(session, email=email or "")
    if not verify_password(password or "", user.password_hash if user else None):
        return None
    assert user is not None and user.password_hash is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.flush()
    return user


def set_password(session: Session, *, user: User, password: str) -> None:
    user.password_hash = hash_password(validate_password(password))
    session.flush()


def password_fingerprint(secret: str, password_hash: str | None) -> str:
    """A short keyed digest of the password hash: sessions and set-password links carry it, so
    both stop working when the password changes."""
    return hmac.new(secret.encode(), (password_hash or "").encode(), hashlib.sha256).hexdigest()[:20]


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=_SET_PASSWORD_SALT)


def make_set_password_token(secret: str, user: User) -> str:
    return _serializer(secret).dumps({"u": user.id, "p": password_fingerprint(secret, user.password_hash)})


def user_for_set_password_token(
    session: Session, *, secret: str, token: str, max_age: int = SET_PASSWORD_MAX_AGE
) -> User:
    """The user a set-password link was made for; InvalidRequest if it is forged, expired or used."""
    try:
        data = _serializer(secret).loads(token, max_age=max_age)
    except BadSignature:
        raise InvalidRequest(
            "This link is invalid or has expired. Ask an administrator of your organization for a new one."
        ) from None
    user = session.get(User, str(data.get("u", ""))) if isinstance(data, dict) else None
    if user is None or not hmac.compare_digest(
        str(data.get("p", "")), password_fingerprint(secret, user.password_hash)
    ):
        raise InvalidRequest("This link has already been used. Sign in with your password instead.")
    return user
