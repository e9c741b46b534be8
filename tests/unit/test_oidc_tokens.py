"""ID-token validation: only a token signed by the provider's key, for this client, from this
issuer, unexpired and carrying this sign-in's nonce is accepted."""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from owlscope.auth.oidc import SignInFailed, validate_id_token

ISSUER = "https://idp.example.com"
CLIENT = "owlscope-client"
NONCE = "n-0S6_WzA2Mj"


@pytest.fixture(scope="module")
def key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})


@pytest.fixture(scope="module")
def keys(key: RSAKey) -> dict:
    return KeySet([key]).as_dict(private=False)


def _claims(**overrides) -> dict:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT, "sub": "user-1", "iat": now, "exp": now + 300, "nonce": NONCE,
              "email": "ada@example.com", "email_verified": True}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(key: RSAKey, **overrides) -> str:
    return jwt.encode({"alg": "RS256", "kid": "k1"}, _claims(**overrides), key)


def _validate(token: str, keys: dict) -> dict:
    return validate_id_token(token, keys=keys, issuer=ISSUER, client_id=CLIENT, nonce=NONCE)


def test_a_valid_token_gives_its_claims(key, keys) -> None:
    claims = _validate(_sign(key), keys)
    assert claims["sub"] == "user-1"
    assert claims["email"] == "ada@example.com"


def test_audience_list_containing_the_client_with_azp(key, keys) -> None:
    assert _validate(_sign(key, aud=[CLIENT, "other"], azp=CLIENT), keys)["sub"] == "user-1"
    with pytest.raises(SignInFailed, match="azp"):
        _validate(_sign(key, aud=[CLIENT, "other"], azp="other"), keys)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"iss": "https://evil.example.com"}, "iss"),
        ({"aud": "someone-else"}, "aud"),
        ({"nonce": "replayed-nonce"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
        ({"sub": None}, "sub"),
    ],
    ids=["wrong-issuer", "wrong-audience", "wrong-nonce", "no-nonce", "expired", "no-subject"],
)
def test_bad_claims_are_refused(key, keys, overrides, reason) -> None:
    with pytest.raises(SignInFailed, match=reason):
        _validate(_sign(key, **overrides), keys)


def test_unsigned_token_is_refused(keys) -> None:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    unsigned = f"{part({'alg': 'none'})}.{part(_claims())}."
    with pytest.raises(SignInFailed, match="signed"):
        _validate(unsigned, keys)


def test_token_signed_by_another_key_is_refused(keys) -> None:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(SignInFailed, match="signed"):
        _validate(_sign(stranger), keys)


def test_hmac_token_made_with_the_public_key_is_refused(key, keys) -> None:
    """Algorithm confusion: an HS256 token is never accepted for an asymmetric provider."""
    from joserfc.jwk import OctKey

    forged = jwt.encode({"alg": "HS256", "kid": "k1"}, _claims(), OctKey.import_key("x" * 32))
    with pytest.raises(SignInFailed, match="signed"):
        _validate(forged, keys)


def test_garbage_is_refused(keys) -> None:
    with pytest.raises(SignInFailed):
        _validate("not.a.token", keys)
