"""Public sharing: switching a trace or session on makes it readable without signing in (and shows
nothing else of the project); switching off revokes the link at once; a trace the SDK marked public
is public until switched off here; a trace of a shared session opens through the session's link."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from web_tracing_data import Site, insert, open_site, seed

from owlscope.ingestion.rows import TraceEvent
from owlscope.storage.oltp.ui_models import PublicShare
from owlscope.tracing.sharing import share_state


@pytest.fixture
def site(stack: str, make_settings) -> Iterator[Site]:
    with open_site(make_settings, stack) as s:
        seed(s.olap, s.project_id)
        yield s


def _anonymous(site: Site) -> TestClient:
    return TestClient(site.app, follow_redirects=False)


def _share(site: Site, kind: str, object_id: str, on: bool, user=None):
    return (user or site.owner).post(f"{site.base}/share", {"kind": kind, "id": object_id, "shared": "1" if on else "0"},
                                     htmx=True)


def test_sharing_a_trace_on_and_off(site: Site) -> None:
    anon = _anonymous(site)
    url = f"/public/traces/t-chat-2?project={site.project_id}"
    assert anon.get(url).status_code == 404
    r = _share(site, "TRACE", "t-chat-2", True)
    assert r.status_code == 200 and "Stop sharing" in r.text and f"http://testserver{url}" in html.unescape(r.text)

    page = anon.get(url)
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "And if I no longer have access to that email?" in text and "llm-call" in text
    assert "Support bot" not in text and "Acme" not in text  # nothing of the project
    assert 'class="sidebar"' not in text and "/project/" not in text and "Comments" not in text
    assert "Annotate" not in text and "owner@example.com" not in text
    # The observation pane of the public page works too (htmx), and so does its deep link.
    part = anon.get(f"/public/traces/t-chat-2/observations/o-gen-2?project={site.project_id}",
                    headers={"HX-Request": "true"})
    assert part.status_code == 200 and "gpt-4o" in part.text and "/project/" not in part.text
    deep = anon.get(f"{url}&observation=o-gen-2")
    assert deep.status_code == 200 and "You are a helpful support assistant." in html.unescape(deep.text)
    # Another trace of the project is not shared.
    assert anon.get(f"/public/traces/t-chat-1?project={site.project_id}").status_code == 404

    r = _share(site, "TRACE", "t-chat-2", False)
    assert r.status_code == 200 and 'name="shared" value="1"' in r.text and "Stop sharing" not in r.text
    page = anon.get(url)
    assert page.status_code == 404 and "not shared" in page.text
    assert anon.get(f"/public/traces/t-chat-2/observations/o-gen-2?project={site.project_id}",
                    headers={"HX-Request": "true"}).status_code == 404


def test_a_trace_the_sdk_made_public_can_be_switched_off(site: Site) -> None:
    now = datetime.now(UTC)
    insert(site.olap, traces=[TraceEvent(site.project_id, "t-sdk-public", now, timestamp=now, name="sdk-public",
                                         public=True, input='"shared by the app"')])
    anon = _anonymous(site)
    url = f"/public/traces/t-sdk-public?project={site.project_id}"
    assert anon.get(url).status_code == 200
    page = site.owner.get(f"{site.base}/traces/t-sdk-public").text
    assert "Stop sharing" in page and "public=True" in page
    _share(site, "TRACE", "t-sdk-public", False)
    assert anon.get(url).status_code == 404  # the explicit revoke wins over the OLAP flag
    state = share_state(site.services.sessions, project_id=site.project_id, kind="TRACE",
                        object_id="t-sdk-public", sdk_public=True)
    assert not state.public and state.revoked
    _share(site, "TRACE", "t-sdk-public", True)
    assert anon.get(url).status_code == 200
    with site.services.sessions() as s:
        rows = s.query(PublicShare).filter_by(project_id=site.project_id, object_id="t-sdk-public").all()
        assert len(rows) == 1 and rows[0].shared and rows[0].created_by


def test_sharing_a_session_opens_it_and_its_traces(site: Site) -> None:
    anon = _anonymous(site)
    url = f"/public/sessions/sess-1?project={site.project_id}"
    assert anon.get(url).status_code == 404
    _share(site, "SESSION", "sess-1", True)
    page = anon.get(url)
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "How do I reset my password?" in text and "Thanks! Can I enable two-factor" in text
    assert "Support bot" not in text and "/project/" not in text and "Comment" not in text
    # Its traces open through the session's link, but not on their own.
    trace_url = f"/public/traces/t-chat-1?project={site.project_id}&session=sess-1"
    assert f"/public/traces/t-chat-1?project={site.project_id}&session=sess-1" in text
    assert anon.get(trace_url).status_code == 200
    assert anon.get(f"/public/traces/t-chat-1?project={site.project_id}").status_code == 404
    # A trace of another session cannot borrow this session's link.
    assert anon.get(f"/public/traces/t-rag?project={site.project_id}&session=sess-1").status_code == 404
    # Without the project in the link, the one project that shared the id is found.
    assert anon.get("/public/sessions/sess-1").status_code == 200

    _share(site, "SESSION", "sess-1", False)
    assert anon.get(url).status_code == 404 and anon.get(trace_url).status_code == 404


def test_unknown_ids_and_other_projects_are_404(site: Site) -> None:
    from support.web import WebUser

    anon = _anonymous(site)
    assert anon.get(f"/public/traces/nope?project={site.project_id}").status_code == 404
    assert anon.get("/public/traces/t-chat-1?project=no-such-project").status_code == 404
    assert anon.get("/public/sessions/sess-9").status_code == 404
    # Shared in this project: the id does not open another project's trace with the same id.
    other = WebUser(site.app)
    other.sign_up("other@example.com")
    other_project = other.onboard("Other", "Other")
    seed(site.olap, other_project)  # the same ids, in another project
    _share(site, "TRACE", "t-chat-1", True)
    assert anon.get(f"/public/traces/t-chat-1?project={other_project}").status_code == 404
    # Nobody can share another project's traces.
    r = other.post(f"{site.base}/share", {"kind": "TRACE", "id": "t-chat-2", "shared": "1"})
    assert r.status_code == 404
    assert _share(site, "TRACE", "not-a-trace", True).status_code == 404


def test_only_members_share(site: Site) -> None:
    viewer = site.add_member("viewer@example.com", "VIEWER")
    assert _share(site, "TRACE", "t-chat-1", True, user=viewer).status_code == 403
    page = viewer.get(f"{site.base}/traces/t-chat-1").text
    assert "Private" in page and 'value="TRACE"' not in page
    member = site.add_member("member@example.com", "MEMBER")
    assert _share(site, "TRACE", "t-chat-1", True, user=member).status_code == 200
    assert _anonymous(site).get(f"/public/traces/t-chat-1?project={site.project_id}").status_code == 200
