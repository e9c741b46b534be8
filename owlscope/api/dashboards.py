"""The unstable dashboards API: /api/public/unstable/dashboards (with their placements) and
/api/public/unstable/dashboard-widgets. Errors carry the `unstablePublicApiError` envelope."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.evaluators import UnstableRoute
from owlscope.api.schemas import (
    DashboardPlacement,
    Message,
    UnstableDashboard,
    UnstableDashboardList,
    UnstableDashboardWidget,
    UnstableDashboardWidgetList,
    typed,
)
from owlscope.dashboards import boards, widgets
from owlscope.wire import PageRequest

router = APIRouter(tags=["UnstableDashboards"], route_class=UnstableRoute)
DASHBOARDS = "/api/public/unstable/dashboards"
WIDGETS = "/api/public/unstable/dashboard-widgets"
PLACEMENTS = DASHBOARDS + "/{dashboardId}/placements"


@router.get(DASHBOARDS, **typed(UnstableDashboardList))
def dashboards_list(auth: AuthDep, services: ServicesDep, page: int | None = None,
                    limit: int | None = None) -> dict[str, Any]:
    return boards.list_dashboards(services.sessions, auth.project_id, PageRequest.of(page, limit, maximum=100))


@router.post(DASHBOARDS, **typed(UnstableDashboard))
def dashboards_create(auth: AuthDep, services: ServicesDep, body: Any = Body(...)) -> dict[str, Any]:
    return boards.create_dashboard(services.sessions, auth.project_id, body)


@router.get(DASHBOARDS + "/{dashboardId}", **typed(UnstableDashboard))
def dashboards_get(dashboardId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return boards.get_dashboard(services.sessions, auth.project_id, dashboardId)


@router.patch(DASHBOARDS + "/{dashboardId}", **typed(UnstableDashboard))
def dashboards_update(dashboardId: str, auth: AuthDep, services: ServicesDep,
                      body: Any = Body(...)) -> dict[str, Any]:
    return boards.update_dashboard(services.sessions, auth.project_id, dashboardId, body)


@router.delete(DASHBOARDS + "/{dashboardId}", **typed(Message))
def dashboards_delete(dashboardId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return boards.delete_dashboard(services.sessions, auth.project_id, dashboardId)


@router.post(PLACEMENTS, **typed(DashboardPlacement))
def placements_create(dashboardId: str, auth: AuthDep, services: ServicesDep,
                      body: Any = Body(...)) -> dict[str, Any]:
    return boards.add_placement(services.sessions, auth.project_id, dashboardId, body)


@router.patch(PLACEMENTS + "/{placementId}", **typed(DashboardPlacement))
def placements_update(dashboardId: str, placementId: str, auth: AuthDep, services: ServicesDep,
                      body: Any = Body(...)) -> dict[str, Any]:
    return boards.update_placement(services.sessions, auth.project_id, dashboardId, placementId, body)


@router.delete(PLACEMENTS + "/{placementId}", **typed(Message))
def placements_delete(dashboardId: str, placementId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return boards.delete_placement(services.sessions, auth.project_id, dashboardId, placementId)


@router.get(WIDGETS, **typed(UnstableDashboardWidgetList))
def widgets_list(auth: AuthDep, services: ServicesDep, page: int | None = None,
                 limit: int | None = None) -> dict[str, Any]:
    return widgets.list_widgets(services.sessions, auth.project_id, PageRequest.of(page, limit, maximum=100))


@router.post(WIDGETS, **typed(UnstableDashboardWidget))
def widgets_create(auth: AuthDep, services: ServicesDep, body: Any = Body(...)) -> dict[str, Any]:
    return widgets.create_widget(services.sessions, auth.project_id, body)


@router.get(WIDGETS + "/{widgetId}", **typed(UnstableDashboardWidget))
def widgets_get(widgetId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return widgets.get_widget(services.sessions, auth.project_id, widgetId)


@router.patch(WIDGETS + "/{widgetId}", **typed(UnstableDashboardWidget))
def widgets_update(widgetId: str, auth: AuthDep, services: ServicesDep, body: Any = Body(...)) -> dict[str, Any]:
    return widgets.update_widget(services.sessions, auth.project_id, widgetId, body)


@router.delete(WIDGETS + "/{widgetId}", **typed(Message))
def widgets_delete(widgetId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return widgets.delete_widget(services.sessions, auth.project_id, widgetId)
