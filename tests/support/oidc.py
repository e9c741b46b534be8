"""A local OpenID Connect provider for tests (the oidc-provider-mock package, a real authlib
authorization server on a loopback port) and the settings that point Owlscope at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

VERIFIED = {"email_verified": True}


@contextmanager
def oidc_provider(users: dict[str, dict[str, Any]]) -> Iterator[str]:
    """Start a provider knowing `users` (sub -> claims); yields its issuer URL."""
    from oidc_provider_mock import User, run_server_in_thread

    claims = [User(sub=sub, claims=values) for sub, values in users.items()]
    with run_server_in_thread(require_nonce=True, user_claims=claims) as server:
        yield f"http://localhost:{server.server_port}"


def sso_settings(issuer: str, **extra: Any) -> dict[str, Any]:
    return {"auth_custom_issuer": issuer, "auth_custom_client_id": "owlscope-test",
            "auth_custom_client_secret": "test-secret", "auth_custom_name": "Acme ID", **extra}


def authorize_at_provider(authorize_url: str, sub: str) -> str:
    """What a person does on the provider's page: pick the account and approve. Returns the
    URL the provider sends the browser back to."""
    response = httpx.post(authorize_url, data={"sub": sub}, follow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return response.headers["location"]
