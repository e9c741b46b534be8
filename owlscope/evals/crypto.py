"""LLM provider secrets at rest: AES-256-GCM under ENCRYPTION_KEY (64 hex characters).

A token is `v1.` + urlsafe base64 of nonce (12 bytes) + ciphertext + tag. The project id is bound as
associated data, so a ciphertext copied into another project's row does not decrypt. Secrets leave
the server only masked (`sk-...abcd`).

`check_encryption(settings, sessions)` is the startup / `owlscope doctor` check: when connections
exist, ENCRYPTION_KEY must be set, well-formed, and the key they were saved with.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from owlscope.config import FIXES, HEX64, Settings
from owlscope.errors import OwlscopeError

_PREFIX = "v1."
_NONCE = 12


class EncryptionKeyMissing(OwlscopeError):
    """The server has no usable ENCRYPTION_KEY: a configuration problem, not bad input."""

    status = 500
    error = "ConfigurationError"


class DecryptionFailed(OwlscopeError):
    status = 500
    error = "ConfigurationError"


def _key(key_hex: str | None) -> bytes:
    if not key_hex:
        raise EncryptionKeyMissing(
            "ENCRYPTION_KEY is not set; LLM connections store their API keys encrypted with it. "
            f"Fix: {FIXES['ENCRYPTION_KEY']}"
        )
    if not HEX64.match(key_hex):
        raise EncryptionKeyMissing(f"ENCRYPTION_KEY must be 64 hex characters (256 bits). Fix: {FIXES['ENCRYPTION_KEY']}")
    return bytes.fromhex(key_hex)


def settings_key(settings: Settings) -> bytes:
    """The 32-byte key from the settings, or EncryptionKeyMissing with the command that makes one."""
    return _key(settings.encryption_key)


def encrypt(key: bytes, plaintext: str, *, context: str) -> str:
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
    return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt(key: bytes, token: str, *, context: str) -> str:
    if not token.startswith(_PREFIX):
        raise DecryptionFailed("stored secret has an unknown format")
    try:
        raw = base64.urlsafe_b64decode(token[len(_PREFIX):])
        return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed(
            "cannot decrypt a stored LLM API key: ENCRYPTION_KEY differs from the key it was saved with. "
            "Restore the original ENCRYPTION_KEY, or re-enter the connection's key."
        ) from exc


def mask_secret(secret: str) -> str:
    """`sk-proj-abc...wxyz` -> `sk-...wxyz`; short secrets show only their last characters."""
    secret = secret.strip()
    tail = secret[-4:] if len(secret) > 8 else ""
    head = secret[:3] if len(secret) > 12 else ""
    return f"{head}...{tail}" if tail else "..."


def check_encryption(settings: Settings, sessions: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    """Configuration problems about ENCRYPTION_KEY, as (setting, problem, fix) like `check_settings`.

    Only matters when LLM connections exist (embedded mode generates the key; scale-out needs it set
    on every process). A key that is set but does not decrypt the stored secrets is reported too.
    """
    from owlscope.storage.oltp.eval_models import LlmConnection

    try:
        with sessions() as s:
            count = s.scalar(select(func.count()).select_from(LlmConnection)) or 0
            sample = s.execute(select(LlmConnection.project_id, LlmConnection.secret_key).limit(1)).first()
    except SQLAlchemyError:
        return []  # not migrated yet: nothing is encrypted
    if not count:
        return []
    fix = FIXES["ENCRYPTION_KEY"]
    what = f"{count} LLM connection(s) store their API keys encrypted with it"
    if not settings.encryption_key:
        return [("ENCRYPTION_KEY", f"is not set, but {what}", fix)]
    if not HEX64.match(settings.encryption_key):
        return [("ENCRYPTION_KEY", f"must be 64 hex characters (256 bits); {what}", fix)]
    if sample is not None:
        try:
            decrypt(bytes.fromhex(settings.encryption_key), sample.secret_key, context=sample.project_id)
        except DecryptionFailed:
            return [("ENCRYPTION_KEY", f"does not decrypt the stored keys ({what}): it was changed",
                     "restore the ENCRYPTION_KEY the connections were saved with, or re-enter their API keys")]
    return []
