"""Erasure, on both stacks: deleting a user's data or a session reaches every store (OLAP traces,
observations and scores, raw blobs) and leaves other users and sessions alone."""

from __future__ import annotations

import time

import httpx
import pytest

from conftest import create_project_key
from owlscope.pipeline import blobs
from support.ingest_http import Api
from support.live_api import live_api


@pytest.fixture
def api(make_settings, stack):
    with live_api(make_settings, stack, org="o-e", project="p-e") as api:
        yield api


def _raw(api: Api, needle: str) -> int:
    services, n = api.srv.services, 0
    for prefix in (blobs.PENDING, blobs.PROCESSED, blobs.FAILED):
        for info in services.blobs.list(f"{prefix}{api.project_id}/"):
            env = blobs.decode(services.blobs.get(info.key))
            n += needle.encode() in blobs.unpack(env.payload, env.content_encoding)
    return n


def _present(api: Api, trace_id: str) -> dict[str, bool]:
    return {"trace": api.get(f"/api/public/traces/{trace_id}").status_code == 200,
            "observations": bool(api.get("/api/public/observations", traceId=trace_id).json()["data"]),
            "scores": bool(api.get("/api/public/v2/scores", traceId=trace_id).json()["data"]),
            "raw": _raw(api, trace_id) > 0}


def _wait_everywhere(api: Api, ids: list[str]) -> None:
    deadline = time.monotonic() + 20
    while not all(all(_present(api, t).values()) for t in ids):
        assert time.monotonic() < deadline, {t: _present(api, t) for t in ids}
        time.sleep(0.2)


def test_user_and_session_erasure_reach_every_store(api: Api) -> None:
    ada1 = api.send_user_trace(user="ada", session="s-1")
    ada2 = api.send_user_trace(user="ada", session="s-2")
    bob1 = api.send_user_trace(user="bob", session="s-1")
    bob3 = api.send_user_trace(user="bob", session="s-3")
    r = api.post("/api/public/scores", json={"sessionId": "s-3", "name": "csat", "value": 4})
    assert r.status_code == 200, r.text
    api.wait_for("/api/public/v2/scores", lambda r: r.json()["data"], sessionId="s-3")
    _wait_everywhere(api, [ada1, ada2, bob1, bob3])

    r = httpx.delete(f"{api.url}/api/public/users/ada", auth=api.auth, timeout=30)
    assert r.status_code == 200 and r.json()["deletedTraces"] == 2
    for t in (ada1, ada2):
        assert _present(api, t) == {"trace": False, "observations": False, "scores": False, "raw": False}
    assert all(_present(api, bob1).values())

    r = httpx.delete(f"{api.url}/api/public/sessions/s-3", auth=api.auth, timeout=30)
    assert r.status_code == 200 and r.json()["deletedTraces"] == 1
    assert _present(api, bob3) == {"trace": False, "observations": False, "scores": False, "raw": False}
    assert api.get("/api/public/v2/scores", sessionId="s-3").json()["data"] == []
    assert all(_present(api, bob1).values())

    # another project's key erases nothing here
    other = Api(api.srv, create_project_key(api.srv.services, org_name="o-x", project_name="p-x"))
    r = httpx.delete(f"{api.url}/api/public/users/bob", auth=other.auth, timeout=30)
    assert r.status_code == 200 and r.json()["deletedTraces"] == 0
    assert all(_present(api, bob1).values())
