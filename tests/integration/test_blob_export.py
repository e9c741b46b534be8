"""Blob storage exports: the API (Langfuse's shapes, validation by a test upload), incremental runs
into the moto S3 server and into a local directory, the watermark (each row version once, none
skipped, a later update exported again), and the worker's scheduled run."""

from __future__ import annotations

import gzip
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import obstore
import orjson
import pytest
from obstore.store import S3Store

from conftest import make_bucket
from owlscope.integrations import exports
from owlscope.tracing.changes import iter_changed
from support.ingest_http import Api
from support.live_api import live_api

PATH = "/api/public/integrations/blob-storage"


@pytest.fixture
def api(make_settings):
    with live_api(make_settings, "embedded", org="o-x", project="p-x") as api:
        yield api


@pytest.fixture
def any_api(make_settings, stack):
    with live_api(make_settings, stack, org="o-x", project="p-x", encryption_key="5e" * 32) as api:
        yield api


def _put(api: Api, body: dict) -> httpx.Response:
    return httpx.put(f"{api.url}{PATH}", json=body, auth=api.auth, timeout=30)


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _send(api: Api, trace_id: str, name: str, at: datetime, *, score: bool = True) -> None:
    ts = _iso(at)
    batch = [{"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": ts,
              "body": {"id": trace_id, "timestamp": ts, "name": name}},
             {"id": str(uuid.uuid4()), "type": "span-create", "timestamp": ts,
              "body": {"id": f"{trace_id}-s", "traceId": trace_id, "startTime": ts, "name": name}}]
    if score:
        batch.append({"id": str(uuid.uuid4()), "type": "score-create", "timestamp": ts,
                      "body": {"id": f"{trace_id}-q", "traceId": trace_id, "name": "q", "value": 1, "timestamp": ts}})
    api.ingest(batch)
    api.wait_for(f"/api/public/traces/{trace_id}", lambda r: r.status_code == 200 and r.json()["name"] == name
                 and len(r.json()["observations"]) == 1)
    if score:
        api.wait_for("/api/public/v2/scores", lambda r: r.status_code == 200 and r.json()["data"], traceId=trace_id)


def _s3_body(endpoint: str, bucket: str, **extra) -> dict:
    return {"type": "S3_COMPATIBLE", "bucketName": bucket, "endpoint": endpoint, "region": "us-east-1",
            "accessKeyId": "testing", "secretAccessKey": "testing", "prefix": "exports/",
            "exportFrequency": "hourly", "enabled": True, "forcePathStyle": True, "fileType": "JSONL",
            "exportMode": "FULL_HISTORY", "compressed": False, **extra}


def _read_all(store, prefix: str) -> dict[str, bytes]:
    out = {}
    for chunk in obstore.list(store, prefix):
        for meta in chunk:
            out[meta["path"]] = bytes(obstore.get(store, meta["path"]).bytes())
    return out


def _rows(files: dict[str, bytes], table: str) -> list[dict]:
    rows = []
    for path, data in sorted(files.items()):
        if f"/{table}/" in path:
            rows += [orjson.loads(line) for line in data.splitlines() if line.strip()]
    return rows


def test_api_validates_and_reports(api: Api, s3_endpoint: str) -> None:
    bucket = make_bucket(s3_endpoint)
    body = _s3_body(s3_endpoint, bucket, projectId=api.project_id)
    for bad, status in ((dict(body, projectId="other"), 403), (dict(body, fileType="XML"), 400),
                        (dict(body, type="AZURE_BLOB_STORAGE"), 400), (dict(body, prefix="no-slash"), 400),
                        (dict(body, bucketName="missing-" + bucket), 400), ({k: v for k, v in body.items()
                                                                          if k != "region"}, 400),
                        (dict(body, exportMode="FROM_CUSTOM_DATE"), 400), (dict(body, enabled="yes"), 400)):
        r = _put(api, bad)
        assert r.status_code == status, (bad, r.text)
        assert r.json()["message"]
    r = httpx.put(f"{api.url}{PATH}", content=b"[1", auth=api.auth, timeout=30)
    assert r.status_code == 400
    r = httpx.put(f"{api.url}{PATH}", json=[body], auth=api.auth, timeout=30)  # not an object
    assert r.status_code == 400 and r.json()["message"]
    assert api.get(PATH).json() == {"data": []}
    assert httpx.get(f"{api.url}{PATH}", timeout=10).status_code == 401

    r = _put(api, body)
    assert r.status_code == 200, r.text
    made = r.json()
    assert made["projectId"] == api.project_id and made["bucketName"] == bucket and made["fileType"] == "JSONL"
    assert "secretAccessKey" not in made and made["compressed"] is False and made["lastSyncAt"] is None
    assert made["exportSource"] == "LEGACY_TRACES_OBSERVATIONS"
    assert api.get(PATH).json()["data"][0]["id"] == made["id"]
    status = api.get(f"{PATH}/{made['id']}").json()
    assert status["syncStatus"] == "queued" and status["enabled"] is True  # next sync: now
    assert api.get(f"{PATH}/nope").status_code == 404

    # An update keeps the id (one integration per project) and the stored secret when none is sent.
    r = _put(api, {k: v for k, v in body.items() if k != "secretAccessKey"} | {"exportFrequency": "daily"})
    assert r.status_code == 200 and r.json()["id"] == made["id"] and r.json()["exportFrequency"] == "daily"
    r = _put(api, dict(body, enabled=False))
    assert api.get(f"{PATH}/{made['id']}").json()["syncStatus"] == "disabled"

    r = httpx.delete(f"{api.url}{PATH}/{made['id']}", auth=api.auth, timeout=10)
    assert r.status_code == 200 and r.json()["message"]
    assert api.get(f"{PATH}/{made['id']}").status_code == 404
    assert httpx.delete(f"{api.url}{PATH}/{made['id']}", auth=api.auth, timeout=10).status_code == 404


def test_incremental_export_to_s3(any_api: Api, s3_endpoint: str) -> None:
    api = any_api
    bucket = make_bucket(s3_endpoint)
    r = _put(api, _s3_body(s3_endpoint, bucket, projectId=api.project_id))
    assert r.status_code == 200, r.text
    services, pid = api.srv.services, api.project_id
    base = datetime.now(UTC) - timedelta(minutes=30)
    ids = [f"t{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    for i, tid in enumerate(ids):
        _send(api, tid, f"first-{i}", base + timedelta(seconds=i))

    first = exports.run_export(services, pid, lag_seconds=0)
    assert first == {"traces": 3, "observations": 3, "scores": 3}
    status = api.get(f"{PATH}/{r.json()['id']}").json()
    assert status["syncStatus"] == "up_to_date" and status["lastSyncAt"] and status["lastError"] is None

    # Nothing new: an empty run. Then trace 0 gets a later update and a new trace arrives.
    assert exports.run_export(services, pid, lag_seconds=0) == {"traces": 0, "observations": 0, "scores": 0}
    new_id = f"t9-{uuid.uuid4().hex[:6]}"
    time.sleep(0.01)
    _send(api, ids[0], "renamed", datetime.now(UTC), score=False)
    _send(api, new_id, "late", datetime.now(UTC))
    third = exports.run_export(services, pid, lag_seconds=0)
    assert third == {"traces": 2, "observations": 2, "scores": 1}

    store = S3Store(bucket, endpoint=s3_endpoint, region="us-east-1", access_key_id="testing",
                    secret_access_key="testing", virtual_hosted_style_request=False,
                    client_options={"allow_http": True})
    files = _read_all(store, f"exports/{pid}/")
    assert len(files) == 9 and all(p.endswith(".jsonl") for p in files)
    traces = _rows(files, "traces")
    # Every (id, version) once; the update of trace 0 is a newer version of it; nothing skipped.
    versions = [(t["id"], t["updatedAt"]) for t in traces]
    assert len(versions) == len(set(versions)) == 5
    assert {t["id"] for t in traces} == {*ids, new_id}
    latest = {}
    for t in sorted(traces, key=lambda t: t["updatedAt"]):
        latest[t["id"]] = t["name"]
    assert latest[ids[0]] == "renamed" and latest[ids[1]] == "first-1"
    assert all(t["projectId"] == pid for t in traces)
    obs = _rows(files, "observations")
    assert sorted(o["traceId"] for o in obs) == sorted([*ids, ids[0], new_id])
    scores = _rows(files, "scores")
    assert sorted(s["id"] for s in scores) == sorted(f"{t}-q" for t in [*ids, new_id])


def test_local_directory_csv_gzip_and_scheduled_run(api: Api) -> None:
    services, pid = api.srv.services, api.project_id
    base = datetime.now(UTC) - timedelta(hours=2)
    tid = f"loc-{uuid.uuid4().hex[:6]}"
    _send(api, tid, "local, \"quoted\"", base)
    body = {"projectId": pid, "type": "S3_COMPATIBLE", "bucketName": "mine", "endpoint": "file://",
            "region": "local", "exportFrequency": "weekly", "enabled": True, "forcePathStyle": False,
            "fileType": "CSV", "exportMode": "FULL_HISTORY"}
    r = _put(api, body)
    assert r.status_code == 200, r.text
    assert r.json()["compressed"] is True
    # The worker's schedule: the periodic task enqueues what is due, the job exports (20 min lag).
    assert exports.schedule_due(services) == [pid]
    deadline = time.monotonic() + 20
    while api.get(f"{PATH}/{r.json()['id']}").json()["syncStatus"] != "up_to_date":
        assert time.monotonic() < deadline, api.get(f"{PATH}/{r.json()['id']}").json()
        time.sleep(0.1)
    root = services.settings.data_dir / "exports" / "mine" / pid
    files = sorted(root.rglob("*.csv.gz"))
    assert [f.parent.name for f in files] == ["observations", "scores", "traces"]
    text = gzip.decompress((root / "traces" / files[2].name).read_bytes()).decode()
    header, row = text.splitlines()[:2]
    assert header.startswith("id,timestamp,name,")
    assert row.startswith(f'{tid},') and '"local, ""quoted"""' in row
    assert exports.schedule_due(services) == []  # next sync a week away


def test_paging_reads_every_row_once(api: Api) -> None:
    olap, pid = api.srv.services.olap, api.project_id
    start = datetime.now(UTC) - timedelta(hours=1)
    ids = sorted(f"p{i}-{uuid.uuid4().hex[:4]}" for i in range(5))
    api.ingest([{"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": _iso(datetime.now(UTC)),
                 "body": {"id": tid, "name": "p"}} for tid in ids])
    api.wait_for("/api/public/traces", lambda r: r.json()["meta"]["totalItems"] == 5)
    end = datetime.now(UTC) + timedelta(seconds=1)
    got = [t["id"] for t in iter_changed(olap, pid, "traces", start, end, page=2)]
    assert got == ids
    assert [t["id"] for t in iter_changed(olap, pid, "traces", end, end + timedelta(hours=1), page=2)] == []
