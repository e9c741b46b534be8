"""The project home: the dashboard (traces, cost and tokens over time, latency percentiles, cost by
model, top users, score distributions) for a time range and the top bar's environment. A project
without any trace yet shows how to send the first one instead."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func, select
from starlette.responses import Response

from owlscope.storage.oltp.models import ApiKey, ScoreConfig
from owlscope.tracing.dashboard import dashboard
from owlscope.tracing.traces import has_traces
from owlscope.web.context import ProjectCtx, WebServices, require_role
from owlscope.web.templating import render
from owlscope.web.views.tracing_common import PRESETS, time_range

router = APIRouter(include_in_schema=False)


def _has_traces(services: WebServices, project_id: str) -> bool:
    return has_traces(services.olap, project_id)


def _cached_dashboard(services: WebServices, project_id: str, key: str, start: datetime, end: datetime,
                      environment: str | None, hide_internal: bool) -> dict[str, Any]:
    """The dashboard's data, reused for half a minute: a preset range ends "now", so within that time
    the same choice reads the same rows (a long range reads many)."""
    ident = (project_id, environment, hide_internal, key if key != "custom" else (start, end))
    return services.read_caches.dashboards.get_or_load(
        ident, lambda: dashboard(services.olap, project_id, start=start, end=end, environment=environment,
                                 hide_internal=hide_internal))


@router.get("/project/{project_id}")
def project_dashboard(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    if not _has_traces(services, ctx.project.id):
        with services.sessions() as session:
            key_count = session.scalar(select(func.count()).select_from(ApiKey)
                                       .where(ApiKey.project_id == ctx.project.id))
            config_count = session.scalar(select(func.count()).select_from(ScoreConfig)
                                          .where(ScoreConfig.project_id == ctx.project.id))
        host = (services.settings.public_url or str(request.base_url)).rstrip("/")
        return render(request, "dashboard/get_started.html", {
            "key_count": key_count or 0, "config_count": config_count or 0, "host": host, "active_nav": "dashboard"})
    qp = request.query_params
    rng = time_range(qp.get("range"), qp.get("from"), qp.get("to"), default="7d", allow_all=False)
    end = rng.end or datetime.now(UTC)
    assert rng.start is not None  # allow_all=False: every choice has a start
    data = _cached_dashboard(services, ctx.project.id, rng.key, rng.start, end, ctx.environment,
                             ctx.hide_internal())
    presets = {k: v for k, v in PRESETS.items() if k != "all"}
    values = {"range": rng, "presets": presets, "data": data, "end": end, "active_nav": "dashboard",
              "chart_data": {
                  "series": data["series"],
                  "scores": data["scores"],
                  "models": [{"model": m["model"], "cost": m["cost"], "tokens": m["totalTokens"]}
                             for m in data["models"]],
              }}
    return render(request, "dashboard/index.html", values)
