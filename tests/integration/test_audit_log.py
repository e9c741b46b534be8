"""The audit log on both stacks: every audited action, done through the real UI and API paths,
leaves its entry (actor, project, resource, before/after, address); the organization page filters
and pages them and exports CSV; only owners and admins see it; entries cannot be changed."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError
from web_tracing_data import seed

from owlscope import audit
from owlscope.app import create_app
from owlscope.data_retention import apply_retention
from owlscope.evals.connections import set_default_model
from owlscope.storage.oltp.audit_models import AppendOnlyError, AuditLogEntry
from owlscope.storage.oltp.models import OrganizationMembership, Project, User
from support.web import WebUser

RULES = "/api/public/unstable/evaluation-rules"
EVALS = "/api/public/unstable/evaluators"


@dataclass
class Site:
    app: Any
    owner: WebUser
    project_id: str
    org_id: str
    auth: tuple[str, str]
    key_id: str

    @property
    def services(self) -> Any:
        return self.app.state.services

    @property
    def p(self) -> str:
        return f"/project/{self.project_id}"

    def api(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        r = TestClient(self.app).request(method, path, json=body, params=params, auth=self.auth)
        assert r.status_code in (200, 204), r.text
        return r.json() if r.status_code == 200 else None

    def entries(self, action: str | None = None) -> list[AuditLogEntry]:
        with self.services.sessions() as s:
            q = select(AuditLogEntry).order_by(AuditLogEntry.created_at, AuditLogEntry.id)
            if action:
                q = q.where(AuditLogEntry.action == action)
            return list(s.scalars(q))


@pytest.fixture
def site(stack: str, make_settings) -> Iterator[Site]:
    app = create_app(make_settings(stack, encryption_key="5e" * 32), run_worker=False)
    with TestClient(app):
        owner = WebUser(app)
        owner.sign_up("owner@example.com", name="Owner")
        project_id = owner.onboard("Acme", "Chatbot")
        pk, sk = owner.create_api_key(project_id, "ci")
        with app.state.services.sessions() as s:
            org_id = s.get(Project, project_id).org_id
            key_id = s.scalar(select(AuditLogEntry.resource_id).where(AuditLogEntry.action == "api_key.created"))
        yield Site(app, owner, project_id, org_id, (pk, sk), key_id)


def _one(site: Site, action: str) -> AuditLogEntry:
    found = site.entries(action)
    assert len(found) == 1, (action, [(e.action, e.after) for e in site.entries()])
    return found[0]


def _by_user(e: AuditLogEntry, email: str = "owner@example.com") -> None:
    assert (e.actor_type, e.actor_name, e.ip, e.user_agent) == ("user", email, "testclient", "testclient")


def _by_key(site: Site, e: AuditLogEntry) -> None:
    assert (e.actor_type, e.actor_id, e.actor_name, e.ip) == ("api_key", site.key_id, site.auth[0], "testclient")
    assert (e.org_id, e.project_id) == (site.org_id, site.project_id)


def test_accounts_keys_and_members(site: Site, make_settings) -> None:
    created = _one(site, "api_key.created")
    _by_user(created)
    assert (created.org_id, created.project_id, created.resource_type) == (site.org_id, site.project_id, "api_key")
    assert created.after["public_key"] == site.auth[0] and site.auth[1] not in str(created.after)

    # sign-out, a failed sign-in, a sign-in: one entry each in the user's organization
    assert site.owner.post("/auth/sign-out").status_code == 303
    site.owner.token = None  # a new session, a new CSRF token
    assert site.owner.sign_in("owner@example.com", "wrong-password-123").status_code == 400
    assert site.owner.sign_in("nobody@example.com", "wrong-password-123").status_code == 400
    assert site.owner.sign_in("owner@example.com").status_code == 303
    _by_user(_one(site, "auth.sign_out"))
    signed = _one(site, "auth.sign_in")
    _by_user(signed)
    assert (signed.org_id, signed.after) == (site.org_id, {"method": "password"})
    failed = site.entries("auth.sign_in_failed")
    assert [(e.org_id, e.actor_type, e.actor_name) for e in failed] == [
        (site.org_id, "anonymous", "owner@example.com"), (None, "anonymous", "nobody@example.com")]

    # revoke a key
    assert site.owner.post(f"{site.p}/settings/api-keys/{site.key_id}/revoke").status_code == 303
    revoked = _one(site, "api_key.revoked")
    assert revoked.resource_id == site.key_id and revoked.before["public_key"] == site.auth[0]

    # invite, change the organization role, override the project role, remove
    o = f"/organization/{site.org_id}"
    assert site.owner.post(f"{o}/members", {"email": "bob@example.com", "role": "MEMBER"}).status_code == 200
    invited = _one(site, "member.invited")
    assert invited.after == {"email": "bob@example.com", "role": "MEMBER", "new_account": True}
    with site.services.sessions() as s:
        bob = s.scalar(select(User).where(User.email == "bob@example.com"))
        membership = s.scalar(select(OrganizationMembership).where(OrganizationMembership.user_id == bob.id))
        mine = s.scalar(select(OrganizationMembership.id).where(OrganizationMembership.user_id != bob.id))
    assert site.owner.post(f"{o}/members/{membership.id}/role", {"role": "ADMIN"}).status_code == 303
    changed = _one(site, "member.role_changed")
    assert (changed.before["role"], changed.after["role"], changed.resource_id) == ("MEMBER", "ADMIN", bob.id)
    # a refused change (the last owner) leaves no entry: the entry is in the action's transaction
    assert site.owner.post(f"{o}/members/{mine}/role", {"role": "VIEWER"}).status_code == 409
    assert len(site.entries("member.role_changed")) == 1
    r = site.owner.post(f"{site.p}/settings/members/{bob.id}/role", {"role": "VIEWER"})
    assert r.status_code == 303, r.text
    project_role = _one(site, "project_member.role_changed")
    assert (project_role.project_id, project_role.before["project_role"], project_role.after["project_role"]) == (
        site.project_id, None, "VIEWER")
    assert site.owner.post(f"{o}/members/{membership.id}/remove").status_code == 303
    assert _one(site, "member.removed").before == {"email": "bob@example.com", "role": "ADMIN"}


def test_prompts_evaluators_connections(site: Site) -> None:
    # prompts in the UI: create, move labels, delete
    r = site.owner.post(f"{site.p}/prompts/new", {"name": "greet", "type": "text", "text": "Hi {{name}}"})
    assert r.status_code == 303, r.text
    r = site.owner.post(f"{site.p}/prompts/greet/labels", {"version": "1", "labels": "production"})
    assert r.status_code == 303, r.text
    assert _one(site, "prompt.labels_changed").after == {"version": 1, "labels": ["production"]}
    assert site.owner.post(f"{site.p}/prompts/greet/delete").status_code == 303
    for action in ("prompt.created", "prompt.deleted"):
        e = _one(site, action)
        _by_user(e)
        assert (e.project_id, e.resource_id) == (site.project_id, "greet")

    # prompts through the API
    site.api("POST", "/api/public/v2/prompts", {"name": "api-p", "type": "text", "prompt": "x"})
    site.api("POST", "/api/public/v2/prompts", {"name": "api-p", "type": "text", "prompt": "y"})
    site.api("PATCH", "/api/public/v2/prompts/api-p/versions/1", {"newLabels": ["staging"]})
    site.api("DELETE", "/api/public/v2/prompts/api-p", version=2)
    assert [e.after["version"] for e in site.entries("prompt.created") if e.actor_type == "api_key"] == [1, 2]
    moved = [e for e in site.entries("prompt.labels_changed") if e.actor_type == "api_key"]
    assert len(moved) == 1 and "staging" in moved[0].after["labels"]
    _by_key(site, moved[0])
    deleted = [e for e in site.entries("prompt.deleted") if e.actor_type == "api_key"]
    assert deleted[0].before == {"version": 2, "label": None, "versions_deleted": 1}

    # LLM connections: API create and update, UI delete
    body = {"provider": "openai", "adapter": "openai", "secretKey": "sk-proj-secret-0123456789",
            "baseURL": "http://127.0.0.1:9/v1"}
    conn = site.api("PUT", "/api/public/llm-connections", body)
    site.api("PUT", "/api/public/llm-connections", {**body, "baseURL": "http://127.0.0.1:8/v1"})
    made, updated = _one(site, "llm_connection.created"), _one(site, "llm_connection.updated")
    _by_key(site, made)
    assert made.after["baseURL"] == "http://127.0.0.1:9/v1" and "0123456789" not in str(made.after)
    assert (updated.before["baseURL"], updated.after["baseURL"]) == ("http://127.0.0.1:9/v1", "http://127.0.0.1:8/v1")
    set_default_model(site.services.sessions, site.project_id, provider="openai", model="gpt-4o-mini")

    # evaluators: API create, update, delete; the UI disables and deletes
    template = site.api("POST", EVALS, {"name": "tone", "prompt": "Rate {{output}}", "outputDefinition": {
        "dataType": "NUMERIC", "reasoning": {"description": "why"},
        "score": {"description": "0 to 1", "minValue": 0, "maxValue": 1}}})
    assert _one(site, "eval_template.created").resource_id == template["id"]
    rule = site.api("POST", RULES, {"name": "r1", "target": "observation", "enabled": False,
                                    "evaluators": [{"evaluator": {"name": "conciseness"}}]})
    site.api("PATCH", f"{RULES}/{rule['id']}", {"sampling": 0.5})
    upd = _one(site, "evaluator.updated")
    assert (upd.before["sampling"], upd.after["sampling"]) == (1.0, 0.5)
    site.api("DELETE", f"{RULES}/{rule['id']}")
    assert _one(site, "evaluator.deleted").before["name"] == "r1"
    site.api("DELETE", f"{EVALS}/{template['id']}")
    assert _one(site, "eval_template.deleted").before["name"] == "tone"
    rule2 = site.api("POST", RULES, {"name": "r2", "target": "observation", "enabled": False,
                                     "evaluators": [{"evaluator": {"name": "conciseness"}}]})
    assert site.owner.post(f"{site.p}/evals/{rule2['id']}/enabled", {"enabled": "1"}).status_code == 303
    ui_update = [e for e in site.entries("evaluator.updated") if e.actor_type == "user"]
    assert (ui_update[0].before["enabled"], ui_update[0].after["enabled"]) == (False, True)
    assert site.owner.post(f"{site.p}/evals/{rule2['id']}/delete").status_code == 303
    assert [e.resource_id for e in site.entries("evaluator.deleted") if e.actor_type == "user"] == [rule2["id"]]

    assert site.owner.post(f"{site.p}/settings/llm-connections/{conn['id']}/delete").status_code == 303
    gone = _one(site, "llm_connection.deleted")
    _by_user(gone)
    assert gone.before["provider"] == "openai"


def test_sharing_deletions_privacy_and_project(site: Site) -> None:
    seeded = seed(site.services.olap, site.project_id)
    t1 = seeded.chat_ids[0]
    for shared in ("1", "0"):
        r = site.owner.post(f"{site.p}/share", {"kind": "trace", "id": t1, "shared": shared})
        assert r.status_code == 303, r.text
    assert _one(site, "trace.shared").resource_id == t1 and _one(site, "trace.unshared").resource_id == t1
    site.owner.post(f"{site.p}/share", {"kind": "session", "id": "sess-1", "shared": "1"})
    assert _one(site, "session.shared").resource_id == "sess-1"

    # deletions and erasure through the API
    site.api("DELETE", f"/api/public/traces/{t1}")
    site.api("DELETE", "/api/public/traces", {"traceIds": ["t-x", "t-y"]})
    one, many = site.entries("trace.deleted")
    assert (one.resource_id, many.resource_id, many.before) == (t1, None, {"trace_ids": ["t-x", "t-y"]})
    site.api("DELETE", "/api/public/users/bob")
    site.api("DELETE", "/api/public/sessions/sess-1")
    user, session = _one(site, "user.erased"), _one(site, "session.erased")
    _by_key(site, user)
    assert (user.resource_id, user.after) == ("bob", {"deleted_traces": 1})
    assert (session.resource_id, session.after) == ("sess-1", {"deleted_traces": 2})

    # masking rules and retention: UI and API
    r = site.owner.post(f"{site.p}/settings/privacy/rules", {"kind": "regex", "target": r"\d{3}-\d{4}",
                                                             "replacement": "<NUM>"})
    assert r.status_code == 303, r.text
    rule = site.api("POST", "/api/public/masking-rules", {"kind": "path", "target": "metadata.ssn"})
    site.api("DELETE", f"/api/public/masking-rules/{rule['id']}")
    made = site.entries("masking_rule.created")
    assert [(e.actor_type, e.after["target"]) for e in made] == [("user", r"\d{3}-\d{4}"),
                                                                 ("api_key", "metadata.ssn")]
    assert _one(site, "masking_rule.deleted").before == {"kind": "path", "target": "metadata.ssn",
                                                         "replacement": "<REDACTED>"}
    assert site.owner.post(f"{site.p}/settings/privacy/retention", {"days": "30"}).status_code == 303
    site.api("PATCH", f"/api/public/projects/{site.project_id}", {"retention": 7})
    ui_ret, api_ret = site.entries("retention.changed")
    assert (ui_ret.before, ui_ret.after) == ({"retention_days": None}, {"retention_days": 30})
    assert (api_ret.actor_type, api_ret.before, api_ret.after) == ("api_key", {"retention_days": 30},
                                                                   {"retention_days": 7})
    # what the retention deletes is logged by the system
    assert apply_retention(site.services, now=time.time() + 30 * 86400) == {site.project_id: 1}  # t-sum is left
    applied = _one(site, "retention.applied")
    assert (applied.actor_type, applied.actor_name, applied.project_id, applied.after) == (
        "system", "system", site.project_id, {"retention_days": 7, "deleted_traces": 1})
    assert apply_retention(site.services, now=time.time() + 30 * 86400) == {site.project_id: 0}
    assert len(site.entries("retention.applied")) == 1  # nothing deleted, nothing logged

    # the project: rename and delete (its entries stay)
    assert site.owner.post(f"{site.p}/settings/name", {"name": "Bot"}).status_code == 303
    assert _one(site, "project.renamed").after == {"name": "Bot"}
    assert site.owner.post(f"{site.p}/settings/delete", {"confirm": "Bot"}).status_code == 303
    assert _one(site, "project.deleted").before["name"] == "Bot"
    assert len(site.entries()) == 16  # nothing else was recorded


def test_datasets_and_scores(site: Site) -> None:
    seed(site.services.olap, site.project_id)
    site.api("DELETE", "/api/public/scores/sc-q1")
    _by_key(site, _one(site, "score.deleted"))

    ds = site.api("POST", "/api/public/v2/datasets", {"name": "qa"})
    items = [site.api("POST", "/api/public/dataset-items", {"datasetName": "qa", "input": f"q{i}"})["id"]
             for i in range(2)]
    for run in ("r1", "r2"):
        site.api("POST", "/api/public/dataset-run-items", {"runName": run, "datasetItemId": items[0],
                                                           "traceId": "t-chat-1"})
    site.api("DELETE", "/api/public/datasets/qa/runs/r1")
    r = site.owner.post(f"{site.p}/datasets/{ds['id']}/runs/delete", {"run": "r2"})
    assert r.status_code == 303, r.text
    assert [(e.actor_type, e.resource_id, e.before) for e in site.entries("dataset_run.deleted")] == [
        ("api_key", "r1", {"dataset": "qa"}), ("user", "r2", {"dataset": "qa"})]
    site.api("DELETE", f"/api/public/dataset-items/{items[0]}")
    r = site.owner.post(f"{site.p}/datasets/{ds['id']}/items/delete", {"item_id": items[1]})
    assert r.status_code == 303, r.text
    assert [(e.actor_type, e.resource_id) for e in site.entries("dataset_item.deleted")] == [
        ("api_key", items[0]), ("user", items[1])]
    r = site.owner.post(f"{site.p}/datasets/{ds['id']}/delete", {"confirm_name": "qa"})
    assert r.status_code == 303, r.text
    assert _one(site, "dataset.deleted").before == {"name": "qa"}


def _rows(page: str) -> list[str]:
    body = page.split('id="audit-table"', 1)[1].split("</tbody>", 1)[0] if 'id="audit-table"' in page else ""
    return re.findall(r"<code>([a-z_]+\.[a-z_]+)</code>", body)


def test_page_filters_paging_csv_and_roles(site: Site) -> None:
    o = f"/organization/{site.org_id}/settings/audit-log"
    for i in range(55):
        site.owner.post(f"{site.p}/settings/privacy/retention", {"days": str(i + 1)})
    site.api("DELETE", "/api/public/users/u-1")
    page = site.owner.get(o)
    assert page.status_code == 200 and "Audit log" in page.text
    assert len(_rows(page.text)) == 50 and "Page 1 of 2" in page.text
    assert _rows(page.text)[0] == "user.erased"  # newest first
    second = site.owner.get(o, params={"page": 2})
    assert len(_rows(second.text)) == 7  # 55 + user.erased + api_key.created = 57

    assert set(_rows(site.owner.get(o, params={"action": "retention.changed"}).text)) == {"retention.changed"}
    assert _rows(site.owner.get(o, params={"action": "user"}).text) == ["user.erased"]  # a category
    assert _rows(site.owner.get(o, params={"actor": site.auth[0][:12]}).text) == ["user.erased"]
    assert len(_rows(site.owner.get(o, params={"actor": "OWNER@example"}).text)) == 50
    assert _rows(site.owner.get(o, params={"project": "nope"}).text) == []
    assert _rows(site.owner.get(o, params={"until": "2000-01-01"}).text) == []
    assert len(_rows(site.owner.get(o, params={"since": "2000-01-01", "action": "api_key"}).text)) == 1
    assert site.owner.get(o, params={"since": "yesterday"}).status_code == 400

    r = site.owner.get(f"{o}.csv", params={"action": "retention.changed"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == list(audit.CSV_COLUMNS)
    assert len(rows) == 55 and {x["action"] for x in rows} == {"retention.changed"}
    assert rows[0]["after"] == '{"retention_days": 55}' and rows[0]["actor_name"] == "owner@example.com"
    assert rows[-1]["before"] == '{"retention_days": null}' and rows[0]["project_id"] == site.project_id
    exported = _one(site, "audit_log.exported")
    assert exported.after == {"action": "retention.changed"}
    everything = list(csv.DictReader(io.StringIO(site.owner.get(f"{o}.csv").text)))
    assert len(everything) == 59  # the 57, and both exports
    # the export reads by key in batches: small batches give the same entries in the same order
    with site.services.sessions() as s:
        paged, _ = audit.list_entries(s, org_id=site.org_id, filters=audit.AuditFilters(), per_page=100)
    batched = audit.iter_entries(site.services.sessions, org_id=site.org_id, filters=audit.AuditFilters(), batch=7)
    assert [e.id for e in batched] == [e.id for e in paged] and len(paged) == 59

    # members and viewers get 403; the tab is not shown to them
    for role in ("MEMBER", "VIEWER"):
        email = f"{role.lower()}@example.com"
        site.owner.post(f"/organization/{site.org_id}/members", {"email": email, "role": role})
        with site.services.sessions() as s:
            u = s.scalar(select(User).where(User.email == email))
        from owlscope.accounts.users import set_password
        from owlscope.storage.oltp.db import write_transaction
        with write_transaction(site.services.sessions) as s:
            set_password(s, user=s.get(User, u.id), password="correct-horse-battery")
        other = WebUser(site.app)
        assert other.sign_in(email).status_code == 303
        assert other.get(o).status_code == 403
        assert other.get(f"{o}.csv").status_code == 403
        assert "audit-log" not in other.get(f"/organization/{site.org_id}/settings").text
    assert "audit-log" in site.owner.get(f"/organization/{site.org_id}/settings").text


def test_entries_are_append_only(site: Site) -> None:
    """No way to change an entry: the module offers none, the ORM refuses, the database refuses."""
    public = [n for n in dir(audit) if not n.startswith("_")]
    assert not [n for n in public if re.search(r"update|delete|remove|purge|edit|clear|truncate", n, re.I)]
    with site.services.sessions() as s, s.begin():
        entry = s.scalars(select(AuditLogEntry)).first()
        entry.action = "api_key.revoked"
        with pytest.raises(AppendOnlyError):
            s.flush()
    with site.services.sessions() as s, s.begin():
        s.delete(s.scalars(select(AuditLogEntry)).first())
        with pytest.raises(AppendOnlyError):
            s.flush()
    for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(DatabaseError, match="append-only"), site.services.db.begin() as conn:
            conn.execute(text(sql))
    assert [e.action for e in site.entries()] == ["api_key.created"]
