"""Media in the UI's routes: members read their project's media, nobody else does; a shared trace
or session makes the media it refers to readable without signing in, only while it is shared."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from owlscope.accounts.bootstrap import create_org_project_user
from owlscope.app import create_app
from owlscope.ingestion.rows import TraceEvent, traces_table
from owlscope.tracing.sharing import set_shared
from support.web import PASSWORD, WebUser

PNG = b"\x89PNG\r\n\x1a\n" + b"image bytes"
PDF = b"%PDF-1.4 a document"


def _upload(client: TestClient, keys: dict, data: bytes, content_type: str, trace_id: str) -> str:
    auth = (keys["public_key"], keys["secret_key"])
    r = client.post("/api/public/media", auth=auth, json={
        "traceId": trace_id, "field": "input", "contentType": content_type, "contentLength": len(data),
        "sha256Hash": base64.b64encode(hashlib.sha256(data).digest()).decode()}).json()
    assert client.put(r["uploadUrl"], content=data).status_code == 200
    return r["mediaId"]


@pytest.fixture
def web(make_settings) -> Iterator[dict[str, Any]]:
    app = create_app(make_settings(), run_worker=False)
    with TestClient(app) as client:
        services = app.state.services
        keys = create_org_project_user(services.sessions, services.settings, org_name="Org", project_name="P",
                                       email="ada@example.com", password=PASSWORD)
        now = datetime.now(UTC)
        services.olap.insert_arrow("trace_events", traces_table([
            TraceEvent(project_id=keys["project_id"], id=t, event_ts=now, timestamp=now, name=t, session_id="s-1")
            for t in ("t-1", "t-2")]))
        image = _upload(client, keys, PNG, "image/png", "t-1")
        pdf = _upload(client, keys, PDF, "application/pdf", "t-2")
        ada = WebUser(app)
        ada.sign_in("ada@example.com")
        yield {"app": app, "client": client, "services": services, "keys": keys, "image": image, "pdf": pdf,
               "ada": ada, "project": keys["project_id"]}


def test_members_read_their_projects_media(web) -> None:
    ada, project = web["ada"], web["project"]
    r = ada.get(f"/project/{project}/media/{web['image']}")
    assert r.status_code == 200 and r.content == PNG
    assert r.headers["content-type"] == "image/png" and r.headers["content-disposition"].startswith("inline")
    assert "sandbox" in r.headers["content-security-policy"]
    r = ada.get(f"/project/{project}/media/{web['pdf']}", params={"download": "1"})
    assert r.status_code == 200 and r.content == PDF and r.headers["content-disposition"].startswith("attachment")
    assert ada.get(f"/project/{project}/media/unknown").status_code == 404

    stranger = WebUser(web["app"])  # not signed in: sent to sign in
    assert stranger.get(f"/project/{project}/media/{web['image']}").status_code in (302, 303)
    stranger.sign_up("eve@example.com")
    assert stranger.get(f"/project/{project}/media/{web['image']}").status_code == 404


def test_shared_links_read_media_only_while_shared(web) -> None:
    services, project, image, pdf = web["services"], web["project"], web["image"], web["pdf"]
    anyone = TestClient(web["app"])
    trace_url = f"/public/media/{image}?trace=t-1&project={project}"
    assert anyone.get(trace_url).status_code == 404

    set_shared(services.sessions, project_id=project, kind="TRACE", object_id="t-1", shared=True, user_id=None)
    r = anyone.get(trace_url)
    assert r.status_code == 200 and r.content == PNG
    assert anyone.get(f"/public/media/{image}?trace=t-1").status_code == 200  # project found from the share
    # only media that trace refers to
    assert anyone.get(f"/public/media/{pdf}?trace=t-1&project={project}").status_code == 404
    assert anyone.get(f"/public/media/{image}?trace=t-2&project={project}").status_code == 404

    session_url = f"/public/media/{pdf}?session=s-1&project={project}"
    assert anyone.get(session_url).status_code == 404
    set_shared(services.sessions, project_id=project, kind="SESSION", object_id="s-1", shared=True, user_id=None)
    assert anyone.get(session_url).content == PDF
    assert anyone.get(f"/public/media/{image}?trace=t-1&session=s-1&project={project}").status_code == 200

    set_shared(services.sessions, project_id=project, kind="TRACE", object_id="t-1", shared=False, user_id=None)
    set_shared(services.sessions, project_id=project, kind="SESSION", object_id="s-1", shared=False, user_id=None)
    assert anyone.get(trace_url).status_code == 404
    assert anyone.get(session_url).status_code == 404
    assert anyone.get(f"/public/media/{image}").status_code == 404


def test_deleting_the_project_deletes_its_media(web) -> None:
    services, project, ada = web["services"], web["project"], web["ada"]
    assert len(list(services.blobs.list(f"media/{project}/"))) == 2
    r = ada.post(f"/project/{project}/settings/delete", {"confirm": "P"})
    assert r.status_code == 303, r.text
    assert list(services.blobs.list(f"media/{project}/")) == []
    from owlscope.storage.oltp.media_models import Media

    with services.sessions() as session:
        assert session.query(Media).filter_by(project_id=project).count() == 0
