"""/api/public/media on both stacks: local store (signed upload URL served by Owlscope) and S3
(presigned URLs against the moto server). Dedupe, SHA-256 check, allow-list, size limit, expiry,
project isolation and deletion with traces and projects."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import create_project_key
from owlscope.app import create_app
from owlscope.media import tokens
from owlscope.storage.oltp.media_models import Media, MediaReference

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082")


def sha(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def sdk_media_id(data: bytes) -> str:
    return sha(data).replace("+", "-").replace("/", "_")[:22]


@dataclass
class Api:
    client: TestClient
    services: Any
    a: dict
    b: dict
    stack: str

    def auth(self, who: dict | None) -> tuple[str, str]:
        who = who or self.a
        return who["public_key"], who["secret_key"]

    def request_upload(self, data: bytes, who: dict | None = None, **overrides: Any) -> httpx.Response:
        body = {"traceId": "trace-1", "observationId": "obs-1", "field": "input", "contentType": "image/png",
                "contentLength": len(data), "sha256Hash": sha(data), **overrides}
        return self.client.post("/api/public/media", json=body, auth=self.auth(who))

    def put(self, url: str, data: bytes, content_type: str = "image/png") -> httpx.Response:
        headers = {"Content-Type": content_type}
        if url.startswith(("http://testserver", "/")):
            return self.client.put(url, content=data, headers=headers)
        return httpx.put(url, content=data, headers=headers, timeout=30)

    def fetch(self, url: str) -> httpx.Response:
        if url.startswith(("http://testserver", "/")):
            return self.client.get(url)
        return httpx.get(url, timeout=30)

    def patch(self, media_id: str, status: int = 200, who: dict | None = None) -> httpx.Response:
        return self.client.patch(f"/api/public/media/{media_id}", auth=self.auth(who), json={
            "uploadedAt": "2026-12-04T10:00:00Z", "uploadHttpStatus": status, "uploadHttpError": None,
            "uploadTimeMs": 12})

    def get(self, media_id: str, who: dict | None = None) -> httpx.Response:
        return self.client.get(f"/api/public/media/{media_id}", auth=self.auth(who))

    def upload(self, data: bytes, who: dict | None = None, **overrides: Any) -> str:
        r = self.request_upload(data, who, **overrides)
        assert r.status_code == 200, r.text
        body = r.json()
        if body.get("uploadUrl"):
            put = self.put(body["uploadUrl"], data, overrides.get("contentType", "image/png"))
            assert put.status_code == 200, put.text
            assert self.patch(body["mediaId"], who=who).status_code == 204
        return body["mediaId"]


@pytest.fixture
def api(stack: str, make_settings) -> Iterator[Api]:
    app = create_app(make_settings(stack, media_max_mb=1), run_worker=False)
    with TestClient(app) as client:
        services = app.state.services
        a = create_project_key(services, org_name="org a", project_name="a")
        b = create_project_key(services, org_name="org b", project_name="b")
        yield Api(client, services, a, b, stack)


def test_upload_get_and_download_round_trip(api: Api) -> None:
    r = api.request_upload(PNG)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mediaId"] == sdk_media_id(PNG)  # the SDK checks the id it derived itself
    url = body["uploadUrl"]
    if api.stack == "embedded":
        assert url.startswith("http://testserver/api/public/media/") and "token=" in url
    else:
        assert "X-Amz-Signature=" in url and "/media/" in url
    assert api.get(body["mediaId"]).status_code == 404  # nothing stored yet
    assert api.put(url, PNG).status_code == 200
    assert api.patch(body["mediaId"]).status_code == 204

    got = api.get(body["mediaId"])
    assert got.status_code == 200, got.text
    info = got.json()
    assert info["mediaId"] == body["mediaId"] and info["contentType"] == "image/png"
    assert info["contentLength"] == len(PNG) and info["uploadedAt"] and info["urlExpiry"]
    download = api.fetch(info["url"])
    assert download.status_code == 200 and download.content == PNG
    key = f"media/{api.a['project_id']}/{hashlib.sha256(PNG).hexdigest()}"
    assert api.services.blobs.get(key) == PNG

    with api.services.sessions() as session:
        row = session.get(Media, (api.a["project_id"], body["mediaId"]))
        assert row.upload_http_status == 200 and row.upload_time_ms == 12
        refs = session.query(MediaReference).filter_by(project_id=api.a["project_id"]).all()
        assert [(x.trace_id, x.observation_id, x.field) for x in refs] == [("trace-1", "obs-1", "input")]


def test_same_bytes_are_stored_once(api: Api) -> None:
    media_id = api.upload(PNG)
    again = api.request_upload(PNG, traceId="trace-2", observationId=None, field="output")
    assert again.status_code == 200
    assert again.json() == {"uploadUrl": None, "mediaId": media_id}
    with api.services.sessions() as session:
        refs = {(x.trace_id, x.field) for x in session.query(MediaReference).filter_by(media_id=media_id)}
    assert refs == {("trace-1", "input"), ("trace-2", "output")}
    assert len(list(api.services.blobs.list(f"media/{api.a['project_id']}/"))) == 1

    # bytes lost from the store are taken again instead of being reported as stored
    api.services.blobs.delete(f"media/{api.a['project_id']}/{hashlib.sha256(PNG).hexdigest()}")
    lost = api.request_upload(PNG).json()
    assert lost["uploadUrl"] and api.get(media_id).status_code == 404
    assert api.put(lost["uploadUrl"], PNG).status_code == 200 and api.patch(media_id).status_code == 204
    assert api.fetch(api.get(media_id).json()["url"]).content == PNG


def test_wrong_bytes_are_refused_and_not_kept(api: Api) -> None:
    r = api.request_upload(PNG).json()
    tampered = bytes([PNG[0] ^ 1]) + PNG[1:]
    put = api.put(r["uploadUrl"], tampered)
    if api.stack == "embedded":
        assert put.status_code == 400 and put.json()["error"] == "InvalidRequestError"
    else:  # S3 took the bytes; the server checks them when the SDK reports the upload
        assert api.patch(r["mediaId"]).status_code == 400
    assert api.get(r["mediaId"]).status_code == 404
    assert list(api.services.blobs.list(f"media/{api.a['project_id']}/")) == []
    # a correct upload afterwards works
    assert api.put(api.request_upload(PNG).json()["uploadUrl"], PNG).status_code == 200
    api.patch(r["mediaId"])
    assert api.fetch(api.get(r["mediaId"]).json()["url"]).content == PNG


def test_validation(api: Api) -> None:
    bad_type = api.request_upload(PNG, contentType="application/x-msdownload")
    assert bad_type.status_code == 400 and "not allowed" in bad_type.json()["message"]
    too_big = api.request_upload(PNG, contentLength=2 * 1024 * 1024)
    assert too_big.status_code == 413 and too_big.json()["error"] == "PayloadTooLargeError"
    assert api.request_upload(PNG, sha256Hash="abc").status_code == 400
    assert api.request_upload(PNG, field="expectedOutput").status_code == 400
    assert api.request_upload(PNG, traceId=None).status_code == 400
    assert api.request_upload(PNG, traceId=None, datasetId="nope", datasetItemId="i").status_code == 404
    assert api.request_upload(PNG, contentLength=0).status_code == 400
    missing = api.client.post("/api/public/media", json={"traceId": "t"}, auth=api.auth(None))
    assert missing.status_code == 400 and missing.json()["error"] == "InvalidRequestError"
    assert api.client.post("/api/public/media", json={}).status_code == 401
    assert api.get("nope").status_code == 404
    assert api.patch("nope").status_code == 404
    with api.services.sessions() as session:
        assert session.query(Media).count() == 0


@pytest.mark.parametrize("stack", ["embedded"])
def test_local_upload_url_is_signed_expiring_and_bounded(api: Api) -> None:
    r = api.request_upload(PNG).json()
    url = r["uploadUrl"]
    forged = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    assert api.put(forged, PNG).status_code == 403
    expired = tokens.sign(api.services.settings, "upload", project_id=api.a["project_id"], media_id=r["mediaId"],
                          expires_at=time.time() - 1)
    answer = api.put(f"/api/public/media/{r['mediaId']}/upload?token={expired}", PNG)
    assert answer.status_code == 403 and "expired" in answer.json()["message"]
    # a download token is no upload token
    download = tokens.sign(api.services.settings, "download", project_id=api.a["project_id"],
                           media_id=r["mediaId"], expires_at=time.time() + 60)
    assert api.put(f"/api/public/media/{r['mediaId']}/upload?token={download}", PNG).status_code == 403
    assert api.put(url, PNG + b"more").status_code == 413
    assert list(api.services.blobs.list(f"media/{api.a['project_id']}/")) == []
    assert api.put(url, PNG).status_code == 200
    info = api.get(r["mediaId"]).json()
    bad = info["url"].replace("token=", "token=x")
    assert api.fetch(bad).status_code == 403


def test_media_is_never_readable_with_another_projects_key(api: Api) -> None:
    media_id = api.upload(PNG)
    assert api.get(media_id, who=api.b).status_code == 404
    assert api.patch(media_id, who=api.b).status_code == 404
    # project B uploading the same bytes gets its own record and its own copy
    r = api.request_upload(PNG, who=api.b)
    assert r.json()["mediaId"] == media_id and r.json()["uploadUrl"]
    assert api.get(media_id, who=api.b).status_code == 404
    if api.stack == "embedded":  # the signed URL of A's media names A's project
        url = api.get(media_id).json()["url"]
        assert api.fetch(url).content == PNG
        b_token = tokens.sign(api.services.settings, "download", project_id=api.b["project_id"],
                              media_id=media_id, expires_at=time.time() + 60)
        assert api.fetch(f"/api/public/media/{media_id}/content?token={b_token}").status_code == 404


def test_deleting_traces_and_projects_deletes_their_media(api: Api) -> None:
    shared = api.upload(PNG, traceId="t-1")
    api.upload(PNG, traceId="t-2")  # same bytes, second trace
    other = PNG + b"\x00"
    own = api.upload(other, traceId="t-1", contentType="application/octet-stream")
    prefix = f"media/{api.a['project_id']}/"
    assert len(list(api.services.blobs.list(prefix))) == 2

    assert api.client.delete("/api/public/traces/t-1", auth=api.auth(None)).status_code == 200
    assert api.get(own).status_code == 404  # only t-1 referred to it
    assert api.get(shared).status_code == 200  # t-2 still refers to the same bytes
    assert len(list(api.services.blobs.list(prefix))) == 1

    r = api.client.request("DELETE", "/api/public/traces", json={"traceIds": ["t-2"]}, auth=api.auth(None))
    assert r.status_code == 200
    assert api.get(shared).status_code == 404
    assert list(api.services.blobs.list(prefix)) == []

    from owlscope.media import forget_project

    api.upload(PNG, traceId="t-3")
    api.upload(PNG, who=api.b, traceId="t-3")
    assert forget_project(api.services, api.a["project_id"]) == 1
    assert list(api.services.blobs.list(prefix)) == []
    assert api.get(sdk_media_id(PNG), who=api.b).status_code == 200  # B's copy is untouched
