"""GET /api/public/v2/metrics, /api/public/metrics (v1) and /api/public/metrics/daily."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from owlscope import tracing
from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import DailyMetrics, MetricsResponse, typed

router = APIRouter(tags=["metrics"])


@router.get("/api/public/v2/metrics", **typed(MetricsResponse))
def metrics_v2(auth: AuthDep, services: ServicesDep, query: str) -> dict[str, Any]:
    return tracing.metrics_query(services.olap, auth.project_id, query, version=2)


@router.get("/api/public/metrics", **typed(MetricsResponse))
def metrics_v1(auth: AuthDep, services: ServicesDep, query: str) -> dict[str, Any]:
    return tracing.metrics_query(services.olap, auth.project_id, query, version=1)


@router.get("/api/public/metrics/daily", **typed(DailyMetrics))
def metrics_daily(
    auth: AuthDep, services: ServicesDep, page: int | None = None, limit: int | None = None,
    trace_name: Annotated[str | None, Query(alias="traceName")] = None,
    user_id: Annotated[str | None, Query(alias="userId")] = None,
    tags: Annotated[list[str] | None, Query()] = None,
    environment: Annotated[list[str] | None, Query()] = None,
    from_timestamp: Annotated[str | None, Query(alias="fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, Query(alias="toTimestamp")] = None,
) -> dict[str, Any]:
    return tracing.metrics_daily(
        services.olap, auth.project_id, page=page, limit=limit, trace_name=trace_name, user_id=user_id,
        tags=tags, environment=environment, from_timestamp=from_timestamp, to_timestamp=to_timestamp,
    )
