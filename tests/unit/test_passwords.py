import pytest
from argon2 import PasswordHasher

from owlscope.auth import passwords
from owlscope.auth.passwords import hash_password, needs_rehash, verify_password


@pytest.fixture(autouse=True)
def _production_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parameters the product uses (the other tests run with the cheapest, see conftest)."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher())


def test_hash_is_argon2id_and_salted() -> None:
    a = hash_password("correct horse")
    b = hash_password("correct horse")
    assert a.startswith("$argon2id$")
    assert a != b  # a fresh salt each time
    assert "correct horse" not in a


def test_verify_accepts_the_right_password_only() -> None:
    h = hash_password("s3cret!")
    assert verify_password("s3cret!", h)
    assert not verify_password("s3cret", h)
    assert not verify_password("S3CRET!", h)
    assert not verify_password("", h)


def test_missing_or_malformed_hash_never_matches() -> None:
    assert not verify_password("anything", None)
    assert not verify_password("anything", "")
    assert not verify_password("anything", "not-a-hash")
    assert not verify_password("anything", "$argon2id$v=19$m=65536,t=3,p=4$broken")


def test_unicode_passwords() -> None:
    h = hash_password("pässwörd-🦉")
    assert verify_password("pässwörd-🦉", h)
    assert not verify_password("passwort-🦉", h)


def test_empty_password_is_rejected() -> None:
    with pytest.raises(ValueError):
        hash_password("")


def test_needs_rehash() -> None:
    assert not needs_rehash(hash_password("x"))
    weak = "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$2V5H7xAj2rL0ttRrf5jvKQ"
    assert needs_rehash(weak)
    assert needs_rehash("garbage")
