"""Password hashing with argon2id (argon2-cffi's recommended parameters)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from owlscope.auth.ratelimit import hashing_slot

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Verified when there is no hash (unknown user, SSO-only user) so the answer takes as long.
    with hashing_slot():
        return _hasher.hash("owlscope-dummy-password")


def hash_password(password: str) -> str:
    """An argon2id hash string (algorithm, parameters and salt included)."""
    if not password:
        raise ValueError("password must not be empty")
    with hashing_slot():
        return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """True if `password` matches `password_hash`. A missing or malformed hash never matches."""
    if not password_hash:
        _verify_quietly(_dummy_hash(), password)
        return False
    return _verify_quietly(password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True if the hash was made with weaker parameters than today's: re-hash after a login."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def _verify_quietly(password_hash: str, password: str) -> bool:
    try:
        with hashing_slot():
            return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
