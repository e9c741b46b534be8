"""AES-256-GCM for LLM provider secrets: round trip, tamper and key/context binding, masking."""

from __future__ import annotations

import os

import pytest

from owlscope.evals import crypto

KEY = os.urandom(32)


def test_round_trip_with_a_fresh_nonce_each_time() -> None:
    a = crypto.encrypt(KEY, "sk-secret", context="proj-1")
    b = crypto.encrypt(KEY, "sk-secret", context="proj-1")
    assert a != b and a.startswith("v1.") and "sk-secret" not in a
    assert crypto.decrypt(KEY, a, context="proj-1") == crypto.decrypt(KEY, b, context="proj-1") == "sk-secret"


@pytest.mark.parametrize("mutate", [
    lambda t, k, c: (t, os.urandom(32), c),  # another key
    lambda t, k, c: (t, k, "proj-2"),  # copied into another project
    lambda t, k, c: (t[:20] + ("A" if t[20] != "A" else "B") + t[21:], k, c),  # tampered
    lambda t, k, c: ("v0." + t[3:], k, c),  # unknown format
])
def test_decrypt_refuses_anything_else(mutate) -> None:
    token = crypto.encrypt(KEY, "sk-secret", context="proj-1")
    t, k, c = mutate(token, KEY, "proj-1")
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(k, t, context=c)


def test_settings_key_explains_how_to_make_one() -> None:
    class S:
        encryption_key: str | None = None

    with pytest.raises(crypto.EncryptionKeyMissing, match="openssl rand -hex 32"):
        crypto.settings_key(S())  # type: ignore[arg-type]
    S.encryption_key = "nothex"
    with pytest.raises(crypto.EncryptionKeyMissing, match="64 hex"):
        crypto.settings_key(S())  # type: ignore[arg-type]
    S.encryption_key = "ab" * 32
    assert crypto.settings_key(S()) == bytes.fromhex("ab" * 32)  # type: ignore[arg-type]


@pytest.mark.parametrize("secret, shown", [
    ("sk-proj-abcdefghijklmnop1234", "sk-...1234"),
    ("abcdefghij", "...ghij"),
    ("short", "..."),
])
def test_mask(secret: str, shown: str) -> None:
    assert crypto.mask_secret(secret) == shown
