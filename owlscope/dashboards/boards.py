"""Dashboards of a project and the placements on their 12-column grid.

A placement is `{"type": "widget", "widgetId"}` (a widget of the same project) or `{"type":
"preset", "presetId"}` (a built-in widget, see presets.py), with an `id` unique on its dashboard
and a tile `x`, `y` (top-left cell, 0-based), `width`, `height` in cells. Placements live in the
dashboard's `definition` document; a change to them locks the dashboard row while it rewrites it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from owlscope.dashboards.definitions import check_filters
from owlscope.dashboards.presets import PRESETS
from owlscope.dashboards.widgets import page_of
from owlscope.errors import Conflict, InvalidRequest, NotFound
from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.dashboard_models import Dashboard, DashboardWidget
from owlscope.storage.oltp.db import write_transaction
from owlscope.wire import PageRequest, iso

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

COLUMNS = 12
MAX_ROWS = 1000
MAX_PLACEMENTS = 100
DEFAULT_SIZE = 6
POSITION = ("x", "y", "width", "height")
# The default project dashboard: every preset, two to a row (y follows from the heights).
DEFAULT_LAYOUT: tuple[tuple[str, int, int, int], ...] = (
    ("traces-over-time", 0, 6, 5), ("total-cost", 6, 3, 5), ("error-rate", 9, 3, 5),
    ("cost-by-model", 0, 6, 6), ("tokens-over-time", 6, 6, 6),
    ("latency-percentiles", 0, 6, 6), ("evaluator-scores", 6, 6, 6),
    ("top-users", 0, 6, 6),
)


def to_api(d: Dashboard) -> dict[str, Any]:
    return {"id": d.id, "createdAt": iso(d.created_at), "updatedAt": iso(d.updated_at), "name": d.name,
            "description": d.description or "", "definition": {"widgets": list(d.definition.get("widgets", []))},
            "filters": d.filters}


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise InvalidRequest("name must be a non-empty string of at most 255 characters")
    return value.strip()


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 2000:
        raise InvalidRequest("description must be a string of at most 2000 characters")
    return value


def _cell(value: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidRequest(f"{what} must be an integer from {lo} to {hi}")
    return value


def _check_position(p: dict[str, Any], what: str) -> None:
    _cell(p["x"], f"{what}.x", 0, COLUMNS - 1)
    _cell(p["y"], f"{what}.y", 0, MAX_ROWS)
    _cell(p["width"], f"{what}.width", 1, COLUMNS)
    _cell(p["height"], f"{what}.height", 1, 100)
    if p["x"] + p["width"] > COLUMNS:
        raise InvalidRequest(f"{what}: x + width must be at most {COLUMNS} (the grid's columns)")


def _bottom(placements: list[dict[str, Any]]) -> int:
    return max((p["y"] + p["height"] for p in placements), default=0)


def _placement(session: Session, project_id: str, raw: Any, existing: list[dict[str, Any]],
               what: str = "placement") -> dict[str, Any]:
    """A new placement, checked: its content exists, its id is new, its tile fits the grid. Omitted
    position fields: x 0, a 6x6 tile, appended below every existing tile."""
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{what} must be an object")
    kind = raw.get("type")
    if kind == "widget":
        ref_key = "widgetId"
        ref = raw.get("widgetId")
        if not isinstance(ref, str) or not ref:
            raise InvalidRequest(f"{what}.widgetId must be a non-empty string")
        w = session.scalar(select(DashboardWidget.id).where(DashboardWidget.id == ref,
                                                            DashboardWidget.project_id == project_id)
                           .with_for_update(read=True))
        if w is None:
            raise NotFound(f"Dashboard widget {ref!r} not found")
    elif kind == "preset":
        ref_key = "presetId"
        ref = raw.get("presetId")
        if ref not in PRESETS:
            raise NotFound(f"Preset widget {ref!r} not found: use one of {', '.join(PRESETS)}")
    else:
        raise InvalidRequest(f"{what}.type must be widget or preset")
    pid = raw.get("id")
    if pid is None:
        pid = str(uuid.uuid4())
    elif not isinstance(pid, str) or not pid or len(pid) > 255:
        raise InvalidRequest(f"{what}.id must be a non-empty string")
    if any(p["id"] == pid for p in existing):
        raise Conflict(f"A placement with id {pid!r} already exists on this dashboard")
    out = {"type": kind, "id": pid, ref_key: ref, "x": raw.get("x"), "y": raw.get("y"),
           "width": raw.get("width"), "height": raw.get("height")}
    for key, default in (("x", 0), ("width", DEFAULT_SIZE), ("height", DEFAULT_SIZE)):
        if out[key] is None:
            out[key] = default
    if out["y"] is None:
        out["y"] = _bottom(existing)
    _check_position(out, what)
    return out


def _definition(session: Session, project_id: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("widgets"), list):
        raise InvalidRequest("definition must be an object with a list `widgets`")
    if len(raw["widgets"]) > MAX_PLACEMENTS:
        raise InvalidRequest(f"a dashboard holds at most {MAX_PLACEMENTS} placements")
    placements: list[dict[str, Any]] = []
    for i, p in enumerate(raw["widgets"]):
        placements.append(_placement(session, project_id, p, placements, f"definition.widgets[{i}]"))
    return {"widgets": placements}


def create_dashboard(sessions: sessionmaker[Session], project_id: str, body: Any) -> dict[str, Any]:
    b = _body(body)
    name, description = _name(b.get("name")), _description(b.get("description"))
    filters = check_filters(b["filters"]) if b.get("filters") is not None else []
    with write_transaction(sessions) as session:
        definition = (_definition(session, project_id, b["definition"]) if b.get("definition") is not None
                      else {"widgets": []})
        now = utcnow()
        d = Dashboard(id=str(uuid.uuid4()), project_id=project_id, name=name, description=description,
                      definition=definition, filters=filters, created_at=now, updated_at=now)
        session.add(d)
        session.flush()
        return to_api(d)


def create_default_dashboard(sessions: sessionmaker[Session], project_id: str,
                             name: str = "Project dashboard") -> dict[str, Any]:
    """A dashboard that places every preset (the starting point the UI offers)."""
    placements: list[dict[str, Any]] = []
    row_top, row_bottom, last_x = 0, 0, -1
    for preset_id, x, width, height in DEFAULT_LAYOUT:
        if x <= last_x:  # a new row
            row_top = row_bottom
        placements.append({"type": "preset", "presetId": preset_id, "x": x, "y": row_top, "width": width,
                           "height": height})
        row_bottom, last_x = max(row_bottom, row_top + height), x
    return create_dashboard(sessions, project_id, {
        "name": name, "description": "Traces, cost, tokens, latency, errors and evaluator scores",
        "definition": {"widgets": placements}})


def _get(session: Session, project_id: str, dashboard_id: str, *, lock: bool = False) -> Dashboard:
    q = select(Dashboard).where(Dashboard.id == dashboard_id, Dashboard.project_id == project_id)
    d = session.scalar(q.with_for_update() if lock else q)
    if d is None:
        raise NotFound(f"Dashboard {dashboard_id!r} not found")
    return d


def get_dashboard(sessions: sessionmaker[Session], project_id: str, dashboard_id: str) -> dict[str, Any]:
    with sessions() as session:
        return to_api(_get(session, project_id, dashboard_id))


def list_dashboards(sessions: sessionmaker[Session], project_id: str, page: PageRequest) -> dict[str, Any]:
    return page_of(sessions, Dashboard, project_id, page, to_api)


def update_dashboard(sessions: sessionmaker[Session], project_id: str, dashboard_id: str,
                     body: Any) -> dict[str, Any]:
    b = _body(body)
    with write_transaction(sessions) as session:
        d = _get(session, project_id, dashboard_id, lock=True)
        if b.get("name") is not None:
            d.name = _name(b["name"])
        if b.get("description") is not None:
            d.description = _description(b["description"])
        if b.get("filters") is not None:
            d.filters = check_filters(b["filters"])
        if b.get("definition") is not None:
            d.definition = _definition(session, project_id, b["definition"])
        d.updated_at = utcnow()
        session.flush()
        return to_api(d)


def delete_dashboard(sessions: sessionmaker[Session], project_id: str, dashboard_id: str) -> dict[str, Any]:
    with write_transaction(sessions) as session:
        session.delete(_get(session, project_id, dashboard_id, lock=True))
    return {"message": "Dashboard deleted"}


def add_placement(sessions: sessionmaker[Session], project_id: str, dashboard_id: str, body: Any) -> dict[str, Any]:
    with write_transaction(sessions) as session:
        d = _get(session, project_id, dashboard_id, lock=True)
        placements = list(d.definition.get("widgets", []))
        if len(placements) >= MAX_PLACEMENTS:
            raise InvalidRequest(f"a dashboard holds at most {MAX_PLACEMENTS} placements")
        placement = _placement(session, project_id, _body(body), placements)
        d.definition = {"widgets": [*placements, placement]}
        d.updated_at = utcnow()
        return placement


def update_placement(sessions: sessionmaker[Session], project_id: str, dashboard_id: str, placement_id: str,
                     body: Any) -> dict[str, Any]:
    """Move or resize: the position fields given (at least one); content and id stay."""
    b = _body(body)
    change = {k: b[k] for k in POSITION if b.get(k) is not None}
    if not change:
        raise InvalidRequest(f"send at least one of {', '.join(POSITION)}")
    with write_transaction(sessions) as session:
        d = _get(session, project_id, dashboard_id, lock=True)
        placements = list(d.definition.get("widgets", []))
        for i, p in enumerate(placements):
            if p["id"] == placement_id:
                moved = {**p, **change}
                _check_position(moved, "placement")
                placements[i] = moved
                d.definition = {"widgets": placements}
                d.updated_at = utcnow()
                return moved
    raise NotFound(f"Placement {placement_id!r} not found on dashboard {dashboard_id!r}")


def delete_placement(sessions: sessionmaker[Session], project_id: str, dashboard_id: str,
                     placement_id: str) -> dict[str, Any]:
    with write_transaction(sessions) as session:
        d = _get(session, project_id, dashboard_id, lock=True)
        placements = list(d.definition.get("widgets", []))
        kept = [p for p in placements if p["id"] != placement_id]
        if len(kept) == len(placements):
            raise NotFound(f"Placement {placement_id!r} not found on dashboard {dashboard_id!r}")
        d.definition = {"widgets": kept}
        d.updated_at = utcnow()
    return {"message": "Placement removed"}
