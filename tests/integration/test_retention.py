"""Retention per project, on both stacks: set through the API, applied with the clock moved
forward; traces, observations, scores and raw blobs past it are deleted, newer ones kept."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from owlscope.data_retention import apply_retention
from owlscope.pipeline import blobs
from support.ingest_http import Api
from support.live_api import live_api

DAY = 86400


@pytest.fixture
def api(make_settings, stack):
    with live_api(make_settings, stack, org="o-r", project="p-r") as api:
        yield api


def _send(api: Api, age_days: float) -> str:
    ts = (datetime.now(UTC) - timedelta(days=age_days)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    trace_id = str(uuid.uuid4())
    api.ingest([
        {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": ts, "body": {"id": trace_id, "timestamp": ts,
                                                                                    "name": "t", "input": "hello"}},
        {"id": str(uuid.uuid4()), "type": "span-create", "timestamp": ts,
         "body": {"id": str(uuid.uuid4()), "traceId": trace_id, "startTime": ts, "name": "s"}},
        {"id": str(uuid.uuid4()), "type": "score-create", "timestamp": ts,
         "body": {"id": str(uuid.uuid4()), "traceId": trace_id, "name": "q", "value": 1, "timestamp": ts}},
    ])
    api.trace(trace_id, 1)
    api.wait_for("/api/public/v2/scores", lambda r: r.status_code == 200 and r.json()["data"], traceId=trace_id)
    return trace_id


def _blobs_with(api: Api, needle: str) -> int:
    services, n = api.srv.services, 0
    for prefix in (blobs.PENDING, blobs.PROCESSED):
        for info in services.blobs.list(f"{prefix}{api.project_id}/"):
            env = blobs.decode(services.blobs.get(info.key))
            n += needle.encode() in blobs.unpack(env.payload, env.content_encoding)
    return n


def _gone(api: Api, trace_id: str) -> bool:
    return (api.get(f"/api/public/traces/{trace_id}").status_code == 404
            and api.get("/api/public/observations", traceId=trace_id).json()["data"] == []
            and api.get("/api/public/v2/scores", traceId=trace_id).json()["data"] == [])


def test_retention_deletes_what_is_past_it(api: Api) -> None:
    patch = f"{api.url}/api/public/projects/{api.project_id}"
    for bad in (-1, 10**6, "30", 1.5):
        r = httpx.patch(patch, json={"retention": bad}, auth=api.auth, timeout=30)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["message"]
    other = httpx.patch(f"{api.url}/api/public/projects/someone-else", json={"retention": 1}, auth=api.auth)
    assert other.status_code == 404

    old, new = _send(api, 10), _send(api, 0)
    assert apply_retention(api.srv.services) == {}  # no retention set: nothing happens
    r = httpx.patch(patch, json={"retention": 30}, auth=api.auth, timeout=30)
    assert r.status_code == 200 and r.json()["retentionDays"] == 30
    assert api.get("/api/public/projects").json()["data"][0]["retentionDays"] == 30

    deadline = time.monotonic() + 15
    while _blobs_with(api, new) == 0 or _blobs_with(api, old) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)

    # 25 days later: the trace sent 10 days ago is 35 days old, the other 25
    now = time.time()
    assert apply_retention(api.srv.services, now=now + 25 * DAY) == {api.project_id: 1}
    assert _gone(api, old)
    assert not _gone(api, new)
    assert _blobs_with(api, old) == 0 and _blobs_with(api, new) >= 1

    # 40 days later: everything is past the retention, raw blobs included
    assert apply_retention(api.srv.services, now=now + 40 * DAY) == {api.project_id: 1}
    assert _gone(api, new)
    assert list(api.srv.services.blobs.list(f"{blobs.PROCESSED}{api.project_id}/")) == []

    # 0 turns it off
    assert httpx.patch(patch, json={"retention": 0}, auth=api.auth).json()["retentionDays"] is None
    kept = _send(api, 100)
    assert apply_retention(api.srv.services, now=now + 400 * DAY) == {}
    assert not _gone(api, kept)
