"""Organization administration API with organization-scoped keys, on both stacks: key scopes,
projects, project API keys, organization and project memberships, role rules, isolation between
organizations, project deletion through every store, and feedback.

Every success body is checked against the reference contract (strict: every declared field)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from e2e.test_openapi_contract import contract_errors
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from conftest import make_bucket
from owlscope import audit
from owlscope.accounts.bootstrap import create_org_project_user
from owlscope.accounts.users import create_user
from owlscope.app import create_app
from owlscope.auth.org_keys import create_org_api_key
from owlscope.storage.oltp.admin_models import Feedback, ProjectDeletion
from owlscope.storage.oltp.base import Base
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.media_models import Media
from owlscope.storage.oltp.models import Project, User
from owlscope.tracing.traces import project_row_counts


@dataclass
class Org:
    org_id: str
    project_id: str
    owner_id: str
    project_key: tuple[str, str]
    owner_key: tuple[str, str]  # organization key acting as OWNER
    admin_key: tuple[str, str]  # organization key acting as ADMIN


@dataclass
class Api:
    client: TestClient
    services: Any
    a: Org
    b: Org

    def call(self, method: str, path: str, auth: tuple[str, str], json: Any = None, **params: Any) -> httpx.Response:
        return self.client.request(method, path, auth=auth, json=json, params=params or None)

    def ok(self, method: str, spec_path: str, path: str, auth: tuple[str, str], json: Any = None,
           status: int = 200) -> Any:
        r = self.call(method, path, auth, json)
        assert r.status_code == status, r.text
        assert contract_errors(method, spec_path, r.json()) == []
        return r.json()


def _org(services: Any, name: str) -> Org:
    made = create_org_project_user(services.sessions, services.settings, org_name=name, project_name=f"{name} app",
                                   email=f"owner@{name}.example.com")
    salt = services.settings.salt or ""
    with write_transaction(services.sessions) as session:
        owner, owner_secret = create_org_api_key(session, org_id=made["org_id"], salt=salt, role="OWNER")
        admin, admin_secret = create_org_api_key(session, org_id=made["org_id"], salt=salt, role="ADMIN")
    return Org(made["org_id"], made["project_id"], made["user_id"], (made["public_key"], made["secret_key"]),
               (owner.public_key, owner_secret), (admin.public_key, admin_secret))


@pytest.fixture
def api(stack: str, make_settings) -> Iterator[Api]:
    app = create_app(make_settings(stack), run_worker=True)
    with TestClient(app) as client:
        services = app.state.services
        yield Api(client, services, _org(services, "alpha"), _org(services, "beta"))


def _user(api: Api, email: str) -> str:
    with write_transaction(api.services.sessions) as session:
        return create_user(session, email=email, password=None, name=email.split("@")[0]).id


# ---- scopes -------------------------------------------------------------------------------------
def test_each_kind_of_key_is_refused_where_the_other_belongs(api: Api) -> None:
    a = api.a
    for path in ("/api/public/traces", "/api/public/projects", "/api/public/v2/prompts"):
        r = api.call("GET", path, a.owner_key)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"] == "AccessDeniedError" and "project API key" in r.json()["message"]
    r = api.call("POST", "/api/public/ingestion", a.owner_key, {"batch": []})
    assert r.status_code == 403
    for method, path in (("GET", "/api/public/organizations/projects"), ("GET", "/api/public/organizations/apiKeys"),
                         ("POST", "/api/public/projects"), ("GET", f"/api/public/projects/{a.project_id}/apiKeys"),
                         ("GET", "/api/public/scim/Users")):
        r = api.call(method, path, a.project_key, {"name": "x"} if method == "POST" else None)
        assert r.status_code == 403, (path, r.text)
        body = r.json()
        assert "Organization-scoped API key required" in body.get("message", body.get("detail", ""))
    assert api.call("GET", "/api/public/organizations/projects", (a.owner_key[0], "sk-lf-wrong")).status_code == 401
    assert api.client.get("/api/public/organizations/projects").status_code == 401
    # and each still works where it belongs
    assert api.call("GET", "/api/public/projects", a.project_key).status_code == 200
    assert api.call("GET", "/api/public/organizations/projects", a.owner_key).status_code == 200


# ---- projects -----------------------------------------------------------------------------------
def test_projects_create_list_update_with_validation_and_isolation(api: Api) -> None:
    a, b = api.a, api.b
    created = api.ok("POST", "/api/public/projects", "/api/public/projects", a.admin_key,
                     {"name": "search", "metadata": {"team": "ml"}, "retention": 30})
    assert created["name"] == "search" and created["metadata"] == {"team": "ml"} and created["retentionDays"] == 30
    assert created["organization"] == {"id": a.org_id, "name": "alpha"}
    pid = created["id"]

    listed = api.ok("GET", "/api/public/organizations/projects", "/api/public/organizations/projects", a.owner_key)
    assert {p["name"] for p in listed["projects"]} == {"alpha app", "search"}
    assert [p["metadata"] for p in listed["projects"] if p["id"] == pid] == [{"team": "ml"}]
    theirs = api.ok("GET", "/api/public/organizations/projects", "/api/public/organizations/projects", b.owner_key)
    assert {p["name"] for p in theirs["projects"]} == {"beta app"}

    for body, status in (({"name": "Search"}, 409), ({"name": ""}, 400), ({}, 400), ({"name": 5}, 400),
                         ({"name": "x2", "retention": 2}, 400), ({"name": "x3", "retention": -1}, 400),
                         ({"name": "x4", "metadata": [1]}, 400), ({"name": "x" * 61}, 400)):
        r = api.call("POST", "/api/public/projects", a.owner_key, body)
        assert r.status_code == status, (body, r.text)
        assert set(r.json()) >= {"message", "error"}

    path = f"/api/public/projects/{pid}"
    updated = api.ok("PUT", "/api/public/projects/{projectId}", path, a.owner_key, {"name": "search v2"})
    assert updated["name"] == "search v2" and updated["metadata"] == {"team": "ml"} and updated["retentionDays"] == 30
    updated = api.ok("PUT", "/api/public/projects/{projectId}", path, a.owner_key,
                     {"name": "search v2", "metadata": None, "retention": 0})
    assert updated["metadata"] == {} and updated["retentionDays"] is None
    assert api.call("PUT", path, a.owner_key, {"name": "alpha app"}).status_code == 409
    assert api.call("PUT", path, b.owner_key, {"name": "stolen"}).status_code == 404
    assert api.call("DELETE", path, b.owner_key).status_code == 404
    assert api.call("PUT", "/api/public/projects/nope", a.owner_key, {"name": "n"}).status_code == 404
    with api.services.sessions() as session:
        assert session.get(Project, pid).name == "search v2"


# ---- project API keys ---------------------------------------------------------------------------
def test_project_api_keys_create_list_delete(api: Api) -> None:
    a, b = api.a, api.b
    base = f"/api/public/projects/{a.project_id}/apiKeys"
    made = api.ok("POST", "/api/public/projects/{projectId}/apiKeys", base, a.admin_key, {"note": "ci"})
    assert made["secretKey"].startswith("sk-lf-") and made["displaySecretKey"].endswith(made["secretKey"][-4:])
    new_key = (made["publicKey"], made["secretKey"])
    assert api.call("GET", "/api/public/projects", new_key).json()["data"][0]["id"] == a.project_id

    pair = (f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}")
    api.ok("POST", "/api/public/projects/{projectId}/apiKeys", base, a.owner_key,
           {"publicKey": pair[0], "secretKey": pair[1]})
    assert api.call("GET", "/api/public/projects", pair).status_code == 200
    for body, status in (({"publicKey": pair[0]}, 400), ({"publicKey": "pk-x", "secretKey": "sk-lf-1"}, 400),
                         ({"publicKey": pair[0], "secretKey": f"sk-lf-{uuid.uuid4()}"}, 409), ({"note": 3}, 400)):
        r = api.call("POST", base, a.owner_key, body)
        assert r.status_code == status, (body, r.text)

    listed = api.ok("GET", "/api/public/projects/{projectId}/apiKeys", base, a.owner_key)
    assert {k["publicKey"] for k in listed["apiKeys"]} == {a.project_key[0], new_key[0], pair[0]}
    assert all("secretKey" not in k for k in listed["apiKeys"])
    assert api.call("GET", base, b.owner_key).status_code == 404  # another organization's project
    assert api.call("POST", base, b.owner_key, {}).status_code == 404

    key_path = f"{base}/{made['id']}"
    assert api.call("DELETE", key_path, b.owner_key).status_code == 404
    api.ok("DELETE", "/api/public/projects/{projectId}/apiKeys/{apiKeyId}", key_path, a.owner_key)
    assert api.call("GET", "/api/public/projects", new_key).status_code == 401
    assert api.call("DELETE", key_path, a.owner_key).status_code == 404

    org_keys = api.ok("GET", "/api/public/organizations/apiKeys", "/api/public/organizations/apiKeys", a.owner_key)
    assert {k["publicKey"] for k in org_keys["apiKeys"]} == {a.owner_key[0], a.admin_key[0]}


# ---- memberships --------------------------------------------------------------------------------
def test_organization_memberships_follow_the_role_rules(api: Api) -> None:
    a, b = api.a, api.b
    path, spec = "/api/public/organizations/memberships", "/api/public/organizations/memberships"
    carol = _user(api, "carol@example.com")
    listed = api.ok("GET", spec, path, a.owner_key)
    assert [(m["email"], m["role"]) for m in listed["memberships"]] == [("owner@alpha.example.com", "OWNER")]

    added = api.ok("PUT", spec, path, a.admin_key, {"userId": carol, "role": "MEMBER"})
    assert added == {"userId": carol, "role": "MEMBER", "email": "carol@example.com", "name": "carol"}
    assert api.ok("PUT", spec, path, a.admin_key, {"userId": carol, "role": "VIEWER"})["role"] == "VIEWER"
    # the ADMIN key may not grant OWNER, nor change or remove an owner; the OWNER key may
    r = api.call("PUT", path, a.admin_key, {"userId": carol, "role": "OWNER"})
    assert r.status_code == 403 and "OWNER" in r.json()["message"]
    assert api.call("DELETE", path, a.admin_key, {"userId": a.owner_id}).status_code == 403
    assert api.call("PUT", path, a.admin_key, {"userId": a.owner_id, "role": "ADMIN"}).status_code == 403
    # the last owner stays
    assert api.call("PUT", path, a.owner_key, {"userId": a.owner_id, "role": "ADMIN"}).status_code == 409
    assert api.call("DELETE", path, a.owner_key, {"userId": a.owner_id}).status_code == 409
    api.ok("PUT", spec, path, a.owner_key, {"userId": carol, "role": "OWNER"})
    assert api.ok("PUT", spec, path, a.owner_key, {"userId": a.owner_id, "role": "ADMIN"})["role"] == "ADMIN"

    for body, status in (({"userId": carol, "role": "KING"}, 400), ({"userId": carol}, 400), ({"role": "MEMBER"}, 400),
                         ({"userId": "nobody", "role": "MEMBER"}, 404)):
        assert api.call("PUT", path, a.owner_key, body).status_code == status, body

    # another organization sees none of it, and cannot remove anyone here
    assert [m["email"] for m in api.ok("GET", spec, path, b.owner_key)["memberships"]] == ["owner@beta.example.com"]
    assert api.call("DELETE", path, b.owner_key, {"userId": carol}).status_code == 404

    removed = api.ok("DELETE", spec, path, a.owner_key, {"userId": a.owner_id})
    assert removed == {"message": "Membership deleted successfully", "userId": a.owner_id}
    assert api.call("DELETE", path, a.owner_key, {"userId": a.owner_id}).status_code == 404
    assert {m["userId"] for m in api.ok("GET", spec, path, a.owner_key)["memberships"]} == {carol}


def test_project_memberships(api: Api) -> None:
    a, b = api.a, api.b
    dave = _user(api, "dave@example.com")
    outsider = _user(api, "eve@example.com")
    api.ok("PUT", "/api/public/organizations/memberships", "/api/public/organizations/memberships", a.owner_key,
           {"userId": dave, "role": "VIEWER"})
    spec = "/api/public/projects/{projectId}/memberships"
    path = f"/api/public/projects/{a.project_id}/memberships"
    roles = {m["email"]: m["role"] for m in api.ok("GET", spec, path, a.owner_key)["memberships"]}
    assert roles == {"owner@alpha.example.com": "OWNER", "dave@example.com": "VIEWER"}

    assert api.ok("PUT", spec, path, a.admin_key, {"userId": dave, "role": "ADMIN"})["role"] == "ADMIN"
    roles = {m["email"]: m["role"] for m in api.ok("GET", spec, path, a.owner_key)["memberships"]}
    assert roles["dave@example.com"] == "ADMIN"
    # the same rules: an ADMIN key grants no OWNER; a user outside the organization is refused
    assert api.call("PUT", path, a.admin_key, {"userId": dave, "role": "OWNER"}).status_code == 403
    assert api.call("PUT", path, a.owner_key, {"userId": outsider, "role": "MEMBER"}).status_code == 404
    assert api.call("PUT", path, a.owner_key, {"userId": dave, "role": "NONE"}).status_code == 400
    # another organization's key cannot see or change this project
    assert api.call("GET", path, b.owner_key).status_code == 404
    assert api.call("PUT", path, b.owner_key, {"userId": dave, "role": "MEMBER"}).status_code == 404

    removed = api.ok("DELETE", spec, path, a.owner_key, {"userId": dave})
    assert removed["userId"] == dave
    roles = {m["email"]: m["role"] for m in api.ok("GET", spec, path, a.owner_key)["memberships"]}
    assert roles["dave@example.com"] == "VIEWER"  # back to the organization role
    assert api.call("DELETE", path, a.owner_key, {"userId": outsider}).status_code == 404


# ---- deletion -----------------------------------------------------------------------------------
def _seed(api: Api, key: tuple[str, str], tag: str) -> str:
    """One trace with a score, a score config, a prompt, a dataset, a comment and an image: rows in
    every store."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    trace_id = f"trace-{tag}"
    batch = [
        {"id": f"e1-{tag}", "type": "trace-create", "timestamp": now,
         "body": {"id": trace_id, "name": "deleted soon", "timestamp": now, "input": "hello"}},
        {"id": f"e2-{tag}", "type": "span-create", "timestamp": now,
         "body": {"id": f"span-{tag}", "traceId": trace_id, "name": "step", "startTime": now}},
        {"id": f"e3-{tag}", "type": "score-create", "timestamp": now,
         "body": {"id": f"score-{tag}", "traceId": trace_id, "name": "quality", "value": 1}},
    ]
    assert api.call("POST", "/api/public/ingestion", key, {"batch": batch}).status_code == 207
    assert api.call("POST", "/api/public/score-configs", key,
                    {"name": "quality", "dataType": "NUMERIC"}).status_code == 200
    assert api.call("POST", "/api/public/v2/prompts", key, {"name": "p", "prompt": "hi", "type": "text"}).is_success
    assert api.call("POST", "/api/public/v2/datasets", key, {"name": "ds"}).status_code == 200
    assert api.call("POST", "/api/public/dataset-items", key, {"datasetName": "ds", "input": "q"}).status_code == 200
    deadline = time.monotonic() + 60
    while api.call("GET", f"/api/public/traces/{trace_id}", key).status_code != 200:
        assert time.monotonic() < deadline, "the trace never became visible"
        time.sleep(0.2)
    assert api.call("POST", "/api/public/comments", key, {"objectType": "TRACE", "objectId": trace_id,
                                                          "content": "x"}).status_code == 200
    import base64
    import hashlib

    png = b"\x89PNG\r\n\x1a\n" + tag.encode() * 10
    r = api.call("POST", "/api/public/media", key, {
        "traceId": trace_id, "field": "input", "contentType": "image/png", "contentLength": len(png),
        "sha256Hash": base64.b64encode(hashlib.sha256(png).digest()).decode()})
    assert r.status_code == 200, r.text
    upload = r.json()["uploadUrl"]
    put = (api.client.put(upload, content=png, headers={"Content-Type": "image/png"})
           if upload.startswith(("http://testserver", "/"))
           else httpx.put(upload, content=png, headers={"Content-Type": "image/png"}, timeout=30))
    assert put.status_code == 200, put.text
    return trace_id


def _oltp_counts(api: Api, project_id: str) -> dict[str, int]:
    counts = {}
    with api.services.sessions() as session:
        for table in Base.metadata.sorted_tables:
            # the deletion's own record and the audit log outlive the project (who deleted it, when)
            if "project_id" in table.c and table.name not in ("project_deletions", "audit_log"):
                counts[table.name] = session.scalar(
                    select(text("count(*)")).select_from(table).where(table.c.project_id == project_id))
        counts["projects"] = int(session.get(Project, project_id) is not None)
    return counts


def _blob_keys(api: Api, project_id: str) -> list[str]:
    return [i.key for i in api.services.blobs.list("") if project_id in i.key.split("/")]


def test_deleting_a_project_removes_it_from_every_store(api: Api) -> None:
    a = api.a
    kept_key = api.ok("POST", "/api/public/projects/{projectId}/apiKeys",
                      f"/api/public/projects/{a.project_id}/apiKeys", a.owner_key, {})
    other = api.ok("POST", "/api/public/projects", "/api/public/projects", a.owner_key, {"name": "keeper"})
    other_key_body = api.ok("POST", "/api/public/projects/{projectId}/apiKeys",
                            f"/api/public/projects/{other['id']}/apiKeys", a.owner_key, {})
    other_key = (other_key_body["publicKey"], other_key_body["secretKey"])
    _seed(api, a.project_key, "gone")
    kept_trace = _seed(api, other_key, "kept")

    before = _oltp_counts(api, a.project_id)
    assert all(before[t] > 0 for t in ("api_keys", "score_configs", "prompts", "datasets", "dataset_items",
                                       "comments", "media", "media_references", "projects")), before
    assert sum(project_row_counts(api.services.olap, a.project_id).values()) > 0
    assert any(k.startswith("events/") for k in _blob_keys(api, a.project_id))
    assert any(k.startswith("media/") for k in _blob_keys(api, a.project_id))

    refused = api.call("DELETE", f"/api/public/projects/{a.project_id}", a.admin_key)
    assert refused.status_code == 403 and "owner" in refused.json()["message"]  # as in the UI
    r = api.call("DELETE", f"/api/public/projects/{a.project_id}", a.owner_key)
    assert r.status_code == 202 and r.json()["success"] is True
    assert contract_errors("DELETE", "/api/public/projects/{projectId}", r.json()) == []
    # gone at once for the API: its keys are refused, it is no longer listed
    assert api.call("GET", "/api/public/projects", a.project_key).status_code == 401
    assert api.call("GET", "/api/public/projects", (kept_key["publicKey"], kept_key["secretKey"])).status_code == 401
    listed = api.call("GET", "/api/public/organizations/projects", a.owner_key).json()["projects"]
    assert [p["id"] for p in listed] == [other["id"]]
    assert api.call("DELETE", f"/api/public/projects/{a.project_id}", a.owner_key).status_code == 404

    deadline = time.monotonic() + 60
    while True:
        with api.services.sessions() as session:
            job = session.scalars(select(ProjectDeletion).where(ProjectDeletion.project_id == a.project_id)).one()
        if job.status == "done":
            break
        assert job.status != "failed", job.error
        assert time.monotonic() < deadline, (job.status, job.step)
        time.sleep(0.2)
    assert (job.steps_done, job.steps_total) == (4, 4) and job.finished_at is not None

    after = _oltp_counts(api, a.project_id)
    assert set(after.values()) == {0}, after
    assert set(project_row_counts(api.services.olap, a.project_id).values()) == {0}
    assert _blob_keys(api, a.project_id) == []
    with api.services.sessions() as session:
        assert session.scalar(select(text("count(*)")).select_from(Media).where(Media.project_id == a.project_id)) == 0
        assert session.get(User, a.owner_id) is not None  # people are not project data

    # the other project of the organization is untouched
    assert api.call("GET", f"/api/public/traces/{kept_trace}", other_key).status_code == 200
    assert all(_oltp_counts(api, other["id"])[t] > 0 for t in ("prompts", "media", "comments"))
    assert any(k.startswith("media/") for k in _blob_keys(api, other["id"]))


def test_the_organization_settings_page_shows_deletion_progress(api: Api) -> None:
    from support.web import WebUser

    with write_transaction(api.services.sessions) as session:
        session.add(ProjectDeletion(project_id="p-x", org_id=api.a.org_id, project_name="Old one", status="running",
                                    step="analytics rows", steps_done=1, steps_total=4))
    owner = WebUser(api.client.app)
    owner.sign_up("boss@example.com", name="Boss")
    api.ok("PUT", "/api/public/organizations/memberships", "/api/public/organizations/memberships",
           api.a.owner_key, {"userId": _find_user(api, "boss@example.com"), "role": "ADMIN"})
    page = owner.get(f"/organization/{api.a.org_id}/settings").text
    assert "Old one" in page and "1/4" in page and "analytics rows" in page
    keys_page = owner.get(f"/organization/{api.a.org_id}/settings/api-keys")
    assert keys_page.status_code == 200 and api.a.admin_key[0] in keys_page.text


def _find_user(api: Api, email: str) -> str:
    with api.services.sessions() as session:
        return session.scalars(select(User.id).where(User.email == email)).one()


# ---- feedback -----------------------------------------------------------------------------------
def test_feedback_is_stored_for_the_keys_project(api: Api) -> None:
    a = api.a
    body = {"targetType": "public-api", "target": "/api/public/traces", "feedback": "  Needs a cursor  ",
            "goal": "page through a day", "referenceUrl": "https://example.com/issue/1"}
    r = api.call("POST", "/api/public/feedback", a.project_key, body)
    assert r.status_code == 201, r.text
    assert contract_errors("POST", "/api/public/feedback", r.json()) == []
    with api.services.sessions() as session:
        row = session.get(Feedback, r.json()["id"])
        assert (row.project_id, row.target_type, row.target, row.feedback, row.goal, row.reference_url) == (
            a.project_id, "public-api", "/api/public/traces", "Needs a cursor", "page through a day",
            "https://example.com/issue/1")
    for bad in ({**body, "targetType": "weather"}, {**body, "feedback": "   "}, {**body, "referenceUrl": "ftp://x"},
                {**body, "extra": 1}, {"targetType": "cli", "target": "x"}, {**body, "target": "t" * 201}):
        r = api.call("POST", "/api/public/feedback", a.project_key, bad)
        assert r.status_code == 400, (bad, r.text)
    assert api.call("POST", "/api/public/feedback", a.owner_key, body).status_code == 403
    with api.services.sessions() as session:
        assert len(session.scalars(select(Feedback)).all()) == 1


def test_organization_api_keys_page_follows_the_roles(api: Api) -> None:
    import html
    import re

    from support.web import WebUser

    a = api.a
    people = {}
    for role in ("ADMIN", "MEMBER"):
        person = WebUser(api.client.app)
        person.sign_up(f"{role.lower()}@alpha.example.com")
        api.ok("PUT", "/api/public/organizations/memberships", "/api/public/organizations/memberships", a.owner_key,
               {"userId": _find_user(api, f"{role.lower()}@alpha.example.com"), "role": role})
        people[role] = person
    base = f"/organization/{a.org_id}/settings/api-keys"
    assert people["MEMBER"].get(base).status_code == 403
    assert people["MEMBER"].post(base, {"note": "x"}).status_code == 403

    admin = people["ADMIN"]
    page = admin.post(base, {"note": "from the ui"})
    assert page.status_code == 200
    text = html.unescape(page.text)
    public = re.search(r'id="new-public-key" class="mono" readonly value="(pk-lf-[^"]+)"', text).group(1)
    secret = re.search(r'id="new-secret-key" class="mono" readonly value="(sk-lf-[^"]+)"', text).group(1)
    # an admin's key acts as ADMIN: it may not grant OWNER
    carol = _user(api, "carol@example.com")
    r = api.call("PUT", "/api/public/organizations/memberships", (public, secret), {"userId": carol, "role": "OWNER"})
    assert r.status_code == 403
    listed = admin.get(base).text
    assert secret not in listed and "from the ui" in listed

    with api.services.sessions() as session:
        from owlscope.storage.oltp.admin_models import OrganizationApiKey

        keys = {k.public_key: k.id for k in session.scalars(select(OrganizationApiKey))}
    # an admin cannot revoke a key that acts as OWNER; their own they can, and it stops working at once
    r = admin.post(f"{base}/{keys[a.owner_key[0]]}/revoke")
    assert r.status_code == 403 and api.call("GET", "/api/public/organizations/projects", a.owner_key).is_success
    assert admin.post(f"{base}/{keys[public]}/revoke").status_code == 303
    assert api.call("GET", "/api/public/organizations/projects", (public, secret)).status_code == 401


HOSTILE = [b"", b"null", b"[]", b'"x"', b"{}", b'{"name": {}}', b'{"name": ["a"], "metadata": "{", "retention": 1e999}',
           b'{"userId": null, "role": 7}', b'{"userId": {"$ne": 1}, "role": "owner"}', b"\xff\xfe garbage",
           b'{"note": "' + b"n" * 100_000 + b'"}', b'{"publicKey": "pk-lf-\\u0000", "secretKey": "sk-lf-\\ud800"}',
           b'{"userName": "a@b.co", "roles": {"value": []}, "name": 5}',
           b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [null, 1]}']


def test_hostile_bodies_get_a_4xx_never_a_5xx(api: Api) -> None:
    a = api.a
    targets = [("POST", "/api/public/projects"), ("PUT", f"/api/public/projects/{a.project_id}"),
               ("POST", f"/api/public/projects/{a.project_id}/apiKeys"),
               ("PUT", "/api/public/organizations/memberships"), ("DELETE", "/api/public/organizations/memberships"),
               ("PUT", f"/api/public/projects/{a.project_id}/memberships"),
               ("DELETE", f"/api/public/projects/{a.project_id}/memberships"),
               ("POST", "/api/public/scim/Users"), ("PATCH", f"/api/public/scim/Users/{a.owner_id}"),
               ("PUT", f"/api/public/scim/Users/{a.owner_id}")]
    for method, path in targets:
        for body in HOSTILE:
            r = api.client.request(method, path, content=body, auth=a.owner_key,
                                   headers={"Content-Type": "application/json"})
            assert r.status_code < 500, (method, path, body[:60], r.text[:300])
            if r.status_code >= 400:
                error = r.json()
                assert {"message", "error"} <= set(error) or {"schemas", "detail", "status"} <= set(error), error
    with api.services.sessions() as session:  # nothing half-written: the organization is as it was
        assert session.get(Project, a.project_id).name == "alpha app"
        assert session.scalar(select(text("count(*)")).select_from(Project).where(Project.org_id == a.org_id)) == 1


def test_an_interrupted_deletion_is_recorded_and_resumed(make_settings, monkeypatch) -> None:
    from owlscope.project_deletion import (
        request_project_deletion,
        resume_project_deletions,
        run_project_deletion,
    )

    app = create_app(make_settings("embedded"), run_worker=False)
    with TestClient(app):
        services = app.state.services
        org = _org(services, "gamma")
        deletion = request_project_deletion(services, org_id=org.org_id, project_id=org.project_id)
        assert services.queue.pending() == 1  # queued for a worker
        real_list = services.blobs.list

        def broken_list(prefix: str):
            raise OSError("blob store unreachable")

        monkeypatch.setattr(services.blobs, "list", broken_list)
        assert run_project_deletion(services, deletion.id) == "failed"
        with services.sessions() as session:
            row = session.get(ProjectDeletion, deletion.id)
            assert (row.status, row.step, row.steps_done) == ("failed", "blobs", 0)
            assert "blob store unreachable" in row.error
            assert session.get(Project, org.project_id) is not None  # nothing after the failed step ran

        monkeypatch.setattr(services.blobs, "list", real_list)
        services.queue.flush()
        assert resume_project_deletions(services) == 1 and services.queue.pending() == 1
        assert run_project_deletion(services, deletion.id) == "done"
        assert run_project_deletion(services, deletion.id) == "done"  # again: nothing left, nothing breaks
        assert resume_project_deletions(services) == 0
        with services.sessions() as session:
            assert session.get(Project, org.project_id) is None
            assert session.get(ProjectDeletion, deletion.id).error is None


def test_a_provisioned_member_without_project_access_shows_as_such(api: Api) -> None:
    from support.web import WebUser

    a = api.a
    r = api.call("POST", "/api/public/scim/Users", a.owner_key, {"userName": "newhire@example.com",
                                                                "name": {"formatted": "New Hire"}})
    assert r.status_code == 201
    admin = WebUser(api.client.app)
    admin.sign_up("lead@alpha.example.com")
    api.ok("PUT", "/api/public/organizations/memberships", "/api/public/organizations/memberships", a.owner_key,
           {"userId": _find_user(api, "lead@alpha.example.com"), "role": "ADMIN"})
    page = admin.get(f"/organization/{a.org_id}/settings/members")
    assert page.status_code == 200
    row = page.text.split("newhire@example.com", 1)[1].split("</tr>", 1)[0]
    assert "No project access" in row and "selected" in row.split("No project access")[0].rsplit("<option", 1)[1]
    # the provisioned person opens no project until someone grants a role
    listed = api.ok("GET", "/api/public/projects/{projectId}/memberships",
                    f"/api/public/projects/{a.project_id}/memberships", a.owner_key)
    assert "newhire@example.com" not in {m["email"] for m in listed["memberships"]}


def test_blob_storage_integrations_answer_organization_keys(make_settings, s3_endpoint: str) -> None:
    """The contract's organization-level blob-storage endpoints: an organization key manages the
    integrations of its organization's projects and sees no other organization's; a project key
    manages only its own project's."""
    app = create_app(make_settings("embedded"), run_worker=False)
    with TestClient(app) as client:
        services = app.state.services
        api = Api(client, services, _org(services, "gamma"), _org(services, "delta"))
        path = "/api/public/integrations/blob-storage"
        body = {"type": "S3_COMPATIBLE", "bucketName": make_bucket(s3_endpoint), "endpoint": s3_endpoint,
                "region": "us-east-1", "accessKeyId": "testing", "secretAccessKey": "testing", "prefix": "x/",
                "exportFrequency": "daily", "enabled": True, "forcePathStyle": True, "fileType": "CSV",
                "exportMode": "FULL_HISTORY", "projectId": api.a.project_id}
        made = api.call("PUT", path, api.a.admin_key, body)
        assert made.status_code == 200, made.text
        integration_id = made.json()["id"]
        assert [i["id"] for i in api.call("GET", path, api.a.admin_key).json()["data"]] == [integration_id]
        assert [i["id"] for i in api.call("GET", path, api.a.project_key).json()["data"]] == [integration_id]
        assert api.call("GET", f"{path}/{integration_id}", api.a.owner_key).json()["projectId"] == api.a.project_id
        # another organization: sees nothing, reaches nothing, cannot write into the first's project
        assert api.call("GET", path, api.b.admin_key).json() == {"data": []}
        assert api.call("GET", f"{path}/{integration_id}", api.b.admin_key).status_code == 404
        assert api.call("DELETE", f"{path}/{integration_id}", api.b.project_key).status_code == 404
        assert api.call("PUT", path, api.b.admin_key, body).status_code == 403
        assert api.call("PUT", path, api.b.project_key, body).status_code == 403
        assert api.call("DELETE", f"{path}/{integration_id}", api.a.admin_key).status_code == 200
        assert api.call("GET", path, api.a.admin_key).json() == {"data": []}


def test_organization_key_actions_are_audited(api: Api) -> None:
    """What an organization key does lands in the audit log under that key, in its organization."""
    base = f"/api/public/projects/{api.a.project_id}"
    created = api.call("POST", f"{base}/apiKeys", api.a.admin_key, {"note": "ci"})
    assert created.status_code == 200, created.text
    assert api.call("DELETE", f"{base}/apiKeys/{created.json()['id']}", api.a.admin_key).status_code == 200
    project = api.call("POST", "/api/public/projects", api.a.owner_key, {"name": "audited", "retention": 0})
    assert project.status_code == 200, project.text
    assert api.call("DELETE", f"/api/public/projects/{project.json()['id']}", api.a.owner_key).status_code == 202
    with api.services.sessions() as session:
        rows, _ = audit.list_entries(session, org_id=api.a.org_id, filters=audit.AuditFilters())
        other, _ = audit.list_entries(session, org_id=api.b.org_id, filters=audit.AuditFilters())
    seen = {(r.action, r.actor_type, r.actor_name, r.resource_id) for r in rows}
    assert ("api_key.created", "api_key", api.a.admin_key[0], created.json()["id"]) in seen
    assert ("api_key.revoked", "api_key", api.a.admin_key[0], created.json()["id"]) in seen
    assert ("project.created", "api_key", api.a.owner_key[0], project.json()["id"]) in seen
    assert ("project.deleted", "api_key", api.a.owner_key[0], project.json()["id"]) in seen
    assert not [r for r in other if r.action.startswith(("api_key.", "project."))]
