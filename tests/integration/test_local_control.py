"""The local control endpoint that `owlscope backup` uses beside a running server: it exists only in
the process recorded in serve.json, and only for the holder of its token."""

from __future__ import annotations

import httpx

from conftest import LiveServer
from owlscope.ops.runfile import recorded, running_server


def test_olap_export_needs_the_recorded_server_and_its_token(make_settings, tmp_path) -> None:
    with LiveServer(make_settings(), run_worker=False) as srv:
        url = f"{srv.url}/api/local/olap-export"
        dest = str(tmp_path / "olap")
        r = httpx.post(url, json={"dest": dest}, timeout=30)
        assert r.status_code == 404 and r.json()["error"] == "LangfuseNotFoundError"  # not a recorded server
        with recorded(srv.settings) as token:
            assert running_server(srv.settings) is None  # this very process is not "another" server
            r = httpx.post(url, json={"dest": dest}, headers={"Authorization": "Bearer wrong"}, timeout=30)
            assert r.status_code == 401 and "control token" in r.json()["message"]
            r = httpx.post(url, json={"dest": dest}, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            assert r.status_code == 200
            assert set(r.json()["tables"]) >= {"traces", "observations", "scores"}
            assert (tmp_path / "olap" / "traces").is_dir()
        assert not (srv.settings.data_dir / "serve.json").exists()
