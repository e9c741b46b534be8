"""GET /api/public/observations, /observations/{id} (v1) and /api/public/v2/observations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from owlscope import tracing
from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.model_prices import attach_model_prices
from owlscope.api.schemas import ObservationsV2Response, ObservationsView, ObservationsViews, typed
from owlscope.errors import NotFound

router = APIRouter(tags=["observations"])

Level = Annotated[str | None, Query(pattern="^(DEBUG|DEFAULT|WARNING|ERROR)$")]


@router.get("/api/public/observations", **typed(ObservationsViews))
def list_observations(
    auth: AuthDep, services: ServicesDep,
    page: int | None = None, limit: int | None = None, name: str | None = None,
    user_id: Annotated[str | None, Query(alias="userId")] = None,
    type: str | None = None,
    trace_id: Annotated[str | None, Query(alias="traceId")] = None,
    level: Level = None,
    parent_observation_id: Annotated[str | None, Query(alias="parentObservationId")] = None,
    environment: Annotated[list[str] | None, Query()] = None,
    from_start_time: Annotated[str | None, Query(alias="fromStartTime")] = None,
    to_start_time: Annotated[str | None, Query(alias="toStartTime")] = None,
    version: str | None = None, filter: str | None = None,
) -> dict[str, Any]:
    found = tracing.list_observations(
        services.olap, auth.project_id, page=page, limit=limit, name=name, user_id=user_id, type=type,
        trace_id=trace_id, level=level, parent_observation_id=parent_observation_id, environment=environment,
        from_start_time=from_start_time, to_start_time=to_start_time, version=version, filter=filter,
    )
    attach_model_prices(services, auth.project_id, found["data"])
    return found


@router.get("/api/public/observations/{observation_id}", **typed(ObservationsView))
def get_observation(observation_id: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    obs = tracing.get_observation(services.olap, auth.project_id, observation_id)
    if obs is None:
        raise NotFound(f"Observation {observation_id} not found within authorized project")
    attach_model_prices(services, auth.project_id, [obs])
    return obs


@router.get("/api/public/v2/observations", **typed(ObservationsV2Response))
def list_observations_v2(
    auth: AuthDep, services: ServicesDep,
    fields: str | None = None,
    expand_metadata: Annotated[str | None, Query(alias="expandMetadata")] = None,
    limit: int | None = None, cursor: str | None = None,
    parse_io_as_json: Annotated[bool | None, Query(alias="parseIoAsJson")] = None,
    name: str | None = None,
    user_id: Annotated[str | None, Query(alias="userId")] = None,
    session_id: Annotated[str | None, Query(alias="sessionId")] = None,
    type: str | None = None,
    trace_id: Annotated[str | None, Query(alias="traceId")] = None,
    level: Level = None,
    parent_observation_id: Annotated[str | None, Query(alias="parentObservationId")] = None,
    is_root_observation: Annotated[bool | None, Query(alias="isRootObservation")] = None,
    environment: Annotated[list[str] | None, Query()] = None,
    from_start_time: Annotated[str | None, Query(alias="fromStartTime")] = None,
    to_start_time: Annotated[str | None, Query(alias="toStartTime")] = None,
    version: str | None = None, filter: str | None = None,
) -> dict[str, Any]:
    found = tracing.list_observations_v2(
        services.olap, auth.project_id, fields=fields, expand_metadata=expand_metadata, limit=limit,
        cursor=cursor, parse_io_as_json=parse_io_as_json, name=name, user_id=user_id, session_id=session_id,
        type=type, trace_id=trace_id, level=level, parent_observation_id=parent_observation_id,
        is_root_observation=is_root_observation, environment=environment, from_start_time=from_start_time,
        to_start_time=to_start_time, version=version, filter=filter,
    )
    attach_model_prices(services, auth.project_id, found["data"], v2=True)
    return found
