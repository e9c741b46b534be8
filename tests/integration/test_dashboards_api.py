"""/api/public/unstable/dashboards, their placements and /api/public/unstable/dashboard-widgets on
both stacks: every operation, the 409s, 404 across projects, 400s for bad definitions; and a
widget's data equal to GET /api/public/v2/metrics's answer for the widget's query."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import create_project_key
from owlscope.app import create_app
from owlscope.dashboards.definitions import API_VIEWS, query_version
from owlscope.dashboards.presets import PRESETS
from owlscope.dashboards.widgets import widget_data
from owlscope.ingestion.rows import (
    ObservationEvent,
    ScoreEvent,
    TraceEvent,
    observations_table,
    scores_table,
    traces_table,
)

DASHBOARDS = "/api/public/unstable/dashboards"
WIDGETS = "/api/public/unstable/dashboard-widgets"
WIDGET_KEYS = {"id", "createdAt", "updatedAt", "name", "description", "view", "dimensions", "metrics", "filters",
               "chartType", "chartConfig"}
COST_BY_MODEL = {
    "name": "Cost by model", "view": "observations", "dimensions": [{"field": "providedModelName"}],
    "metrics": [{"measure": "totalCost", "agg": "sum"}], "filters": [], "chartType": "HORIZONTAL_BAR",
}


@dataclass
class Api:
    client: TestClient
    services: Any
    a: tuple[str, str]
    b: tuple[str, str]
    project_a: str

    def call(self, method: str, path: str, body: Any = None, auth: tuple[str, str] | None = None,
             **params: Any) -> httpx.Response:
        return self.client.request(method, path, params=params, auth=auth or self.a,
                                   **({"json": body} if body is not None else {}))

    def ok(self, method: str, path: str, body: Any = None, **params: Any) -> dict:
        r = self.call(method, path, body, **params)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def api(stack: str, make_settings) -> Iterator[Api]:
    app = create_app(make_settings(stack), run_worker=False)
    with TestClient(app) as client:
        a = create_project_key(app.state.services, project_name="a")
        b = create_project_key(app.state.services, project_name="b")
        yield Api(client, app.state.services, (a["public_key"], a["secret_key"]),
                  (b["public_key"], b["secret_key"]), a["project_id"])


def _error(r: httpx.Response, status: int, code: str, text: str = "") -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and isinstance(body["message"], str), body
    assert text in body["message"], body
    return body


def test_widget_create_read_list_update_delete(api: Api) -> None:
    w = api.ok("POST", WIDGETS, COST_BY_MODEL)
    assert set(w) == WIDGET_KEYS and w["description"] == ""
    assert w["chartConfig"] == {"type": "HORIZONTAL_BAR", "row_limit": 100, "show_value_labels": None, "bins": None,
                                "defaultSort": None, "granularity": None}
    assert w["createdAt"].endswith("Z") and w["metrics"] == [{"measure": "totalCost", "agg": "sum"}]
    assert api.ok("GET", f"{WIDGETS}/{w['id']}") == w

    second = api.ok("POST", WIDGETS, {
        "name": "Evaluator scores", "description": "avg per evaluator", "view": "scores-numeric",
        "dimensions": [{"field": "name"}], "metrics": [{"measure": "value", "agg": "avg"}],
        "filters": [{"column": "source", "operator": "any of", "type": "stringOptions", "value": ["EVAL"]}],
        "chartType": "LINE_TIME_SERIES", "chartConfig": {"granularity": "day"}})
    assert second["filters"] == [{"column": "source", "operator": "any of", "type": "stringOptions",
                                  "value": ["EVAL"], "key": None}]
    assert second["chartConfig"]["type"] == "LINE_TIME_SERIES" and second["chartConfig"]["granularity"] == "day"

    listed = api.ok("GET", WIDGETS)
    assert [x["id"] for x in listed["data"]] == [second["id"], w["id"]]  # most recently updated first
    assert listed["meta"] == {"page": 1, "limit": 50, "totalItems": 2, "totalPages": 1}
    page2 = api.ok("GET", WIDGETS, page=2, limit=1)
    assert [x["id"] for x in page2["data"]] == [w["id"]] and page2["meta"]["totalPages"] == 2

    # A new chart type without a config resets the config to that type's defaults.
    updated = api.ok("PATCH", f"{WIDGETS}/{w['id']}", {"chartType": "PIE", "name": "Cost share"})
    assert updated["name"] == "Cost share" and updated["chartConfig"]["type"] == "PIE"
    assert updated["dimensions"] == w["dimensions"] and updated["updatedAt"] >= w["updatedAt"]
    assert api.ok("GET", WIDGETS)["data"][0]["id"] == w["id"]
    kept = api.ok("PATCH", f"{WIDGETS}/{second['id']}", {"description": "still daily"})
    assert kept["chartConfig"]["granularity"] == "day"

    assert api.ok("DELETE", f"{WIDGETS}/{w['id']}") == {"message": "Dashboard widget deleted"}
    _error(api.call("GET", f"{WIDGETS}/{w['id']}"), 404, "resource_not_found")
    assert api.ok("GET", WIDGETS)["meta"]["totalItems"] == 1


@pytest.mark.parametrize(("change", "message"), [
    ({"view": "traces"}, "view must be one of observations"),
    ({"view": "spans"}, "view must be one of"),
    ({"chartType": "DONUT"}, "chartType must be one of"),
    ({"metrics": []}, "metrics needs 1 to"),
    ({"metrics": [{"measure": "totalCost", "agg": "median"}]}, "agg must be one of"),
    ({"metrics": [{"measure": "happiness", "agg": "sum"}]}, "Invalid measure 'happiness'"),
    ({"dimensions": [{"field": "colour"}]}, "Invalid dimension 'colour'"),
    ({"dimensions": [{"field": "name"}, {"field": "type"}]}, "at most 1 dimension"),
    ({"filters": [{"column": "nope", "operator": "=", "type": "string", "value": "x"}]}, "nope"),
    ({"filters": [{"column": "name", "operator": "=", "value": "x"}]}, "filters[0].type"),
    ({"chartConfig": {"type": "PIE"}}, "must match chartType"),
    ({"chartConfig": {"row_limit": 0}}, "row_limit"),
    ({"chartType": "HISTOGRAM"}, "HISTOGRAM chart takes"),
    ({"name": ""}, "name must be"),
    ({"dimensions": "name"}, "dimensions must be a list"),
])
def test_bad_widget_definitions_are_400(api: Api, change: dict, message: str) -> None:
    _error(api.call("POST", WIDGETS, {**COST_BY_MODEL, **change}), 400, "invalid_body", message)
    assert api.ok("GET", WIDGETS)["data"] == []


def test_bad_bodies_and_patches(api: Api) -> None:
    _error(api.call("POST", WIDGETS, [1, 2]), 400, "invalid_body", "JSON object")
    r = api.client.post(WIDGETS, content=b"{not json", auth=api.a, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_body"
    w = api.ok("POST", WIDGETS, COST_BY_MODEL)
    _error(api.call("PATCH", f"{WIDGETS}/{w['id']}", {}), 400, "invalid_body", "at least one")
    _error(api.call("PATCH", f"{WIDGETS}/{w['id']}", {"view": "traces"}), 400, "invalid_body", "view must be")
    _error(api.call("PATCH", f"{WIDGETS}/{w['id']}", {"metrics": [{"measure": "x", "agg": "sum"}]}), 400,
           "invalid_body")
    assert api.ok("GET", f"{WIDGETS}/{w['id']}") == w  # nothing half-written
    _error(api.call("POST", DASHBOARDS, {"description": "no name"}), 400, "invalid_body", "name")
    d = api.ok("POST", DASHBOARDS, {"name": "D"})
    _error(api.call("POST", f"{DASHBOARDS}/{d['id']}/placements", {"type": "chart", "widgetId": w["id"]}), 400,
           "invalid_body", "type must be widget or preset")
    _error(api.call("POST", f"{DASHBOARDS}/{d['id']}/placements",
                    {"type": "widget", "widgetId": w["id"], "x": 8, "width": 6}), 400, "invalid_body", "x + width")
    _error(api.call("POST", f"{DASHBOARDS}/{d['id']}/placements", {"type": "preset", "presetId": "nope"}), 404,
           "resource_not_found")
    _error(api.call("PATCH", f"{DASHBOARDS}/{d['id']}", {"definition": {"widgets": [{"type": "widget"}]}}), 400,
           "invalid_body", "widgetId")
    assert api.ok("GET", f"{DASHBOARDS}/{d['id']}")["definition"] == {"widgets": []}


def test_dashboards_and_placements(api: Api) -> None:
    w = api.ok("POST", WIDGETS, COST_BY_MODEL)
    d = api.ok("POST", DASHBOARDS, {"name": "Costs", "description": "money"})
    assert d["definition"] == {"widgets": []} and d["filters"] == [] and d["description"] == "money"
    assert api.ok("GET", f"{DASHBOARDS}/{d['id']}") == d

    # Omitted position: x 0, a 6x6 tile, below every tile.
    p1 = api.ok("POST", f"{DASHBOARDS}/{d['id']}/placements", {"type": "widget", "widgetId": w["id"]})
    assert p1 == {"type": "widget", "id": p1["id"], "widgetId": w["id"], "x": 0, "y": 0, "width": 6, "height": 6}
    p2 = api.ok("POST", f"{DASHBOARDS}/{d['id']}/placements",
                {"type": "preset", "presetId": "error-rate", "id": "errors", "x": 6, "width": 6, "height": 4})
    assert p2 == {"type": "preset", "id": "errors", "presetId": "error-rate", "x": 6, "y": 6, "width": 6,
                  "height": 4}
    _error(api.call("POST", f"{DASHBOARDS}/{d['id']}/placements", {"type": "widget", "widgetId": w["id"],
                                                                   "id": "errors"}), 409, "conflict")

    moved = api.ok("PATCH", f"{DASHBOARDS}/{d['id']}/placements/errors", {"y": 0, "height": 3})
    assert moved == {**p2, "y": 0, "height": 3}
    _error(api.call("PATCH", f"{DASHBOARDS}/{d['id']}/placements/errors", {}), 400, "invalid_body")
    _error(api.call("PATCH", f"{DASHBOARDS}/{d['id']}/placements/errors", {"width": 13}), 400, "invalid_body")
    _error(api.call("PATCH", f"{DASHBOARDS}/{d['id']}/placements/missing", {"x": 1}), 404, "resource_not_found")
    got = api.ok("GET", f"{DASHBOARDS}/{d['id']}")
    assert got["definition"]["widgets"] == [p1, moved]

    # A placed widget cannot be deleted; once its placement is removed, it can.
    conflict = _error(api.call("DELETE", f"{WIDGETS}/{w['id']}"), 409, "conflict", "Costs")
    assert conflict["error"] == "ConflictError"
    assert api.ok("GET", f"{WIDGETS}/{w['id']}")["id"] == w["id"]
    assert api.ok("DELETE", f"{DASHBOARDS}/{d['id']}/placements/{p1['id']}") == {"message": "Placement removed"}
    _error(api.call("DELETE", f"{DASHBOARDS}/{d['id']}/placements/{p1['id']}"), 404, "resource_not_found")
    assert api.ok("DELETE", f"{WIDGETS}/{w['id']}")["message"]

    renamed = api.ok("PATCH", f"{DASHBOARDS}/{d['id']}", {
        "name": "Spend", "filters": [{"column": "environment", "operator": "=", "type": "string",
                                      "value": "production"}]})
    assert renamed["name"] == "Spend" and renamed["filters"][0]["key"] is None
    assert renamed["definition"]["widgets"] == [moved]
    replaced = api.ok("PATCH", f"{DASHBOARDS}/{d['id']}", {"definition": {"widgets": [
        {"type": "preset", "presetId": "total-cost"}, {"type": "preset", "presetId": "evaluator-scores"}]}})
    assert [(p["presetId"], p["y"]) for p in replaced["definition"]["widgets"]] == [("total-cost", 0),
                                                                                   ("evaluator-scores", 6)]

    other = api.ok("POST", DASHBOARDS, {"name": "Other", "definition": {"widgets": [
        {"type": "preset", "presetId": "traces-over-time", "x": 0, "y": 0, "width": 12, "height": 4}]}})
    listed = api.ok("GET", DASHBOARDS)
    assert [x["id"] for x in listed["data"]] == [other["id"], d["id"]]
    assert listed["meta"]["totalItems"] == 2
    assert api.ok("DELETE", f"{DASHBOARDS}/{d['id']}") == {"message": "Dashboard deleted"}
    _error(api.call("GET", f"{DASHBOARDS}/{d['id']}"), 404, "resource_not_found")
    assert [x["id"] for x in api.ok("GET", DASHBOARDS)["data"]] == [other["id"]]


def test_another_projects_dashboards_and_widgets_are_404(api: Api) -> None:
    w = api.ok("POST", WIDGETS, COST_BY_MODEL)
    d = api.ok("POST", DASHBOARDS, {"name": "A's"})
    p = api.ok("POST", f"{DASHBOARDS}/{d['id']}/placements", {"type": "widget", "widgetId": w["id"]})
    b = api.b
    for method, path, body in [
        ("GET", f"{WIDGETS}/{w['id']}", None), ("PATCH", f"{WIDGETS}/{w['id']}", {"name": "x"}),
        ("DELETE", f"{WIDGETS}/{w['id']}", None), ("GET", f"{DASHBOARDS}/{d['id']}", None),
        ("PATCH", f"{DASHBOARDS}/{d['id']}", {"name": "x"}), ("DELETE", f"{DASHBOARDS}/{d['id']}", None),
        ("POST", f"{DASHBOARDS}/{d['id']}/placements", {"type": "preset", "presetId": "error-rate"}),
        ("PATCH", f"{DASHBOARDS}/{d['id']}/placements/{p['id']}", {"x": 1}),
        ("DELETE", f"{DASHBOARDS}/{d['id']}/placements/{p['id']}", None),
    ]:
        r = api.call(method, path, body, auth=b)
        assert r.status_code == 404 and r.json()["code"] == "resource_not_found", (method, path, r.text)
    assert api.call("GET", WIDGETS, auth=b).json()["data"] == []
    assert api.call("GET", DASHBOARDS, auth=b).json()["data"] == []
    # B cannot place A's widget on its own dashboard either.
    db = api.call("POST", DASHBOARDS, {"name": "B's"}, auth=b).json()
    r = api.call("POST", f"{DASHBOARDS}/{db['id']}/placements", {"type": "widget", "widgetId": w["id"]}, auth=b)
    assert r.status_code == 404
    assert api.call("GET", WIDGETS).status_code == 200 and api.call("GET", WIDGETS, auth=("pk-x", "sk-x")).status_code == 401
    assert api.ok("GET", f"{DASHBOARDS}/{d['id']}")["definition"]["widgets"] == [p]


# ---- widget data = the v2 metrics answer ---------------------------------------------------------
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _load(api: Api) -> None:
    pid = api.project_a
    traces, observations = [], []
    for i in range(6):
        ts = T0 + timedelta(hours=i * 5)
        traces.append(TraceEvent(pid, f"t{i}", ts, timestamp=ts, name="chat", user_id=f"u{i % 2}",
                                 environment="production" if i % 3 else "staging"))
        observations.append(ObservationEvent(
            pid, f"g{i}", f"t{i}", ts, type="GENERATION", name="llm", start_time=ts, end_time=ts + timedelta(seconds=i + 1),
            model="gpt-4o" if i % 2 else "claude-3", level="ERROR" if i == 4 else "DEFAULT",
            usage_details={"input": 10 * i, "output": 5, "total": 10 * i + 5}, cost_details={"total": 0.01 * (i + 1)},
            environment="production" if i % 3 else "staging"))
    scores = [ScoreEvent(pid, f"s{i}", T0 + timedelta(hours=i), T0 + timedelta(hours=i), "faithful", "NUMERIC",
                         "EVAL" if i < 3 else "API", value=i / 4, trace_id=f"t{i}",
                         environment="production") for i in range(5)]
    olap = api.services.olap
    olap.insert_arrow("trace_events", traces_table(traces))
    olap.insert_arrow("observation_events", observations_table(observations))
    olap.insert_arrow("scores", scores_table(scores))


@pytest.mark.parametrize("preset_id", sorted(p for p in PRESETS if query_version(PRESETS[p]) == 2))
def test_widget_data_equals_the_v2_metrics_answer(api: Api, preset_id: str) -> None:
    _load(api)
    definition = PRESETS[preset_id]
    # Through the API where it takes the view (it creates no `traces` widgets), else the preset itself.
    created = (api.ok("POST", WIDGETS, {**definition, "name": f"copy of {preset_id}"})
               if definition["view"] in API_VIEWS else definition)
    start, end = T0 - timedelta(hours=1), T0 + timedelta(days=2)
    extra = [{"column": "environment", "operator": "=", "type": "string", "value": "production", "key": None}]
    for filters in (None, extra):
        data = widget_data(api.services.olap, api.project_a, created, start, end, filters)
        answer = api.ok("GET", "/api/public/v2/metrics", query=json.dumps(data["query"]))
        assert data["data"] == answer["data"]
        assert data["data"], "the dataset gives every preset rows"
    assert data["query"]["filters"][-1] == extra[0]


def test_widget_values(api: Api) -> None:
    """The presets' numbers, checked by hand against the dataset above."""
    _load(api)
    start, end = T0 - timedelta(hours=1), T0 + timedelta(days=2)
    (rate,) = widget_data(api.services.olap, api.project_a, {**PRESETS["error-rate"], "chartType": "NUMBER",
                                                               "chartConfig": {"type": "NUMBER"}},
                          start, end)["data"]
    assert rate == {"avg_errors": pytest.approx(1 / 6)}
    by_model = widget_data(api.services.olap, api.project_a, PRESETS["cost-by-model"], start, end)["data"]
    assert by_model == [{"providedModelName": "gpt-4o", "sum_totalCost": pytest.approx(0.12)},
                        {"providedModelName": "claude-3", "sum_totalCost": pytest.approx(0.09)}]
    evals = widget_data(api.services.olap, api.project_a, PRESETS["evaluator-scores"], start, end)["data"]
    assert sum(r["avg_value"] for r in evals) == pytest.approx(0 + 0.25 + 0.5)  # EVAL scores only, one per bucket
    users = widget_data(api.services.olap, api.project_a, PRESETS["top-users"], start, end)["data"]
    assert users == [{"userId": "u1", "sum_totalCost": pytest.approx(0.12)},
                     {"userId": "u0", "sum_totalCost": pytest.approx(0.09)}]
