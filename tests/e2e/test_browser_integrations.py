"""In a real browser: the traces table's Download menu gives a CSV of what the filters in the
address bar select, and the Integrations tab configures a prompt webhook whose secret is shown once."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from browser import *  # noqa: F403
from browser import onboard, shot, sign_up

from conftest import LiveServer

pytestmark = pytest.mark.browser
T = "integrations"


@pytest.fixture
def server(make_settings) -> Iterator[LiveServer]:
    with LiveServer(make_settings(), run_worker=True) as srv:
        yield srv


def _ingest(server: LiveServer, project_id: str, names: list[str]) -> None:
    from owlscope.auth.keys import create_api_key

    with server.services.sessions() as session, session.begin():
        key, secret = create_api_key(session, project_id=project_id, salt=server.settings.salt)
        auth = (key.public_key, secret)
    ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    batch = [{"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": ts,
              "body": {"id": f"b-{i}", "name": name}} for i, name in enumerate(names)]
    assert httpx.post(f"{server.url}/api/public/ingestion", json={"batch": batch}, auth=auth).status_code == 207
    for _ in range(200):
        if httpx.get(f"{server.url}/api/public/traces", auth=auth).json()["meta"]["totalItems"] == len(names):
            return
        time.sleep(0.05)
    raise AssertionError("traces not stored")


def test_download_menu_and_webhook_tab(server, new_page) -> None:
    page = new_page(accept_downloads=True)
    sign_up(page, server.url, email="dl@example.com")
    pid = onboard(page, org="Acme", project="Exports")
    _ingest(server, pid, ["alpha", "alpha", "beta"])

    page.goto(f"{server.url}/project/{pid}/traces?name=alpha")
    page.locator("details.download-menu summary").click()
    shot(page, T, "download-menu")
    with page.expect_download() as info:
        page.locator('a[data-download-path$="/traces/download"][data-download-format="csv"]').click()
    download = info.value
    assert download.suggested_filename.startswith("traces-") and download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert sorted(r["name"] for r in rows) == ["alpha", "alpha"]

    page.goto(f"{server.url}/project/{pid}/settings/integrations")
    page.get_by_label("Webhook URL").fill("https://hooks.example.com/prompts")
    page.get_by_role("button", name="Create webhook").click()
    secret = page.locator("[data-webhook-secret] code, [data-webhook-secret] pre").first.inner_text().strip()
    assert secret.startswith("whsec_")
    shot(page, T, "webhook-secret")
    page.goto(f"{server.url}/project/{pid}/settings/integrations")
    assert secret not in page.content() and "hooks.example.com" in page.content()
