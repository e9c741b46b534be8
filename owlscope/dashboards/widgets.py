"""Dashboard widgets of a project: create, list, read, update, delete, and their data.

The public API shapes (`unstableDashboardWidget`) are built here; the UI reads the same dicts.
A widget still placed on a dashboard cannot be deleted (409): remove its placements first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from owlscope.dashboards.definitions import (
    TIME_SERIES,
    check_chart_config,
    check_definition,
    query_version,
    widget_query,
)
from owlscope.errors import Conflict, InvalidRequest, NotFound
from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.dashboard_models import Dashboard, DashboardWidget
from owlscope.storage.oltp.db import write_transaction
from owlscope.tracing.metrics import metrics_query
from owlscope.wire import PageRequest, iso

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from owlscope.storage.olap.client import Olap

FIELDS = ("name", "description", "view", "dimensions", "metrics", "filters", "chartType", "chartConfig")


def to_api(w: DashboardWidget) -> dict[str, Any]:
    return {"id": w.id, "createdAt": iso(w.created_at), "updatedAt": iso(w.updated_at), **definition_of(w)}


def definition_of(w: DashboardWidget) -> dict[str, Any]:
    return {"name": w.name, "description": w.description or "", "view": w.view, "dimensions": w.dimensions,
            "metrics": w.metrics, "filters": w.filters, "chartType": w.chart_type, "chartConfig": w.chart_config}


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _apply(w: DashboardWidget, d: dict[str, Any]) -> None:
    w.name, w.description, w.view = d["name"], d["description"], d["view"]
    w.dimensions, w.metrics, w.filters = d["dimensions"], d["metrics"], d["filters"]
    w.chart_type, w.chart_config = d["chartType"], d["chartConfig"]


def create_widget(sessions: sessionmaker[Session], project_id: str, body: Any, *,
                  allow_legacy_view: bool = False) -> dict[str, Any]:
    d = check_definition(_body(body), allow_legacy_view=allow_legacy_view)
    with write_transaction(sessions) as session:
        w = DashboardWidget(id=str(uuid.uuid4()), project_id=project_id)
        _apply(w, d)
        session.add(w)
        session.flush()
        return to_api(w)


def _get(session: Session, project_id: str, widget_id: str, *, lock: bool = False) -> DashboardWidget:
    """The project's widget (404 otherwise). `lock`: FOR UPDATE, so a placement being added for it
    (which reads it FOR SHARE, see boards) is either committed before a delete looks, or waits."""
    q = select(DashboardWidget).where(DashboardWidget.id == widget_id, DashboardWidget.project_id == project_id)
    w = session.scalar(q.with_for_update() if lock else q)
    if w is None:
        raise NotFound(f"Dashboard widget {widget_id!r} not found")
    return w


def get_widget(sessions: sessionmaker[Session], project_id: str, widget_id: str) -> dict[str, Any]:
    with sessions() as session:
        return to_api(_get(session, project_id, widget_id))


def widgets_by_id(sessions: sessionmaker[Session], project_id: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    with sessions() as session:
        rows = session.scalars(select(DashboardWidget).where(DashboardWidget.project_id == project_id,
                                                             DashboardWidget.id.in_(sorted(ids))))
        return {w.id: to_api(w) for w in rows}


def page_of(sessions: sessionmaker[Session], model: Any, project_id: str, page: PageRequest,
            shape: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """A page of the project's dashboards or widgets, most recently updated first, with its `meta`."""
    with sessions() as session:
        where = model.project_id == project_id
        total = session.scalar(select(func.count()).select_from(model).where(where)) or 0
        rows = session.scalars(select(model).where(where).order_by(model.updated_at.desc(), model.id)
                               .offset(page.offset).limit(page.limit))
        return {"data": [shape(r) for r in rows], "meta": page.meta(total)}


def list_widgets(sessions: sessionmaker[Session], project_id: str, page: PageRequest) -> dict[str, Any]:
    return page_of(sessions, DashboardWidget, project_id, page, to_api)


def update_widget(sessions: sessionmaker[Session], project_id: str, widget_id: str, body: Any, *,
                  allow_legacy_view: bool = False) -> dict[str, Any]:
    """A partial update (at least one field). A new chartType without a chartConfig resets the config
    to that type's defaults. `view` may stay `traces` but not become it (through the API)."""
    patch = {k: v for k, v in _body(body).items() if k in FIELDS and v is not None}
    if not patch:
        raise InvalidRequest(f"send at least one of {', '.join(FIELDS)}")
    with write_transaction(sessions) as session:
        w = _get(session, project_id, widget_id)
        current = definition_of(w)
        merged = {**current, **patch}
        if "chartType" in patch and "chartConfig" not in patch:
            merged["chartConfig"] = None
        elif "chartConfig" not in patch:  # keep the stored config (it already matches the chart type)
            merged["chartConfig"] = check_chart_config(current["chartConfig"], merged["chartType"])
        legacy = allow_legacy_view or (current["view"] == "traces" and merged["view"] == "traces")
        _apply(w, check_definition(merged, allow_legacy_view=legacy))
        w.updated_at = utcnow()
        session.flush()
        return to_api(w)


def placed_on(session: Session, project_id: str, widget_id: str) -> list[str]:
    """Names of the project's dashboards that place the widget."""
    rows = session.execute(select(Dashboard.name, Dashboard.definition).where(Dashboard.project_id == project_id))
    return [name for name, definition in rows
            if any(p.get("widgetId") == widget_id for p in (definition or {}).get("widgets", []))]


def delete_widget(sessions: sessionmaker[Session], project_id: str, widget_id: str) -> dict[str, Any]:
    with write_transaction(sessions) as session:
        w = _get(session, project_id, widget_id, lock=True)
        boards = placed_on(session, project_id, widget_id)
        if boards:
            raise Conflict(f"Dashboard widget {widget_id!r} is placed on {len(boards)} dashboard"
                           f"{'s' if len(boards) != 1 else ''} ({', '.join(sorted(boards))}): remove those "
                           "placements first")
        session.delete(w)
    return {"message": "Dashboard widget deleted"}


def widget_data(olap: Olap, project_id: str, definition: dict[str, Any], start: datetime, end: datetime,
                extra_filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What a widget shows for [start, end): the metrics engine's rows for `widget_query`, with the
    query itself, the dimension and metric names and whether the rows are a time series."""
    query = widget_query(definition, start, end, extra_filters)
    rows = metrics_query(olap, project_id, query, version=query_version(definition))["data"]
    return {
        "query": query, "data": rows, "chartType": definition["chartType"],
        "timeSeries": definition["chartType"] in TIME_SERIES,
        "dimensions": [d["field"] for d in definition["dimensions"]],
        "metrics": [f"{m['agg']}_{m['measure']}" for m in definition["metrics"]],
    }
