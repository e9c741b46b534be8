"""GET/DELETE /api/public/traces and /api/public/traces/{traceId}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from owlscope import tracing
from owlscope.api.deps import ActorDep, AuthDep, ServicesDep, audit_action
from owlscope.api.model_prices import attach_model_prices
from owlscope.api.schemas import Message, Traces, TraceWithFullDetails, typed
from owlscope.data_retention import delete_trace_data
from owlscope.errors import InvalidRequest, NotFound

router = APIRouter(tags=["traces"])


@router.get("/api/public/traces", **typed(Traces))
def list_traces(
    auth: AuthDep, services: ServicesDep,
    page: int | None = None, limit: int | None = None,
    user_id: Annotated[str | None, Query(alias="userId")] = None,
    name: str | None = None,
    session_id: Annotated[str | None, Query(alias="sessionId")] = None,
    from_timestamp: Annotated[str | None, Query(alias="fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, Query(alias="toTimestamp")] = None,
    order_by: Annotated[str | None, Query(alias="orderBy")] = None,
    tags: Annotated[list[str] | None, Query()] = None,
    version: str | None = None, release: str | None = None,
    environment: Annotated[list[str] | None, Query()] = None,
    fields: str | None = None, filter: str | None = None,
) -> dict[str, Any]:
    return tracing.list_traces(
        services.olap, auth.project_id, page=page, limit=limit, order_by=order_by, fields=fields,
        user_id=user_id, name=name, session_id=session_id, from_timestamp=from_timestamp,
        to_timestamp=to_timestamp, tags=tags, version=version, release=release, environment=environment,
        filter=filter,
    )


@router.get("/api/public/traces/{trace_id}", **typed(TraceWithFullDetails))
def get_trace(trace_id: str, auth: AuthDep, services: ServicesDep, fields: str | None = None) -> dict[str, Any]:
    trace = tracing.get_trace(services.olap, auth.project_id, trace_id, fields=fields)
    if trace is None:
        raise NotFound(f"Trace {trace_id} not found within authorized project")
    attach_model_prices(services, auth.project_id, trace["observations"])
    return trace


@router.delete("/api/public/traces/{trace_id}", **typed(Message))
def delete_trace(trace_id: str, auth: AuthDep, services: ServicesDep, actor: ActorDep) -> dict[str, str]:
    delete_trace_data(services, auth.project_id, [trace_id])
    audit_action(services, auth, actor, "trace.deleted", "trace", trace_id)
    return {"message": "Trace deleted successfully"}


@router.delete("/api/public/traces", **typed(Message))
def delete_traces(auth: AuthDep, services: ServicesDep, actor: ActorDep,
                  body: Annotated[Any, Body()] = None) -> dict[str, str]:
    ids = body.get("traceIds") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise InvalidRequest("Body must be {\"traceIds\": [...]} with at least one trace id")
    delete_trace_data(services, auth.project_id, ids)
    audit_action(services, auth, actor, "trace.deleted", "trace", ids[0] if len(ids) == 1 else None,
                 before={"trace_ids": ids})
    return {"message": "Traces deleted successfully"}
