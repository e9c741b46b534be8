"""Custom dashboards in the UI, in-process: viewers read and members edit; the widget editor keeps
what was typed and says what is wrong; a tile's data is the metrics engine's answer with the
top bar's environment; another project's dashboards are 404; the built-in overview is unchanged."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from owlscope.app import create_app
from owlscope.dashboards import boards, widgets
from owlscope.ingestion.rows import ObservationEvent, TraceEvent, observations_table, traces_table
from owlscope.storage.oltp.models import OrganizationMembership, Project, Role, User
from owlscope.web.numbers import cost
from support.web import WebUser


@dataclass
class Site:
    app: Any
    owner: WebUser
    viewer: WebUser
    project_id: str
    other_project_id: str

    @property
    def services(self) -> Any:
        return self.app.state.services


@pytest.fixture
def site(make_settings) -> Iterator[Site]:
    app = create_app(make_settings(), run_worker=False)
    with TestClient(app):
        owner = WebUser(app)
        owner.sign_up("owner@example.com")
        project_id = owner.onboard("Org", "Main")
        other = WebUser(app)
        other.sign_up("other@example.com")
        other_project_id = other.onboard("Other org", "Theirs")
        viewer = WebUser(app)
        viewer.sign_up("viewer@example.com")
        with app.state.services.sessions() as s, s.begin():
            uid = s.query(User).filter_by(email="viewer@example.com").one().id
            s.add(OrganizationMembership(org_id=s.get(Project, project_id).org_id, user_id=uid, role=Role.VIEWER))
        yield Site(app, owner, viewer, project_id, other_project_id)


def _load(site: Site) -> None:
    now = datetime.now(UTC)
    pid = site.project_id
    traces = [TraceEvent(pid, f"t{i}", now - timedelta(hours=i + 1), timestamp=now - timedelta(hours=i + 1),
                         environment="production" if i < 3 else "staging") for i in range(5)]
    observations = [ObservationEvent(
        pid, f"o{i}", f"t{i}", now - timedelta(hours=i + 1), type="GENERATION", name="llm",
        start_time=now - timedelta(hours=i + 1), model="gpt-4o" if i % 2 else "claude-3",
        cost_details={"total": 1.0 + i}, environment="production" if i < 3 else "staging") for i in range(5)]
    site.services.olap.insert_arrow("trace_events", traces_table(traces))
    site.services.olap.insert_arrow("observation_events", observations_table(observations))


FORM = {"name": "Spend", "description": "", "view": "observations", "measure": "totalCost", "agg": "sum",
        "dimension": "providedModelName", "chart_type": "VERTICAL_BAR", "granularity": "auto", "row_limit": "",
        "bins": "10", "filter_column_0": "name", "filter_operator_0": "any of", "filter_value_0": "llm, other"}


def test_members_edit_viewers_read(site: Site) -> None:
    p = f"/project/{site.project_id}/dashboards"
    r = site.owner.post(p, {"name": "Default", "presets": "1"})
    assert r.status_code == 303
    dashboard_id = r.headers["location"].rsplit("/", 1)[1]
    made = boards.get_dashboard(site.services.sessions, site.project_id, dashboard_id)
    placed = {x["presetId"] for x in made["definition"]["widgets"]}
    assert {"error-rate", "evaluator-scores"} <= placed

    r = site.owner.post(f"{p}/widgets/new", {**FORM, "dashboard": dashboard_id})
    assert r.status_code == 303 and r.headers["location"] == f"{p}/{dashboard_id}"
    (widget,) = widgets.list_widgets(site.services.sessions, site.project_id, _page())["data"]
    assert widget["filters"] == [{"column": "name", "operator": "any of", "type": "stringOptions",
                                  "value": ["llm", "other"], "key": None}]
    assert widget["dimensions"] == [{"field": "providedModelName"}] and widget["chartType"] == "VERTICAL_BAR"

    page = site.viewer.get(f"{p}/{dashboard_id}")
    assert page.status_code == 200 and "Spend" in page.text
    assert 'data-editable="false"' in page.text and "Add to dashboard" not in page.text
    assert site.viewer.get(p).status_code == 200
    for path, form in [(p, {"name": "x"}), (f"{p}/widgets/new", FORM), (f"{p}/{dashboard_id}/delete", {}),
                       (f"{p}/{dashboard_id}/placements", {"ref": "preset:error-rate"}),
                       (f"{p}/widgets/{widget['id']}/delete", {})]:
        assert site.viewer.post(path, form).status_code == 403, path
    assert site.viewer.get(f"{p}/widgets/new").status_code == 403
    layout = site.viewer.client.post(f"{p}/{dashboard_id}/placements/x/layout", json={"x": 1},
                                     headers={"X-CSRF-Token": site.viewer.csrf()})
    assert layout.status_code == 403
    assert len(boards.get_dashboard(site.services.sessions, site.project_id, dashboard_id)["definition"]["widgets"]) \
        == len(made["definition"]["widgets"]) + 1

    # A placed widget is not deleted: the list says why.
    r = site.owner.post(f"{p}/widgets/{widget['id']}/delete", {})
    assert r.status_code == 303
    assert "remove those placements first" in site.owner.get(p).text


def test_layout_endpoint_moves_and_refuses_bad_positions(site: Site) -> None:
    d = boards.create_dashboard(site.services.sessions, site.project_id, {"name": "D", "definition": {"widgets": [
        {"type": "preset", "presetId": "total-cost", "id": "tile"}]}})
    url = f"/project/{site.project_id}/dashboards/{d['id']}/placements/tile/layout"
    token = {"X-CSRF-Token": site.owner.csrf()}
    r = site.owner.client.post(url, json={"x": 3, "y": 2, "width": 9, "height": 4}, headers=token)
    assert r.status_code == 200 and r.json()["x"] == 3
    r = site.owner.client.post(url, json={"x": 4, "width": 9}, headers=token)
    assert r.status_code == 400 and "x + width" in r.json()["message"]
    assert site.owner.client.post(url, json={"x": 1}).status_code == 403  # no CSRF token
    (tile,) = boards.get_dashboard(site.services.sessions, site.project_id, d["id"])["definition"]["widgets"]
    assert (tile["x"], tile["y"], tile["width"], tile["height"]) == (3, 2, 9, 4)


def test_editor_shows_errors_and_keeps_the_form(site: Site) -> None:
    p = f"/project/{site.project_id}/dashboards"
    r = site.owner.post(f"{p}/widgets/new", {**FORM, "name": "Keep me", "chart_type": "NUMBER"})
    assert r.status_code == 400
    assert "a NUMBER chart takes at most 0 dimensions" in r.text and 'value="Keep me"' in r.text
    r = site.owner.post(f"{p}/widgets/new", {**FORM, "filter_column_0": "level", "filter_operator_0": ">",
                                             "filter_value_0": "high"})
    assert r.status_code == 400
    assert widgets.list_widgets(site.services.sessions, site.project_id, _page())["data"] == []
    preview = site.owner.post(f"{p}/widgets/preview", {**FORM, "chart_type": "NUMBER"}, htmx=True)
    assert preview.status_code == 200 and "a NUMBER chart takes at most 0 dimensions" in preview.text
    _load(site)
    preview = site.owner.post(f"{p}/widgets/preview", {**FORM, "filter_column_0": ""}, htmx=True)
    assert "data-dash-chart=" in preview.text and "gpt-4o" in preview.text
    assert site.viewer.post(f"{p}/widgets/preview", FORM, htmx=True).status_code == 403
    made = widgets.create_widget(site.services.sessions, site.project_id, {
        "name": "Edit me", "view": "observations", "dimensions": [], "metrics": [{"measure": "count", "agg": "count"}],
        "filters": [], "chartType": "LINE_TIME_SERIES"})
    copy = site.owner.get(f"{p}/widgets/new", params={"preset": "latency-percentiles"}).text
    assert 'value="Generation latency p50 / p95 (copy)"' in copy
    assert re.search(r'<option value="latency" data-view="observations" selected>', copy)
    assert '<option value="p95" selected>' in copy
    r = site.owner.post(f"{p}/widgets/new", {**FORM, "name": "Two", "measure": "latency", "agg": "p50",
                                             "measure2": "latency", "agg2": "p95", "chart_type": "LINE_TIME_SERIES",
                                             "dimension": "", "granularity": "hour"})
    assert r.status_code == 303, r.text
    (two,) = [w for w in widgets.list_widgets(site.services.sessions, site.project_id, _page())["data"]
              if w["name"] == "Two"]
    assert two["metrics"] == [{"measure": "latency", "agg": "p50"}, {"measure": "latency", "agg": "p95"}]
    assert two["chartConfig"]["granularity"] == "hour"
    form = site.owner.get(f"{p}/widgets/{made['id']}/edit")
    assert form.status_code == 200 and 'value="Edit me"' in form.text
    r = site.owner.post(f"{p}/widgets/{made['id']}/edit", {**FORM, "name": "Edited", "chart_type": "PIE"})
    assert r.status_code == 303
    assert widgets.get_widget(site.services.sessions, site.project_id, made["id"])["chartType"] == "PIE"


def test_tile_data_is_the_metrics_answer_in_the_environment(site: Site) -> None:
    _load(site)
    w = widgets.create_widget(site.services.sessions, site.project_id, {
        "name": "Cost", "view": "observations", "dimensions": [{"field": "providedModelName"}],
        "metrics": [{"measure": "totalCost", "agg": "sum"}], "filters": [], "chartType": "PIE"})
    d = boards.create_dashboard(site.services.sessions, site.project_id, {"name": "D", "definition": {"widgets": [
        {"type": "widget", "widgetId": w["id"], "id": "cost"}, {"type": "preset", "presetId": "total-cost",
                                                                  "id": "total"}]}})
    url = f"/project/{site.project_id}/dashboards/{d['id']}/placements"

    def spec(placement: str) -> dict:
        html = site.owner.get(f"{url}/{placement}/data", params={"range": "24h"}).text
        match = re.search(r"data-dash-chart='([^']*)'", html)
        assert match, html
        return json.loads(match.group(1).replace("&#34;", '"').replace("&amp;", "&"))

    everything = spec("cost")
    assert dict(zip(everything["labels"], everything["series"][0]["data"], strict=True)) == {
        "gpt-4o": pytest.approx(2 + 4), "claude-3": pytest.approx(1 + 3 + 5)}
    assert f">{cost(15)}<" in site.owner.get(f"{url}/total/data").text
    site.owner.post(f"/project/{site.project_id}/environment", {"environment": "production",
                                                                 "next": f"/project/{site.project_id}"})
    production = spec("cost")
    assert dict(zip(production["labels"], production["series"][0]["data"], strict=True)) == {
        "gpt-4o": pytest.approx(2), "claude-3": pytest.approx(1 + 3)}
    assert f">{cost(6)}<" in site.owner.get(f"{url}/total/data").text
    assert site.owner.get(f"{url}/gone/data").status_code == 404

    # The dashboard's own filters, set in its settings form: a column a view lacks leaves that tile be.
    site.owner.post(f"/project/{site.project_id}/environment", {"environment": "", "next": "/"})
    r = site.owner.post(f"/project/{site.project_id}/dashboards/{d['id']}/settings", {
        "name": "Renamed", "description": "", "filter_column_0": "providedModelName", "filter_operator_0": "any of",
        "filter_value_0": "gpt-4o", "filter_column_1": "traceName", "filter_operator_1": "=",
        "filter_value_1": "nope"})
    assert r.status_code == 303
    saved = boards.get_dashboard(site.services.sessions, site.project_id, d["id"])
    assert saved["name"] == "Renamed" and [f["column"] for f in saved["filters"]] == ["providedModelName",
                                                                                       "traceName"]
    # observations have both columns: gpt-4o only, and no trace is named "nope"
    assert "No data in this time range" in site.owner.get(f"{url}/cost/data").text
    boards.update_dashboard(site.services.sessions, site.project_id, d["id"], {"filters": saved["filters"][:1]})
    filtered = spec("cost")
    assert filtered["labels"] == ["gpt-4o"] and filtered["series"][0]["data"] == [pytest.approx(6)]
    traces = boards.add_placement(site.services.sessions, site.project_id, d["id"],
                                  {"type": "preset", "presetId": "traces-over-time"})
    assert "dash-error" not in site.owner.get(f"{url}/{traces['id']}/data").text  # traces have no model column
    # The built-in overview still renders beside the custom dashboards.
    overview = site.owner.get(f"/project/{site.project_id}")
    assert overview.status_code == 200 and 'id="dashboard-data"' in overview.text


def test_another_projects_dashboards_are_404(site: Site) -> None:
    d = boards.create_dashboard(site.services.sessions, site.project_id, {"name": "Mine"})
    w = widgets.create_widget(site.services.sessions, site.project_id, {
        "name": "W", "view": "observations", "dimensions": [], "metrics": [{"measure": "count", "agg": "count"}],
        "filters": [], "chartType": "NUMBER"})
    theirs = f"/project/{site.other_project_id}/dashboards"
    assert site.owner.get(f"{theirs}").status_code == 404  # not a member there
    other = WebUser(site.app)
    other.sign_in("other@example.com")
    assert other.get(f"{theirs}/{d['id']}").status_code == 404
    assert other.get(f"{theirs}/widgets/{w['id']}/edit").status_code == 404
    assert other.post(f"{theirs}/widgets/{w['id']}/delete", {}).status_code == 303
    assert other.post(f"{theirs}/{d['id']}/delete", {}).status_code == 404
    assert widgets.get_widget(site.services.sessions, site.project_id, w["id"])["name"] == "W"
    assert boards.get_dashboard(site.services.sessions, site.project_id, d["id"])["name"] == "Mine"


def _page() -> Any:
    from owlscope.wire import PageRequest

    return PageRequest(1, 100)


@pytest.mark.parametrize(("chart", "dimensions", "agg"), [
    ("LINE_TIME_SERIES", [], "sum"), ("AREA_TIME_SERIES", ["providedModelName"], "avg"),
    ("BAR_TIME_SERIES", ["providedModelName"], "sum"), ("HORIZONTAL_BAR", ["providedModelName"], "p95"),
    ("VERTICAL_BAR", [], "max"), ("PIE", ["environment"], "sum"), ("NUMBER", [], "avg"),
    ("HISTOGRAM", [], "histogram"), ("PIVOT_TABLE", ["providedModelName", "environment"], "sum"),
])
def test_every_chart_type_renders(site: Site, chart: str, dimensions: list[str], agg: str) -> None:
    _load(site)
    w = widgets.create_widget(site.services.sessions, site.project_id, {
        "name": chart, "view": "observations", "dimensions": [{"field": f} for f in dimensions],
        "metrics": [{"measure": "totalCost", "agg": agg}], "filters": [], "chartType": chart})
    d = boards.create_dashboard(site.services.sessions, site.project_id, {"name": "D", "definition": {"widgets": [
        {"type": "widget", "widgetId": w["id"], "id": "t"}]}})
    html = site.owner.get(f"/project/{site.project_id}/dashboards/{d['id']}/placements/t/data").text
    assert "dash-error" not in html and "No data" not in html, html
    if chart == "NUMBER":
        assert f">{cost(3)}<" in html  # (1 + 2 + 3 + 4 + 5) / 5
    elif chart == "PIVOT_TABLE":
        assert html.count("<tr>") == 1 + 4 and "staging" in html  # header + (model, environment) pairs
    else:
        spec = json.loads(re.search(r"data-dash-chart='([^']*)'", html).group(1).replace("&#34;", '"'))
        values = [v for s in spec["series"] for v in s["data"] if v is not None]
        assert values and spec["labels"], spec
        if chart == "HISTOGRAM":
            assert sum(values) == pytest.approx(5)  # every observation in one bin or another
