"""Custom dashboards in the UI: the list, a dashboard's grid (tiles moved and resized by dragging,
saved as placements), the widget editor, and each tile's data.

The built-in overview at /project/{id} (views/dashboard.py) stays as it is; custom dashboards are
listed beside it under /project/{id}/dashboards. Viewers read; members and up edit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Form, Request
from starlette.responses import JSONResponse, Response

from owlscope.dashboards import boards, widgets
from owlscope.dashboards.definitions import DEFAULT_BINS, GRANULARITY_CHOICES, TIME_SERIES, check_definition
from owlscope.dashboards.presets import PRESETS
from owlscope.errors import NotFound, OwlscopeError
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, require_role
from owlscope.web.dashboard_charts import chart_spec, choices, metric_label
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render
from owlscope.web.views.tracing_common import PRESETS as RANGES
from owlscope.web.views.tracing_common import time_range
from owlscope.wire import PageRequest

router = APIRouter(include_in_schema=False)
FormStr = Annotated[str, Form()]
BASE = "/project/{project_id}/dashboards"
FILTER_ROWS = 3
LIST_OPERATORS = ("any of", "none of")
NUMBER_OPERATORS = (">", "<", ">=", "<=")
OPERATORS = ("=", "!=", "contains", "does not contain", "starts with", *LIST_OPERATORS, *NUMBER_OPERATORS)


def _range(request: Request) -> Any:
    qp = request.query_params
    return time_range(qp.get("range"), qp.get("from"), qp.get("to"), default="7d", allow_all=False)


def _env_filters(ctx: ProjectContext) -> list[dict[str, Any]]:
    """The top bar's environment, as a filter on every widget."""
    if not ctx.environment:
        return []
    return [{"column": "environment", "operator": "=", "type": "string", "value": ctx.environment, "key": None}]


# ---- list ------------------------------------------------------------------------------------
@router.get(BASE)
def dashboards_list(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    found = boards.list_dashboards(services.sessions, ctx.project.id, PageRequest(1, 100))
    own = widgets.list_widgets(services.sessions, ctx.project.id, PageRequest(1, 100))
    return render(request, "dashboards/list.html", {
        "dashboards": found["data"], "widgets": own["data"], "active_nav": "dashboards",
        "metric_label": metric_label, "labels": choices()})


@router.post(BASE)
def dashboards_create(request: Request, ctx: ProjectCtx, services: WebServices, name: FormStr = "",
                      description: FormStr = "", presets: FormStr = "") -> Response:
    require_role(ctx, "MEMBER")
    try:
        if presets:
            made = boards.create_default_dashboard(services.sessions, ctx.project.id, name.strip() or "Project dashboard")
        else:
            made = boards.create_dashboard(services.sessions, ctx.project.id, {"name": name,
                                                                                "description": description})
    except OwlscopeError as exc:
        flash(request, exc.message, "error")
        return redirect(request, f"{ctx.url}/dashboards")
    return redirect(request, f"{ctx.url}/dashboards/{made['id']}")


# ---- one dashboard ---------------------------------------------------------------------------
def _tiles(services: WebServices, project_id: str, dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    placements = dashboard["definition"]["widgets"]
    own = widgets.widgets_by_id(services.sessions, project_id,
                                {p["widgetId"] for p in placements if p["type"] == "widget"})
    tiles = []
    for p in placements:
        definition = own.get(p.get("widgetId", "")) if p["type"] == "widget" else PRESETS.get(p.get("presetId", ""))
        tiles.append({**p, "widget": definition})
    return tiles


@router.get(BASE + "/{dashboard_id}")
def dashboard_page(request: Request, dashboard_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    dashboard = boards.get_dashboard(services.sessions, ctx.project.id, dashboard_id)
    rng = _range(request)
    own = widgets.list_widgets(services.sessions, ctx.project.id, PageRequest(1, 100))["data"]
    return render(request, "dashboards/board.html", {
        "dashboard": dashboard, "tiles": _tiles(services, ctx.project.id, dashboard), "range": rng,
        "presets": {k: v for k, v in RANGES.items() if k != "all"}, "range_query": request.url.query,
        "own_widgets": own, "preset_widgets": PRESETS, "active_nav": "dashboards", "can_edit": ctx.can("MEMBER"),
        "filter_rows": filter_rows(dashboard["filters"]), "filter_columns": _all_columns(), "operators": OPERATORS})


def _all_columns() -> dict[str, str]:
    """Every view's filterable columns (a dashboard filter applies where the view has the column)."""
    out: dict[str, str] = {}
    for dims in choices()["dimensions"].values():
        for key, label in dims.items():
            out.setdefault(key, label)
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


@router.post(BASE + "/{dashboard_id}/settings")
async def dashboard_settings(request: Request, dashboard_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    """Name, description and the dashboard's filters (applied to every tile whose view has the column)."""
    require_role(ctx, "MEMBER")
    data = await request.form()
    get = _getter(data)
    try:
        boards.update_dashboard(services.sessions, ctx.project.id, dashboard_id, {
            "name": get("name"), "description": get("description"), "filters": _filters(get)})
        flash(request, "Dashboard saved.")
    except OwlscopeError as exc:
        flash(request, exc.message, "error")
    return redirect(request, f"{ctx.url}/dashboards/{dashboard_id}")


@router.post(BASE + "/{dashboard_id}/delete")
def dashboard_delete(request: Request, dashboard_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    boards.delete_dashboard(services.sessions, ctx.project.id, dashboard_id)
    flash(request, "Dashboard deleted; its widgets are kept.")
    return redirect(request, f"{ctx.url}/dashboards")


@router.post(BASE + "/{dashboard_id}/placements")
def placement_add(request: Request, dashboard_id: str, ctx: ProjectCtx, services: WebServices,
                  ref: FormStr = "") -> Response:
    require_role(ctx, "MEMBER")
    kind, _, ref_id = ref.partition(":")
    body = {"type": kind, "widgetId" if kind == "widget" else "presetId": ref_id}
    try:
        boards.add_placement(services.sessions, ctx.project.id, dashboard_id, body)
    except OwlscopeError as exc:
        flash(request, exc.message, "error")
    return redirect(request, f"{ctx.url}/dashboards/{dashboard_id}")


@router.post(BASE + "/{dashboard_id}/placements/{placement_id}/layout")
def placement_layout(dashboard_id: str, placement_id: str, ctx: ProjectCtx, services: WebServices,
                     body: Any = Body(...)) -> Response:
    """A tile moved or resized by dragging (JSON `{x, y, width, height}`, sent by dashboards.js)."""
    require_role(ctx, "MEMBER")
    try:
        moved = boards.update_placement(services.sessions, ctx.project.id, dashboard_id, placement_id, body)
    except OwlscopeError as exc:
        return JSONResponse({"message": exc.message, "error": exc.error}, status_code=exc.status)
    return JSONResponse(moved)


@router.post(BASE + "/{dashboard_id}/placements/{placement_id}/delete")
def placement_delete(request: Request, dashboard_id: str, placement_id: str, ctx: ProjectCtx,
                     services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    boards.delete_placement(services.sessions, ctx.project.id, dashboard_id, placement_id)
    flash(request, "Removed from the dashboard; the widget itself is kept.")
    return redirect(request, f"{ctx.url}/dashboards/{dashboard_id}")


@router.get(BASE + "/{dashboard_id}/placements/{placement_id}/data")
def placement_data(request: Request, dashboard_id: str, placement_id: str, ctx: ProjectCtx,
                   services: WebServices) -> Response:
    """One tile's chart: its widget's query run by the metrics engine for the page's time range,
    with the dashboard's filters and the top bar's environment."""
    require_role(ctx, "VIEWER")
    dashboard = boards.get_dashboard(services.sessions, ctx.project.id, dashboard_id)
    tile = next((t for t in _tiles(services, ctx.project.id, dashboard) if t["id"] == placement_id), None)
    if tile is None:
        raise NotFound("This tile is no longer on the dashboard")
    rng = _range(request)
    values: dict[str, Any] = {"tile": tile, "spec": None, "error": None}
    if tile["widget"] is None:
        values["error"] = "The widget of this tile was deleted."
    else:
        end = rng.end or datetime.now(UTC)
        try:
            data = widgets.widget_data(services.olap, ctx.project.id, tile["widget"], rng.start, end,
                                       [*dashboard["filters"], *_env_filters(ctx)])
            values["spec"] = chart_spec(tile["widget"], data)
        except OwlscopeError as exc:
            values["error"] = exc.message
    return render(request, "dashboards/_tile_data.html", values)


# ---- widget editor ---------------------------------------------------------------------------
def _form_from(definition: dict[str, Any] | None) -> dict[str, Any]:
    d = definition or {"name": "", "description": "", "view": "observations", "dimensions": [],
                       "metrics": [{"measure": "count", "agg": "count"}], "filters": [],
                       "chartType": "LINE_TIME_SERIES", "chartConfig": {}}
    config = d.get("chartConfig") or {}
    return {"name": d["name"], "description": d.get("description") or "", "view": d["view"],
            "measure": d["metrics"][0]["measure"], "agg": d["metrics"][0]["agg"],
            "dimension": d["dimensions"][0]["field"] if d["dimensions"] else "", "chart_type": d["chartType"],
            "granularity": config.get("granularity") or "auto", "row_limit": config.get("row_limit") or "",
            "bins": config.get("bins") or DEFAULT_BINS, "filters": filter_rows(d["filters"]),
            "measure2": d["metrics"][1]["measure"] if len(d["metrics"]) > 1 else "",
            "agg2": d["metrics"][1]["agg"] if len(d["metrics"]) > 1 else "p95",
            "extra_metrics": d["metrics"][2:], "extra_dimensions": d["dimensions"][1:]}


def filter_rows(filters: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Stored filters as the form's rows (lists joined with commas), padded to FILTER_ROWS."""
    rows = [{"column": f["column"], "operator": f["operator"],
             "value": ", ".join(map(str, f["value"])) if isinstance(f.get("value"), list) else
             ("" if f.get("value") is None else str(f["value"]))} for f in filters]
    return rows + [{"column": "", "operator": "=", "value": ""}] * (FILTER_ROWS - len(rows))


def _filter(column: str, operator: str, value: str) -> dict[str, Any]:
    if operator in LIST_OPERATORS:
        items = [v.strip() for v in value.split(",") if v.strip()]
        return {"column": column, "operator": operator, "type": "arrayOptions" if column == "tags" else "stringOptions",
                "value": items, "key": None}
    if operator in NUMBER_OPERATORS:
        try:
            number: Any = float(value)
        except ValueError:
            number = value
        return {"column": column, "operator": operator, "type": "number", "value": number, "key": None}
    return {"column": column, "operator": operator, "type": "string", "value": value, "key": None}


def _getter(data: Any) -> Any:
    def get(key: str, default: str = "") -> str:
        return str(data.get(key, default)).strip()

    return get


def _filters(get: Any) -> list[dict[str, Any]]:
    """The filter rows of a form (`filter_column_N`, `filter_operator_N`, `filter_value_N`) that name a column."""
    return [_filter(get(f"filter_column_{i}"), get(f"filter_operator_{i}", "="), get(f"filter_value_{i}"))
            for i in range(FILTER_ROWS) if get(f"filter_column_{i}")]


async def _definition_from_form(request: Request, form: dict[str, Any]) -> dict[str, Any]:
    get = _getter(await request.form())
    chart_type = get("chart_type")
    config: dict[str, Any] = {}
    if chart_type in TIME_SERIES:
        config["granularity"] = get("granularity", "auto")
    if get("row_limit") and chart_type not in TIME_SERIES:
        config["row_limit"] = int(get("row_limit")) if get("row_limit").isdigit() else get("row_limit")
    if chart_type == "HISTOGRAM":
        config["bins"] = int(get("bins")) if get("bins").isdigit() else get("bins")
    filters = _filters(get)
    dimension = get("dimension")
    form.update(name=get("name"), description=get("description"), view=get("view"), measure=get("measure"),
                agg=get("agg"), dimension=dimension, chart_type=chart_type, granularity=get("granularity", "auto"),
                row_limit=get("row_limit"), bins=get("bins"),
                filters=[{"column": get(f"filter_column_{i}"), "operator": get(f"filter_operator_{i}", "="),
                          "value": get(f"filter_value_{i}")} for i in range(FILTER_ROWS)])
    agg = "histogram" if chart_type == "HISTOGRAM" else get("agg")
    second = [{"measure": get("measure2"), "agg": "histogram" if chart_type == "HISTOGRAM" else get("agg2")}
              ] if get("measure2") else []
    form.update(measure2=get("measure2"), agg2=get("agg2"))
    metrics = [{"measure": get("measure"), "agg": agg}, *second, *form.get("extra_metrics", [])]
    dimensions = [{"field": dimension}] if dimension else []
    return {"name": get("name"), "description": get("description"), "view": get("view"),
            "dimensions": [*dimensions, *form.get("extra_dimensions", [])], "metrics": metrics,
            "filters": filters, "chartType": chart_type, "chartConfig": config}


def _editor(request: Request, ctx: ProjectContext, form: dict[str, Any], *, widget_id: str | None,
            dashboard_id: str, error: str | None = None, status: int = 200) -> Response:
    return render(request, "dashboards/widget_form.html", {
        "form": form, "widget_id": widget_id, "dashboard_id": dashboard_id, "error": error,
        "choices": choices(), "granularities": GRANULARITY_CHOICES, "operators": OPERATORS,
        "active_nav": "dashboards"}, status_code=status)


@router.get(BASE + "/widgets/new")
def widget_new(request: Request, ctx: ProjectCtx) -> Response:
    """A blank editor, or (`?preset=<id>`) one filled with a built-in widget to start from."""
    require_role(ctx, "MEMBER")
    start = PRESETS.get(request.query_params.get("preset", ""))
    form = _form_from(start)
    if start:
        form["name"] = f"{start['name']} (copy)"
    return _editor(request, ctx, form, widget_id=None, dashboard_id=request.query_params.get("dashboard", ""))


@router.post(BASE + "/widgets/new")
async def widget_create(request: Request, ctx: ProjectCtx, services: WebServices, dashboard: FormStr = "") -> Response:
    require_role(ctx, "MEMBER")
    form = _form_from(None)
    definition = await _definition_from_form(request, form)
    try:
        if dashboard:  # the dashboard exists before anything is written
            boards.get_dashboard(services.sessions, ctx.project.id, dashboard)
        made = widgets.create_widget(services.sessions, ctx.project.id, definition, allow_legacy_view=True)
    except OwlscopeError as exc:
        return _editor(request, ctx, form, widget_id=None, dashboard_id=dashboard, error=exc.message,
                       status=exc.status)
    if dashboard:
        boards.add_placement(services.sessions, ctx.project.id, dashboard, {"type": "widget", "widgetId": made["id"]})
        flash(request, f"Widget “{made['name']}” added to the dashboard.")
        return redirect(request, f"{ctx.url}/dashboards/{dashboard}")
    flash(request, f"Widget “{made['name']}” created.")
    return redirect(request, f"{ctx.url}/dashboards")


@router.post(BASE + "/widgets/preview")
async def widget_preview(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    """The editor's chart as it stands, over the last 7 days (in the top bar's environment); a
    definition that does not hold says why, in place of the chart."""
    require_role(ctx, "MEMBER")
    definition = await _definition_from_form(request, {})
    values: dict[str, Any] = {"tile": {"widget": definition}, "spec": None, "error": None}
    rng = time_range("7d", allow_all=False)
    try:
        checked = check_definition(definition, allow_legacy_view=True)
        data = widgets.widget_data(services.olap, ctx.project.id, checked, rng.start, datetime.now(UTC),
                                   _env_filters(ctx))
        values["spec"] = chart_spec(checked, data)
    except OwlscopeError as exc:
        values["error"] = exc.message
    return render(request, "dashboards/_tile_data.html", values)


@router.get(BASE + "/widgets/{widget_id}/edit")
def widget_edit(request: Request, widget_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    w = widgets.get_widget(services.sessions, ctx.project.id, widget_id)
    return _editor(request, ctx, _form_from(w), widget_id=widget_id,
                   dashboard_id=request.query_params.get("dashboard", ""))


@router.post(BASE + "/widgets/{widget_id}/edit")
async def widget_update(request: Request, widget_id: str, ctx: ProjectCtx, services: WebServices,
                        dashboard: FormStr = "") -> Response:
    require_role(ctx, "MEMBER")
    form = _form_from(widgets.get_widget(services.sessions, ctx.project.id, widget_id))
    definition = await _definition_from_form(request, form)
    try:
        widgets.update_widget(services.sessions, ctx.project.id, widget_id, definition, allow_legacy_view=True)
    except OwlscopeError as exc:
        return _editor(request, ctx, form, widget_id=widget_id, dashboard_id=dashboard, error=exc.message,
                       status=exc.status)
    flash(request, "Widget saved.")
    return redirect(request, f"{ctx.url}/dashboards/{dashboard}" if dashboard else f"{ctx.url}/dashboards")


@router.post(BASE + "/widgets/{widget_id}/delete")
def widget_delete(request: Request, widget_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    try:
        widgets.delete_widget(services.sessions, ctx.project.id, widget_id)
        flash(request, "Widget deleted.")
    except OwlscopeError as exc:
        flash(request, exc.message, "error")
    return redirect(request, f"{ctx.url}/dashboards")
