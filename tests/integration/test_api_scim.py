"""SCIM 2.0 driven by a SCIM client library (scim2-client, which validates every response against
RFC 7643/7644) against a real server on a loopback port: discovery, provisioning, lookup by
userName, deprovisioning; plus the PATCH/PUT requests Okta and Entra ID send to deactivate, and
the contract's shapes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import pytest
from e2e.test_openapi_contract import contract_errors
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import Email, Name, SCIMException, SearchRequest, User

from conftest import LiveServer
from owlscope.accounts.bootstrap import create_org_project_user
from owlscope.auth.org_keys import create_org_api_key
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.models import OrganizationMembership, Role
from owlscope.storage.oltp.models import User as UserRow

SCIM = "/api/public/scim"


@dataclass
class Setup:
    server: LiveServer
    org_id: str
    owner_id: str
    project_key: tuple[str, str]
    org_key: tuple[str, str]
    other_org_key: tuple[str, str]

    @property
    def services(self) -> Any:
        return self.server.services

    def scim(self, key: tuple[str, str] | None = None) -> SyncSCIMClient:
        http = httpx2.Client(base_url=f"{self.server.url}{SCIM}", auth=key or self.org_key)
        client = SyncSCIMClient(http)
        client.discover()
        return client

    def raw(self, method: str, path: str, key: tuple[str, str] | None = None, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.server.url}{SCIM}{path}", auth=key or self.org_key, timeout=30, **kw)

    def role(self, user_id: str) -> Role | None:
        with self.services.sessions() as session:
            return session.query(OrganizationMembership.role).filter_by(
                org_id=self.org_id, user_id=user_id).scalar()


def _org(services: Any, name: str) -> tuple[dict, tuple[str, str]]:
    made = create_org_project_user(services.sessions, services.settings, org_name=name, project_name="app",
                                   email=f"owner@{name}.example.com")
    with write_transaction(services.sessions) as session:
        key, secret = create_org_api_key(session, org_id=made["org_id"], salt=services.settings.salt or "",
                                         role="OWNER")
    return made, (key.public_key, secret)


@pytest.fixture
def setup(stack: str, make_settings) -> Iterator[Setup]:
    with LiveServer(make_settings(stack), run_worker=False) as server:
        made, key = _org(server.services, "acme")
        _, other = _org(server.services, "rival")
        yield Setup(server, made["org_id"], made["user_id"], (made["public_key"], made["secret_key"]), key, other)


def test_an_identity_provider_provisions_finds_and_deprovisions_a_user(setup: Setup) -> None:
    client = setup.scim()
    assert client.provider is not None
    created = client.create(User(user_name="Grace@Example.com", name=Name(formatted="Grace Hopper"),
                                 emails=[Email(value="grace@example.com", primary=True)], password="ignored-1"))
    assert created.user_name == "grace@example.com" and created.name.formatted == "Grace Hopper"
    assert setup.role(created.id) == Role.NONE  # provisioned, no project until an admin grants one
    with setup.services.sessions() as session:
        assert session.get(UserRow, created.id).password_hash is None  # the password is never a credential

    found = client.query(User, query_parameters=SearchRequest(filter='userName eq "grace@example.com"'))
    assert found.total_results == 1 and [u.id for u in found.resources] == [created.id]
    assert client.query(User, created.id).user_name == "grace@example.com"
    everyone = client.query(User)
    assert {u.user_name for u in everyone.resources} == {"owner@acme.example.com", "grace@example.com"}
    page = client.query(User, query_parameters=SearchRequest(start_index=2, count=1))
    assert page.total_results == 2 and page.start_index == 2 and len(page.resources) == 1

    with pytest.raises(SCIMException) as conflict:
        client.create(User(user_name="grace@example.com", name=Name(formatted="Again")))
    assert conflict.value.status == 409

    client.delete(User, created.id)
    assert setup.role(created.id) is None
    with setup.services.sessions() as session:
        assert session.get(UserRow, created.id) is not None  # removed from the organization, not deleted
    assert client.query(User, query_parameters=SearchRequest(filter='userName eq "grace@example.com"')).total_results == 0
    with pytest.raises(SCIMException) as gone:
        client.query(User, created.id)
    assert gone.value.status == 404


def test_other_organizations_and_project_keys_see_nothing(setup: Setup) -> None:
    created = setup.raw("POST", "/Users", json={"userName": "ada@example.com", "name": {"formatted": "Ada"}}).json()
    rival = setup.scim(setup.other_org_key)
    assert {u.user_name for u in rival.query(User).resources} == {"owner@rival.example.com"}
    with pytest.raises(SCIMException) as hidden:
        rival.query(User, created["id"])
    assert hidden.value.status == 404
    assert setup.raw("DELETE", f"/Users/{created['id']}", setup.other_org_key).status_code == 404
    assert setup.role(created["id"]) == Role.NONE

    r = setup.raw("GET", "/Users", setup.project_key)
    assert r.status_code == 403
    body = r.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"] and body["status"] == "403"
    assert "Organization-scoped API key required" in body["detail"]
    assert setup.raw("GET", "/Users", ("pk-lf-x", "sk-lf-y")).status_code == 401


def test_okta_and_entra_requests(setup: Setup) -> None:
    # Okta's create (with roles and a placeholder password), as its SCIM app sends it
    okta = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "linus@example.com",
            "name": {"givenName": "Linus", "familyName": "T"}, "emails": [{"primary": True, "value":
            "linus@example.com", "type": "work"}], "displayName": "Linus T", "locale": "en-US",
            "externalId": "00u1", "groups": [], "password": "Placeholder1!", "active": True,
            "roles": [{"value": "MEMBER"}]}
    r = setup.raw("POST", "/Users", json=okta, headers={"Content-Type": "application/scim+json"})
    assert r.status_code == 201, r.text
    user = r.json()
    assert contract_errors("POST", f"{SCIM}/Users", user) == []
    assert user["name"]["formatted"] == "Linus T" and setup.role(user["id"]) == Role.MEMBER
    # Okta deactivates with PATCH; Entra ID sends the path form with a string
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "value": {"active": False}}]}
    r = setup.raw("PATCH", f"/Users/{user['id']}", json=patch)
    assert r.status_code == 200 and r.json()["active"] is False and setup.role(user["id"]) is None
    entra = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "Replace", "path": "active", "value": "True"}]}
    r = setup.raw("PATCH", f"/Users/{user['id']}", json=entra)
    assert r.status_code == 200 and setup.role(user["id"]) == Role.NONE  # back, without project access
    r = setup.raw("PUT", f"/Users/{user['id']}", json={**okta, "active": False})
    assert r.status_code == 200 and setup.role(user["id"]) is None
    bad = setup.raw("PATCH", f"/Users/{user['id']}", json={"Operations": []})
    assert bad.status_code == 400 and bad.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]

    for body in ({"name": {"formatted": "No user name"}}, {"userName": "not-an-email"},
                 {"userName": "x@example.com", "roles": ["EMPEROR"]}):
        assert setup.raw("POST", "/Users", json=body).status_code == 400, body
    r = setup.raw("GET", "/Users", params={"filter": 'emails.value co "example"'})
    assert r.status_code == 400 and r.json()["scimType"] == "invalidFilter"


def test_the_last_owner_cannot_be_deprovisioned(setup: Setup) -> None:
    r = setup.raw("DELETE", f"/Users/{setup.owner_id}")
    assert r.status_code == 409 and setup.role(setup.owner_id) == Role.OWNER


def test_discovery_and_user_bodies_match_the_contract(setup: Setup) -> None:
    for path in ("/ServiceProviderConfig", "/ResourceTypes", "/Schemas", "/Users", f"/Users/{setup.owner_id}"):
        r = setup.raw("GET", path)
        assert r.status_code == 200, (path, r.text)
        spec = f"{SCIM}/Users/{{userId}}" if path.startswith("/Users/") else f"{SCIM}{path}"
        assert contract_errors("GET", spec, r.json()) == [], path
