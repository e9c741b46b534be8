"""Custom dashboards in a real browser: create a dashboard, create a widget in the editor (placed on
the dashboard), add a built-in one, drag a tile to move it and drag another's corner to resize it,
and see the layout kept after a reload. Screenshots: test-artifacts/screenshots/dashboards-*.png."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from browser import *  # noqa: F403
from browser import onboard, shot, sign_up
from playwright.sync_api import expect

from owlscope.dashboards import boards
from owlscope.ingestion.rows import (
    ObservationEvent,
    ScoreEvent,
    TraceEvent,
    observations_table,
    scores_table,
    traces_table,
)

pytestmark = pytest.mark.browser
T = "dashboards"


def _send_data(server, project_id: str) -> None:
    now = datetime.now(UTC)
    traces, observations = [], []
    for i in range(8):
        ts = now - timedelta(hours=3 * i + 1)
        traces.append(TraceEvent(project_id, f"t{i}", ts, timestamp=ts, name="chat", user_id=f"user-{i % 3}"))
        observations.append(ObservationEvent(
            project_id, f"g{i}", f"t{i}", ts, type="GENERATION", name="llm", start_time=ts,
            end_time=ts + timedelta(seconds=1 + i), model="gpt-4o" if i % 2 else "claude-3",
            level="ERROR" if i == 3 else "DEFAULT", usage_details={"input": 100, "output": 20, "total": 120},
            cost_details={"total": 0.01 * (i + 1)}))
    server.services.olap.insert_arrow("trace_events", traces_table(traces))
    server.services.olap.insert_arrow("observation_events", observations_table(observations))
    scores = [ScoreEvent(project_id, f"s{i}", now - timedelta(hours=3 * i + 1), now - timedelta(hours=3 * i + 1),
                         "faithful" if i % 2 else "relevant", "NUMERIC", "EVAL", value=0.5 + i / 20, trace_id=f"t{i}")
              for i in range(8)]
    server.services.olap.insert_arrow("scores", scores_table(scores))


def _tile(page, name: str):
    return page.locator(".dash-tile", has=page.get_by_role("button", name=f"Move {name}", exact=True))


def _drag(page, handle, dx: float, dy: float) -> None:
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for k in range(1, 6):
        page.mouse.move(x + dx * k / 5, y + dy * k / 5)
    page.mouse.up()


def test_create_place_move_resize_and_reload(live_server, new_page) -> None:
    base = live_server.url
    page = new_page()
    sign_up(page, base, email="boards@example.com")
    project_id = onboard(page, org="Boards", project="Chatbot")
    _send_data(live_server, project_id)

    page.get_by_role("link", name="Custom dashboards").click()
    expect(page.get_by_role("heading", name="Dashboards", exact=True)).to_be_visible()
    page.get_by_label("Dashboard name").fill("Operations")
    page.get_by_label("Start with the default widgets").uncheck()
    page.get_by_role("button", name="Create dashboard").click()
    page.wait_for_url(re.compile(r".*/dashboards/[^/]+$"))
    dashboard_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", name="This dashboard is empty")).to_be_visible()

    # A widget made in the editor lands on the dashboard.
    page.get_by_role("link", name="New widget").click()
    page.get_by_label("Widget name").fill("Cost per model")
    page.get_by_label("Data").select_option("observations")
    page.get_by_label("Metric", exact=True).select_option("totalCost")
    page.get_by_label("Aggregation", exact=True).select_option("sum")
    page.get_by_label("Break down by").select_option("providedModelName")
    page.get_by_label("Chart").select_option("HORIZONTAL_BAR")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#widget-preview canvas[data-dash-chart]")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, T, "widget-editor")
    page.get_by_role("button", name="Create and add to dashboard").click()
    page.wait_for_url(re.compile(rf".*/dashboards/{dashboard_id}$"))
    cost = _tile(page, "Cost per model")
    expect(cost.locator("canvas[data-dash-chart]")).to_be_visible()
    assert '"gpt-4o"' in cost.locator("canvas").get_attribute("data-dash-chart")

    # A built-in widget, appended below.
    page.get_by_label("Widget to add").select_option(label="Error rate")
    page.get_by_role("button", name="Add to dashboard").click()
    errors = _tile(page, "Error rate")
    expect(errors.locator("canvas[data-dash-chart]")).to_be_visible()
    assert (errors.get_attribute("data-x"), errors.get_attribute("data-y")) == ("0", "6")
    shot(page, T, "before-drag")

    # Drag the cost tile six columns right, then resize the error-rate tile by dragging its corner
    # two columns right and two rows down.
    board = page.locator("#dash-board").bounding_box()
    column = (board["width"] + 12) / 12
    _drag(page, cost.get_by_role("button", name="Move Cost per model", exact=True), 6 * column, 0)
    expect(page.locator("#dash-status")).to_have_text("Layout saved")
    assert (cost.get_attribute("data-x"), cost.get_attribute("data-y")) == ("6", "0")
    row = 40 + 12
    _drag(page, errors.get_by_role("button", name="Resize Error rate", exact=True), 2 * column, 2 * row)
    expect(page.locator("#dash-status")).to_have_text("Layout saved")
    assert (errors.get_attribute("data-w"), errors.get_attribute("data-h")) == ("8", "8")
    # And with the keyboard: one row down for the error-rate tile.
    errors.get_by_role("button", name="Move Error rate", exact=True).focus()
    page.keyboard.press("ArrowDown")
    expect(errors).to_have_attribute("data-y", "7")
    expect(page.locator("#dash-status")).to_have_text("Layout saved")

    page.reload()
    cost, errors = _tile(page, "Cost per model"), _tile(page, "Error rate")
    expect(cost).to_have_attribute("data-x", "6")
    expect(cost).to_have_attribute("data-y", "0")
    expect(errors).to_have_attribute("data-w", "8")
    expect(errors).to_have_attribute("data-h", "8")
    expect(errors).to_have_attribute("data-y", "7")
    expect(cost.locator("canvas[data-dash-chart]")).to_be_visible()
    shot(page, T, "after-reload")

    stored = boards.get_dashboard(live_server.services.sessions, project_id, dashboard_id)["definition"]["widgets"]
    assert [(p["type"], p["x"], p["y"], p["width"], p["height"]) for p in stored] == [
        ("widget", 6, 0, 6, 6), ("preset", 0, 7, 8, 8)]

    # The default project dashboard: every built-in widget, each drawn without an error.
    page.get_by_role("link", name="Custom dashboards").click()
    page.get_by_label("Dashboard name").fill("Project dashboard")
    page.get_by_label("Start with the default widgets").check()
    page.get_by_role("button", name="Create dashboard").click()
    page.wait_for_url(re.compile(r".*/dashboards/[^/]+$"))
    tiles = page.locator(".dash-tile")
    expect(tiles).to_have_count(8)
    expect(page.locator(".dash-tile-body", has_text="Loading")).to_have_count(0)
    expect(page.locator(".dash-error")).to_have_count(0)
    expect(page.locator(".dash-empty")).to_have_count(0)
    for name in ("Error rate", "Evaluator scores"):
        expect(_tile(page, name).locator("canvas[data-dash-chart]")).to_be_visible()
    expect(_tile(page, "Top users by cost").get_by_role("cell", name="user-1")).to_be_visible()
    shot(page, T, "default-dashboard")

    page.get_by_role("link", name="Custom dashboards").click()
    expect(page.locator("#dashboards")).to_contain_text("Project dashboard")
    expect(page.locator("#widgets")).to_contain_text("Cost per model")
    shot(page, T, "list")
