"""Deleting data in a real browser: tick rows of the traces list and "Delete selected" (confirmed),
then erase a user from their page through the dialog that asks for the id; and the audit log page
lists both. Screenshots go to test-artifacts/screenshots/privacy-*.png."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from browser import *  # noqa: F403
from browser import onboard, shot, sign_up
from playwright.sync_api import expect

from owlscope.ingestion.rows import TraceEvent, traces_table
from owlscope.storage.oltp.models import Project

pytestmark = pytest.mark.browser
T = "privacy"


def _traces(live_server, project_id: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [TraceEvent(project_id, tid, now - timedelta(minutes=i), timestamp=now - timedelta(minutes=i),
                       name=f"turn-{tid}", user_id=user, session_id="s-1", environment="production")
            for i, (tid, user) in enumerate([("t-alpha", "bob"), ("t-beta", "bob"), ("t-gamma", "bob"),
                                             ("t-delta", "ada")])]
    live_server.services.olap.insert_arrow("trace_events", traces_table(rows))


def test_delete_selected_traces_and_erase_a_user(live_server, new_page) -> None:
    base = live_server.url
    page = new_page()
    sign_up(page, base, email="owner@example.com")
    project_id = onboard(page, org="Acme", project="Support bot")
    _traces(live_server, project_id)

    page.goto(f"{base}/project/{project_id}/traces")
    expect(page.get_by_role("link", name="turn-t-alpha")).to_be_visible()
    page.locator("input[name=trace_id][value='t-alpha']").check()
    page.locator("input[name=trace_id][value='t-beta']").check()
    assert page.url.endswith("/traces")  # ticking a box does not open the row
    page.once("dialog", lambda dialog: dialog.accept())
    shot(page, T, "traces-selected")
    page.get_by_role("button", name="Delete selected").click()
    expect(page.get_by_text("Deleted 2 traces")).to_be_visible()
    expect(page.get_by_role("link", name="turn-t-gamma")).to_be_visible()
    expect(page.get_by_role("link", name="turn-t-alpha")).to_have_count(0)
    expect(page.get_by_role("link", name="turn-t-beta")).to_have_count(0)

    page.goto(f"{base}/project/{project_id}/users/ada")
    page.get_by_role("link", name="Erase user data").click()
    dialog = page.locator("dialog.owl-dialog")
    expect(dialog).to_be_visible()
    erase = dialog.get_by_role("button", name="Erase user data")
    expect(erase).to_be_disabled()
    dialog.get_by_label(re.compile("Type the user id")).fill("ad")
    expect(erase).to_be_disabled()
    dialog.get_by_label(re.compile("Type the user id")).fill("ada")
    expect(erase).to_be_enabled()
    shot(page, T, "erase-dialog")
    erase.click()
    expect(dialog.get_by_text("Erased user ada: 1 trace deleted")).to_be_visible()
    shot(page, T, "erase-done")
    dialog.get_by_role("link", name="Back to users").click()
    page.wait_for_url(re.compile(r".*/users$"))
    expect(page.get_by_role("link", name="bob")).to_be_visible()
    expect(page.get_by_role("link", name="ada", exact=True)).to_have_count(0)

    with live_server.services.sessions() as session:
        org = session.get(Project, project_id).org_id
    page.goto(f"{base}/organization/{org}/settings/audit-log")
    table = page.locator("#audit-table")
    expect(table.get_by_text("user.erased")).to_be_visible()
    expect(table.get_by_text("trace.deleted")).to_be_visible()
    shot(page, T, "audit-log")
