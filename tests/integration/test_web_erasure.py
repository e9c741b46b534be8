"""Deleting data from the UI, on both stacks: erasing a user or a session from their pages (typed-id
confirmation, ADMIN) and "Delete selected" on the traces list reach every store the API's
deletions reach (OLAP traces, observations and scores, raw event blobs, media rows and bytes)."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from conftest import LiveServer
from owlscope.auth.passwords import hash_password
from owlscope.pipeline import blobs
from owlscope.storage.oltp.audit_models import AuditLogEntry
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.models import OrganizationMembership, Project, User
from support.ingest_http import Api
from support.web import PASSWORD, WebUser

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082")


@dataclass
class Site:
    api: Api
    owner: WebUser
    member: WebUser

    @property
    def services(self):
        return self.api.srv.services

    @property
    def p(self) -> str:
        return f"/project/{self.api.project_id}"


def _user_with_role(srv: LiveServer, project_id: str, email: str, role: str) -> WebUser:
    with write_transaction(srv.services.sessions) as s:
        org_id = s.get(Project, project_id).org_id
        user = User(email=email, password_hash=hash_password(PASSWORD))
        s.add(user)
        s.flush()
        s.add(OrganizationMembership(org_id=org_id, user_id=user.id, role=role))
    web = WebUser(srv.app)
    assert web.sign_in(email).status_code == 303
    return web


@pytest.fixture
def site(make_settings, stack: str) -> Iterator[Site]:
    srv = LiveServer(make_settings(stack), run_worker=True).__enter__()
    try:
        owner = WebUser(srv.app)  # in-process, on the running server's services
        owner.sign_up("owner@example.com")
        project_id = owner.onboard("Acme", "Support bot")
        public_key, secret_key = owner.create_api_key(project_id)
        member = _user_with_role(srv, project_id, "member@example.com", "MEMBER")
        keys = {"public_key": public_key, "secret_key": secret_key, "project_id": project_id}
        yield Site(Api(srv, keys), owner, member)
    finally:
        queue = srv.services.queue
        srv.__exit__(None, None, None)
        queue.flush()


def _media(api: Api, trace_id: str, data: bytes) -> str:
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    r = api.post("/api/public/media", json={"traceId": trace_id, "field": "input", "contentType": "image/png",
                                            "contentLength": len(data), "sha256Hash": sha})
    assert r.status_code == 200, r.text
    body = r.json()
    if body.get("uploadUrl"):
        url = body["uploadUrl"] if body["uploadUrl"].startswith("http") else api.url + body["uploadUrl"]
        assert httpx.put(url, content=data, headers={"Content-Type": "image/png"}, timeout=30).status_code == 200
        r = httpx.patch(f"{api.url}/api/public/media/{body['mediaId']}", auth=api.auth, timeout=30, json={
            "uploadedAt": "2026-12-04T10:00:00Z", "uploadHttpStatus": 200, "uploadHttpError": None,
            "uploadTimeMs": 5})
        assert r.status_code == 204, r.text
    return body["mediaId"]


def _send(api: Api, *, user: str, session: str, media: bytes) -> tuple[str, str]:
    trace_id = api.send_user_trace(user=user, session=session)
    return trace_id, _media(api, trace_id, media)


def _raw(api: Api, needle: str) -> bool:
    services = api.srv.services
    for prefix in (blobs.PENDING, blobs.PROCESSED, blobs.FAILED):
        for info in services.blobs.list(f"{prefix}{api.project_id}/"):
            env = blobs.decode(services.blobs.get(info.key))
            if needle.encode() in blobs.unpack(env.payload, env.content_encoding):
                return True
    return False


def _present(api: Api, trace_id: str, media_id: str) -> dict[str, bool]:
    return {"trace": api.get(f"/api/public/traces/{trace_id}").status_code == 200,
            "observations": bool(api.get("/api/public/observations", traceId=trace_id).json()["data"]),
            "scores": bool(api.get("/api/public/v2/scores", traceId=trace_id).json()["data"]),
            "raw": _raw(api, trace_id),
            "media": api.get(f"/api/public/media/{media_id}").status_code == 200}


GONE = {"trace": False, "observations": False, "scores": False, "raw": False, "media": False}


def _wait(api: Api, items: list[tuple[str, str]], expected: dict[str, bool] | None = None) -> None:
    deadline = time.monotonic() + 20
    while True:
        states = {t: _present(api, t, m) for t, m in items}
        if all((s == expected) if expected else all(s.values()) for s in states.values()):
            return
        assert time.monotonic() < deadline, states
        time.sleep(0.2)


def _media_blobs(site: Site) -> int:
    return len(list(site.services.blobs.list(f"media/{site.api.project_id}/")))


def test_erasing_a_user_and_a_session_from_their_pages(site: Site) -> None:
    api = site.api
    ada1 = _send(api, user="ada", session="s-1", media=PNG)
    ada2 = _send(api, user="ada", session="s-2", media=PNG + b"\x01")
    bob1 = _send(api, user="bob", session="s-1", media=PNG + b"\x02")
    bob3 = _send(api, user="bob", session="s-3", media=PNG + b"\x03")
    r = api.post("/api/public/scores", json={"sessionId": "s-3", "name": "csat", "value": 4})
    assert r.status_code == 200, r.text
    api.wait_for("/api/public/v2/scores", lambda r: r.json()["data"], sessionId="s-3")
    _wait(api, [ada1, ada2, bob1, bob3])
    assert _media_blobs(site) == 4

    # the button is there for admins and owners only; members are refused
    page = site.owner.get(f"{site.p}/users/ada")
    assert page.status_code == 200 and 'id="erase-button"' in page.text
    assert 'id="erase-button"' not in site.member.get(f"{site.p}/users/ada").text
    assert 'id="erase-button"' not in site.member.get(f"{site.p}/sessions/s-3").text
    assert site.member.get(f"{site.p}/erase", params={"kind": "user", "id": "ada"}).status_code == 403
    r = site.member.post(f"{site.p}/erase", {"kind": "user", "id": "ada", "confirm": "ada"})
    assert r.status_code == 403

    # the dialog, a wrong confirmation (nothing deleted), then the erasure
    dialog = site.owner.get(f"{site.p}/erase", params={"kind": "user", "id": "ada"}, headers={"HX-Request": "true"})
    assert dialog.status_code == 200 and "<dialog open" in dialog.text and 'data-confirm-name="ada"' in dialog.text
    r = site.owner.post(f"{site.p}/erase", {"kind": "user", "id": "ada", "confirm": "ad"}, htmx=True)
    assert r.status_code == 400 and "Type the user id exactly" in r.text
    assert all(_present(api, *ada1).values())
    r = site.owner.post(f"{site.p}/erase", {"kind": "user", "id": "ada", "confirm": "ada"}, htmx=True)
    assert r.status_code == 200 and "Erased user ada: 2 traces deleted" in r.text
    for t in (ada1, ada2):
        assert _present(api, *t) == GONE
    assert all(_present(api, *bob1).values()) and all(_present(api, *bob3).values())
    assert _media_blobs(site) == 2

    # a session, without htmx: a redirect to the sessions list with the result
    assert 'id="erase-button"' in site.owner.get(f"{site.p}/sessions/s-3").text
    r = site.owner.post(f"{site.p}/erase", {"kind": "session", "id": "s-3", "confirm": "s-3"})
    assert r.status_code == 303 and r.headers["location"] == f"{site.p}/sessions"
    assert "Erased session s-3: 1 trace deleted" in site.owner.get(r.headers["location"]).text
    assert _present(api, *bob3) == GONE
    assert api.get("/api/public/v2/scores", sessionId="s-3").json()["data"] == []
    assert all(_present(api, *bob1).values()) and _media_blobs(site) == 1

    with site.services.sessions() as s:
        entries = list(s.scalars(select(AuditLogEntry).where(AuditLogEntry.action.like("%.erased"))
                                 .order_by(AuditLogEntry.created_at)))
    assert [(e.action, e.resource_id, e.actor_name, e.after) for e in entries] == [
        ("user.erased", "ada", "owner@example.com", {"deleted_traces": 2}),
        ("session.erased", "s-3", "owner@example.com", {"deleted_traces": 1})]


def test_deleting_selected_traces_from_the_list(site: Site) -> None:
    api = site.api
    one = _send(api, user="cy", session="s-9", media=PNG + b"\x04")
    two = _send(api, user="cy", session="s-9", media=PNG + b"\x05")
    keep = _send(api, user="cy", session="s-9", media=PNG + b"\x06")
    _wait(api, [one, two, keep])

    listing = site.owner.get(f"{site.p}/traces").text
    assert 'id="trace-bulk"' in listing
    for t, _ in (one, two, keep):
        assert f'name="trace_id" value="{t}" form="trace-bulk"' in listing
    member_listing = site.member.get(f"{site.p}/traces").text
    assert one[0] in member_listing and 'id="bulk-delete"' not in member_listing  # members may export, not delete
    assert site.member.post(f"{site.p}/traces/delete", {"trace_id": one[0]}).status_code == 403
    assert all(_present(api, *one).values())
    assert site.owner.post(f"{site.p}/traces/delete", {}).status_code == 400

    r = site.owner.post(f"{site.p}/traces/delete", {"trace_id": [one[0], two[0]], "next": f"{site.p}/traces?x=1"})
    assert r.status_code == 303 and r.headers["location"] == f"{site.p}/traces?x=1"
    assert "Deleted 2 traces" in site.owner.get(r.headers["location"]).text
    _wait(api, [one, two], GONE)  # raw blobs go in the background, as for DELETE /api/public/traces
    assert all(_present(api, *keep).values())
    with site.services.sessions() as s:
        entry = s.scalar(select(AuditLogEntry).where(AuditLogEntry.action == "trace.deleted"))
    assert entry.before == {"trace_ids": [one[0], two[0]]} and entry.actor_name == "owner@example.com"
