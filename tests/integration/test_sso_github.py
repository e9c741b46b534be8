"""The GitHub preset (OAuth 2 without ID tokens) against a local stand-in for GitHub's token and
user endpoints: the verified primary address names the account, PKCE verifier and code are sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from owlscope.auth import oidc
from owlscope.errors import Forbidden


class FakeGitHub:
    def __init__(self) -> None:
        self.emails: list[dict[str, Any]] = []
        self.token_requests: list[dict[str, list[str]]] = []

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/login/oauth/access_token":
            self.token_requests.append(parse_qs(request.get_data(as_text=True)))
            body: Any = {"access_token": "gho_test", "token_type": "bearer", "scope": "read:user,user:email"}
        elif request.headers.get("Authorization") != "Bearer gho_test":
            return Response("{}", status=401)(environ, start_response)
        elif request.path == "/user":
            body = {"id": 4242, "login": "ada", "name": "Ada Lovelace"}
        elif request.path == "/user/emails":
            body = self.emails
        else:
            return Response("{}", status=404)(environ, start_response)
        return Response(json.dumps(body), content_type="application/json")(environ, start_response)


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeGitHub, oidc.Provider]]:
    fake = FakeGitHub()
    server = make_server("127.0.0.1", 0, fake, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setattr(oidc, "GITHUB_API", base)
    provider = oidc.Provider("github", "GitHub", "gh-client", "gh-secret", None, scope="read:user user:email",
                             authorize_url=f"{base}/login/oauth/authorize", token_url=f"{base}/login/oauth/access_token",
                             token_auth="client_secret_post")
    yield fake, provider
    server.shutdown()


def _round_trip(provider: oidc.Provider) -> oidc.Identity:
    url, pending = oidc.begin(provider, "http://owlscope.test/auth/sso/github/callback")
    query = parse_qs(url.split("?", 1)[1])
    assert query["code_challenge_method"] == ["S256"] and "nonce" not in query
    return oidc.complete(provider, "http://owlscope.test/auth/sso/github/callback", pending,
                         {"code": "the-code", "state": query["state"][0]})


def test_github_uses_the_verified_primary_address(github) -> None:
    fake, provider = github
    fake.emails = [
        {"email": "ada@personal.example", "primary": False, "verified": True},
        {"email": "Ada@Acme.example", "primary": True, "verified": True},
    ]
    identity = _round_trip(provider)
    assert identity == oidc.Identity("github", "4242", "ada@acme.example", "Ada Lovelace")
    sent = fake.token_requests[0]
    assert sent["code"] == ["the-code"] and sent["code_verifier"][0]
    assert sent["client_id"] == ["gh-client"] and sent["client_secret"] == ["gh-secret"]


def test_github_without_a_verified_primary_address_is_refused(github) -> None:
    fake, provider = github
    fake.emails = [{"email": "ada@acme.example", "primary": True, "verified": False}]
    with pytest.raises(Forbidden, match="no verified primary"):
        _round_trip(provider)
