"""Numbers too large for the databases are a clear 4xx, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from conftest import create_project_key
from owlscope.app import create_app

HUGE = "99999999999999999999"


@pytest.fixture(scope="module")
def api(tmp_path_factory, chdb_dir):
    import uuid

    from owlscope.config import load_settings

    settings = load_settings(data_dir=tmp_path_factory.mktemp("huge"), clickhouse_url=f"chdb://{chdb_dir}",
                             clickhouse_db=f"huge_{uuid.uuid4().hex[:8]}")
    app = create_app(settings, run_worker=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        keys = create_project_key(app.state.services)
        client.auth = (keys["public_key"], keys["secret_key"])
        client.post("/api/public/v2/datasets", json={"name": "ds"})
        yield client


@pytest.mark.parametrize("path", [
    "/api/public/traces", "/api/public/observations", "/api/public/sessions", "/api/public/v2/scores",
    "/api/public/v2/datasets", "/api/public/dataset-items", "/api/public/datasets/ds/runs",
])
def test_a_page_beyond_any_offset_is_a_400(api: TestClient, path: str) -> None:
    r = api.get(path, params={"page": HUGE})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidRequestError" and "page" in r.json()["message"]


def test_a_prompt_version_beyond_any_version_is_a_404(api: TestClient) -> None:
    r = api.get("/api/public/v2/prompts/anything", params={"version": "9223372036854775808"})
    assert r.status_code == 404, r.text
    assert r.json()["error"] == "LangfuseNotFoundError"
