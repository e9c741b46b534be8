"""The lower-severity defects of the campaign, each pinned: session revocation, sign-up switch,
file modes, raw event retention, score validation, HSTS, the CLI's worker switch, migrate while
serving and the address `init` prints."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import httpx
from fastapi.testclient import TestClient

from owlscope.pipeline import blobs, retention
from reliability.helpers import keys_under, project_api, wait_until
from support.web import PASSWORD, WebUser


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def test_a_session_cookie_stops_working_after_sign_out(server) -> None:
    srv = server(run_worker=False)
    user = WebUser(srv.app)
    user.sign_up("leaver@example.com")
    assert user.get("/onboarding").status_code == 200
    stolen = dict(user.client.cookies)
    assert user.post("/auth/sign-out").status_code == 303
    thief = TestClient(srv.app, follow_redirects=False, cookies=stolen)
    assert thief.get("/onboarding").status_code in (302, 303)  # sent to sign in
    again = WebUser(srv.app)
    assert again.sign_in("leaver@example.com").status_code == 303  # signing in again works
    assert again.get("/onboarding").status_code == 200


def test_sign_up_can_be_disabled(server) -> None:
    srv = server(run_worker=False, auth_disable_signup=True)
    visitor = WebUser(srv.app)
    assert "Create one" not in visitor.get("/auth/sign-in").text
    assert visitor.get("/auth/sign-up").status_code == 403
    r = visitor.post("/auth/sign-up", {"email": "x@example.com", "password": PASSWORD, "name": ""})
    assert r.status_code == 403 and "Sign-up is disabled" in r.text
    refused = visitor.sign_in("x@example.com")
    assert refused.status_code == 400  # no account was created
    assert "Create one" not in refused.text  # the sign-in page after a failure offers no sign-up either
    project_api(srv, email="invited@example.com", password=PASSWORD)  # init / invitations still work
    assert WebUser(srv.app).sign_in("invited@example.com").status_code == 303


def test_the_data_directory_is_private(server) -> None:
    srv = server(run_worker=False)
    data_dir = srv.services.settings.data_dir
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for name in ("owlscope.db", "queue.db", "secrets.json"):
        if (data_dir / name).exists():
            assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name


def test_processed_raw_events_are_deleted_after_the_retention_and_with_their_trace(server) -> None:
    srv = server()
    api = project_api(srv)
    services = srv.services
    gone, kept = str(uuid.uuid4()), str(uuid.uuid4())
    for tid in (gone, kept):
        api.ingest([{"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": _now(),
                     "body": {"id": tid, "name": "raw"}}])
        api.trace(tid)
    processed = f"{blobs.PROCESSED}{api.project_id}/"
    wait_until(lambda: len(keys_under(services, processed)) == 2, what="both blobs processed")
    assert httpx.delete(f"{api.url}/api/public/traces/{gone}", auth=api.auth).status_code == 200
    [left] = wait_until(lambda: (lambda keys: keys if len(keys) == 1 else None)(keys_under(services, processed)),
                        what="the deleted trace's raw blob to go")
    assert kept.encode() in blobs.unpack(*_payload(services.blobs.get(left)))
    assert retention.purge_processed(services) == 0  # within the retention
    assert retention.purge_processed(services, now=time.time() + 8 * 86400) == 1
    assert keys_under(services, processed) == []


def _payload(data: bytes) -> tuple[bytes, str | None]:
    env = blobs.decode(data)
    return env.payload, env.content_encoding


def test_scores_with_a_bad_environment_or_an_unknown_config_are_400(server) -> None:
    srv = server(run_worker=False)
    api = project_api(srv)
    trace_id = str(uuid.uuid4())
    base = {"traceId": trace_id, "name": "s", "value": 1}
    r = api.post("/api/public/scores", json={**base, "environment": "bad env!"})
    assert r.status_code == 400 and "environment" in r.json()["message"]
    r = api.post("/api/public/scores", json={**base, "configId": "no-such-config"})
    assert r.status_code == 400 and "configId" in r.json()["message"]
    config = api.post("/api/public/score-configs", json={"name": "s", "dataType": "NUMERIC"}).json()
    assert api.post("/api/public/scores", json={**base, "configId": config["id"]}).status_code == 200
    result = api.ingest([
        {"id": "unknown-config", "type": "score-create", "timestamp": _now(), "body": {**base, "configId": "nope"}},
        {"id": "known-config", "type": "score-create", "timestamp": _now(),
         "body": {**base, "configId": config["id"]}},
    ])
    assert [s["id"] for s in result["successes"]] == ["known-config"]
    assert [e["id"] for e in result["errors"]] == ["unknown-config"]


def test_hsts_when_the_public_url_is_https(server) -> None:
    https = server(run_worker=False, public_url="https://owlscope.example.com")
    r = TestClient(https.app).get("/auth/sign-in")
    assert r.headers["strict-transport-security"].startswith("max-age=")
    plain = server(run_worker=False)
    assert "strict-transport-security" not in TestClient(plain.app).get("/auth/sign-in").headers


def test_serve_honours_owlscope_run_worker_false(monkeypatch, tmp_path) -> None:
    import owlscope.app
    from owlscope.cli import main as cli

    seen: dict = {}

    class FakeServices:
        def close(self) -> None:
            seen["closed"] = True

    monkeypatch.setattr(cli, "_services", lambda settings: FakeServices())
    monkeypatch.setattr(owlscope.app, "create_app", lambda settings, **kw: seen.update(kw) or "app")
    monkeypatch.setattr(cli, "_run_uvicorn", lambda app, settings: seen.update(app=app))
    monkeypatch.setenv("OWLSCOPE_RUN_WORKER", "false")
    umask = os.umask(0o022)
    try:
        assert cli.main(["serve", "--data-dir", str(tmp_path)]) == 0
    finally:
        os.umask(umask)
    assert seen["run_worker"] is False and seen["app"] == "app" and seen["closed"]


def test_init_prints_the_address_it_was_given(tmp_path, capsys) -> None:
    from owlscope.cli import main as cli

    umask = os.umask(0o022)
    try:
        assert cli.main(["init", "--data-dir", str(tmp_path), "--port", "8123"]) == 0
    finally:
        os.umask(umask)
    assert "LANGFUSE_HOST=http://127.0.0.1:8123" in capsys.readouterr().out


def test_migrate_while_the_embedded_store_is_in_use_fails_plainly(server, tmp_path) -> None:
    srv = server(run_worker=False)  # this process holds the chDB directory
    env = {**os.environ, "OWLSCOPE_DATA_DIR": str(tmp_path), "CLICKHOUSE_URL": srv.services.settings.olap_url}
    done = subprocess.run([sys.executable, "-m", "owlscope.cli.main", "migrate"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert "in use by a running server" in done.stderr


def test_timestamps_before_year_1000_read_back_as_iso_8601(server) -> None:
    srv = server()
    api = project_api(srv)
    trace_id = str(uuid.uuid4())
    api.ingest([{"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": "0500-06-01T00:00:00.000Z",
                 "body": {"id": trace_id, "name": "ancient", "timestamp": "0001-01-01T00:00:00Z"}}])
    trace = api.trace(trace_id)
    assert datetime.fromisoformat(trace["timestamp"].replace("Z", "+00:00")).year == 1900  # the stored range
    assert trace["timestamp"].startswith("1900-01-01T")
