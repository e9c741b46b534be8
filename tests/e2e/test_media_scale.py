"""A 20 MB media upload against a real server does not block its event loop: while the upload is
in flight (the client holds back the rest of the body), a health request is answered; then the
upload completes and the stored bytes are exactly the ones sent. A chunked body (no
Content-Length) larger than declared is cut off with 413 and leaves nothing behind."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Iterator

import httpx
import pytest

from conftest import LiveServer, create_project_key

SIZE = 20 * 1024 * 1024
CHUNK = 1024 * 1024


@pytest.fixture
def server(make_settings) -> Iterator[LiveServer]:
    with LiveServer(make_settings(media_max_mb=32), run_worker=False) as srv:
        yield srv


def _ticket(server: LiveServer, keys: dict, data: bytes, length: int | None = None) -> dict:
    r = httpx.post(f"{server.url}/api/public/media", auth=(keys["public_key"], keys["secret_key"]), json={
        "traceId": "big", "field": "output", "contentType": "audio/wav", "contentLength": length or len(data),
        "sha256Hash": base64.b64encode(hashlib.sha256(data).digest()).decode()}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_health_answers_while_a_20mb_upload_is_in_flight(server: LiveServer) -> None:
    keys = create_project_key(server.services)
    data = os.urandom(SIZE)
    ticket = _ticket(server, keys, data)
    half_sent, release = threading.Event(), threading.Event()

    def body() -> Iterator[bytes]:
        for i in range(0, SIZE, CHUNK):
            if i == SIZE // 2:
                half_sent.set()
                assert release.wait(60)
            yield data[i:i + CHUNK]

    result: dict = {}

    def upload() -> None:
        result["response"] = httpx.put(ticket["uploadUrl"], content=body(), timeout=120,
                                       headers={"Content-Type": "audio/wav"})

    thread = threading.Thread(target=upload)
    thread.start()
    try:
        assert half_sent.wait(60)
        health = httpx.get(f"{server.url}/api/public/health", timeout=30)
        assert health.status_code == 200 and health.json()["status"] == "OK"
        assert "response" not in result  # the upload was still in flight when health answered
    finally:
        release.set()
        thread.join(120)
    assert result["response"].status_code == 200, result["response"].text
    info = httpx.get(f"{server.url}/api/public/media/{ticket['mediaId']}",
                     auth=(keys["public_key"], keys["secret_key"]), timeout=30).json()
    assert info["contentLength"] == SIZE
    got = httpx.get(info["url"], timeout=60)
    assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()


def test_a_chunked_body_longer_than_declared_is_cut_off(server: LiveServer) -> None:
    keys = create_project_key(server.services)
    data = os.urandom(3 * CHUNK)
    ticket = _ticket(server, keys, data[:CHUNK], length=CHUNK)
    r = httpx.put(ticket["uploadUrl"], content=iter([data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]),
                  timeout=60)
    assert r.status_code == 413 and r.json()["error"] == "PayloadTooLargeError"
    assert list(server.services.blobs.list(f"media/{keys['project_id']}/")) == []
    assert httpx.get(f"{server.url}/api/public/media/{ticket['mediaId']}",
                     auth=(keys["public_key"], keys["secret_key"]), timeout=30).status_code == 404


@pytest.mark.parametrize("stack", ["scaleout", "embedded"])
def test_two_web_processes_share_media(make_settings, stack: str) -> None:
    """Scale-out: the upload URL handed out by one web process is accepted and reported through
    another, and a third read serves it. With S3 the bytes go straight to the bucket; with a local
    store the processes share its directory and the signing secret."""
    settings = make_settings(stack)
    with LiveServer(settings, run_worker=False) as one, LiveServer(settings, run_worker=False) as two:
        keys = create_project_key(one.services)
        auth = (keys["public_key"], keys["secret_key"])
        data = os.urandom(CHUNK)
        ticket = _ticket(one, keys, data)
        url = ticket["uploadUrl"]
        if stack == "embedded":  # sent to the other process
            assert url.startswith(one.url)
            url = url.replace(one.url, two.url)
        else:
            assert "X-Amz-Signature=" in url
        assert httpx.put(url, content=data, headers={"Content-Type": "audio/wav"}, timeout=60).status_code == 200
        patched = httpx.patch(f"{two.url}/api/public/media/{ticket['mediaId']}", auth=auth, timeout=30, json={
            "uploadedAt": "2026-12-04T10:00:00Z", "uploadHttpStatus": 200})
        assert patched.status_code == 204
        info = httpx.get(f"{one.url}/api/public/media/{ticket['mediaId']}", auth=auth, timeout=30).json()
        assert httpx.get(info["url"], timeout=60).content == data
        again = httpx.post(f"{two.url}/api/public/media", auth=auth, timeout=30, json={
            "traceId": "other", "field": "input", "contentType": "audio/wav", "contentLength": len(data),
            "sha256Hash": base64.b64encode(hashlib.sha256(data).digest()).decode()}).json()
        assert again == {"uploadUrl": None, "mediaId": ticket["mediaId"]}
