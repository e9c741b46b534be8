"""A project's custom masking rules: the API (create, list, delete, refusals, project scope), their
effect at ingestion (cache dropped on change), and the Privacy settings tab with its live preview."""

from __future__ import annotations

import html
import uuid

import pytest
from fastapi.testclient import TestClient

from conftest import LiveServer, create_project_key
from owlscope.app import create_app
from support.ingest_http import Api
from support.web import WebUser

SSN, ORDER = "078-05-1120", "ORD-884213"


@pytest.fixture
def server(make_settings, stack):
    srv = LiveServer(make_settings(stack), run_worker=True).__enter__()
    try:
        yield srv
    finally:
        queue = srv.services.queue
        srv.__exit__(None, None, None)
        queue.flush()


def _trace(api: Api, **body) -> dict:
    trace_id = str(uuid.uuid4())
    api.ingest([{"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": "2026-01-01T00:00:00.000Z",
                 "body": {"id": trace_id, **body}}])
    return api.trace(trace_id)


def test_rules_api_and_ingestion(server) -> None:
    api = Api(server, create_project_key(server.services, org_name="o1", project_name="p1"))
    other = Api(server, create_project_key(server.services, org_name="o2", project_name="p2"))
    body = {"input": f"order {ORDER} shipped", "metadata": {"customer": {"ssn": SSN, "tier": "gold"}}}

    # refusals: 400 with a JSON message, nothing stored
    for bad in ({"kind": "regex", "target": "ORD-("}, {"kind": "path", "target": "metadata..ssn"},
                {"kind": "glob", "target": "*"}, {"kind": "regex", "target": "  "}):
        r = api.post("/api/public/masking-rules", json=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["message"] and r.json()["error"]
    assert api.get("/api/public/masking-rules").json() == {"data": []}

    before = _trace(api, **body)  # cached masker: none yet
    assert before["input"] == body["input"]

    regex = api.post("/api/public/masking-rules", json={"kind": "regex", "target": r"\bORD-\d{6}\b",
                                                        "replacement": "<ORDER>"})
    path = api.post("/api/public/masking-rules", json={"kind": "path", "target": "metadata.customer.ssn",
                                                       "replacement": "<SSN>"})
    assert regex.status_code == 200 and path.status_code == 200, (regex.text, path.text)
    listed = api.get("/api/public/masking-rules").json()["data"]
    assert [(r["kind"], r["target"]) for r in listed] == [("regex", r"\bORD-\d{6}\b"), ("path", "metadata.customer.ssn")]
    assert other.get("/api/public/masking-rules").json() == {"data": []}

    masked = _trace(api, **body)  # the change applies at once (the project's cache entry is dropped)
    assert masked["input"] == "order <ORDER> shipped"
    assert masked["metadata"]["customer"] == {"ssn": "<SSN>", "tier": "gold"}
    assert _trace(other, **body)["input"] == body["input"]  # another project's rules do not apply

    preview = api.post("/api/public/masking-rules/preview", json={
        "sample": f'{{"metadata": {{"customer": {{"ssn": "{SSN}"}}}}, "note": "{ORDER} for bob"}}',
        "kind": "regex", "target": "bob", "replacement": "<NAME>"})
    assert preview.status_code == 200
    assert SSN not in preview.text and ORDER not in preview.text and "<NAME>" in preview.json()["masked"]

    # another project cannot delete it; the owner can, and text is kept again
    assert _delete(other, regex.json()["id"]) == 404
    assert _delete(api, regex.json()["id"]) == 200
    assert _delete(api, regex.json()["id"]) == 404
    assert _trace(api, **body)["input"] == body["input"]


def _delete(api: Api, rule_id: str) -> int:
    import httpx

    return httpx.delete(f"{api.url}/api/public/masking-rules/{rule_id}", auth=api.auth, timeout=30).status_code


def test_privacy_tab_preview_and_rule_editing(make_settings) -> None:
    app = create_app(make_settings("embedded", masking_detectors="email,credit_card:hash"), run_worker=False)
    with TestClient(app):
        owner = WebUser(app)
        owner.sign_up("owner@example.com", name="Owner")
        project_id = owner.onboard("Acme", "Chatbot")
        base = f"/project/{project_id}/settings/privacy"

        page = owner.get(base)
        assert page.status_code == 200
        title = page.text.split("<title>", 1)[1].split("</title>", 1)[0]
        assert "<" not in title and "Privacy" in title  # the page's title is text, not a copy of its body
        assert page.text.count('id="retention"') == 1
        assert 'data-detector="email"' in page.text and 'data-detector="credit_card"' in page.text
        text = html.unescape(page.text)
        assert "No custom rules." in text
        assert "<EMAIL>" in text and "<CREDIT_CARD:" in text  # the server-side preview of the sample

        sample = f'{{"input": "mail jane@example.com", "metadata": {{"customer": {{"ssn": "{SSN}"}}}}}}'
        r = owner.post(f"{base}/preview", {"sample": sample, "kind": "path", "target": "metadata.customer.ssn",
                                           "replacement": "<SSN>"})
        shown = html.unescape(r.text)
        assert r.status_code == 200 and "<EMAIL>" in shown and "<SSN>" in shown
        assert "jane@example.com" not in shown and SSN not in shown
        r = owner.post(f"{base}/preview", {"sample": "x", "kind": "regex", "target": "("})
        assert "data-preview-error" in r.text

        bad = owner.post(f"{base}/rules", {"kind": "regex", "target": "(", "replacement": "<X>"})
        assert bad.status_code == 400 and "invalid regular expression" in html.unescape(bad.text)
        ok = owner.post(f"{base}/rules", {"kind": "path", "target": "metadata.customer.ssn", "replacement": "<SSN>"})
        assert ok.status_code == 303
        listed = html.unescape(owner.get(base).text)
        assert "metadata.customer.ssn" in listed
        # the saved rule now applies to previews without a draft
        r = owner.post(f"{base}/preview", {"sample": sample})
        assert "<SSN>" in html.unescape(r.text)

        rule_id = listed.split('data-rule="', 1)[1].split('"', 1)[0]
        assert owner.post(f"{base}/rules/{rule_id}/delete", {}).status_code == 303
        assert "No custom rules." in html.unescape(owner.get(base).text)

        # the retention on the same tab
        assert owner.post(f"{base}/retention", {"days": "soon"}).status_code == 400
        assert owner.post(f"{base}/retention", {"days": "-3"}).status_code == 400
        assert owner.post(f"{base}/retention", {"days": "30"}).status_code == 303
        assert 'value="30"' in owner.get(base).text

        # erasure from the same tab: refused without an id, done (0 traces here) with one
        assert owner.post(f"{base}/erase", {"kind": "user", "value": " "}).status_code == 400
        done = owner.post(f"{base}/erase", {"kind": "session", "value": "s-1"})
        assert done.status_code == 303
        assert "Deleted 0 traces of session s-1" in html.unescape(owner.get(base).text)
