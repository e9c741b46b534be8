"""LLM connections: /api/public/llm-connections (secrets are write-only; reads show them masked)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from owlscope import audit
from owlscope.api.deps import ActorDep, AuthDep, ServicesDep
from owlscope.api.schemas import LlmConnection, Message, PaginatedLlmConnections, typed
from owlscope.evals.connections import (
    UpsertConnectionRequest,
    audit_summary,
    connection_shape,
    delete_connection,
    get_connection,
    list_connections,
    upsert_connection,
)
from owlscope.wire import PageRequest

router = APIRouter(tags=["LlmConnections"])


@router.get("/api/public/llm-connections", **typed(PaginatedLlmConnections))
def llm_connections_list(
    auth: AuthDep, services: ServicesDep, page: int | None = None, limit: int | None = None
) -> dict[str, Any]:
    found = list_connections(services.sessions, auth.project_id, PageRequest.of(page, limit, maximum=100))
    return {"data": found.data, "meta": found.meta()}


@router.put("/api/public/llm-connections", **typed(LlmConnection))
def llm_connections_upsert(body: UpsertConnectionRequest, auth: AuthDep, services: ServicesDep,
                           actor: ActorDep) -> dict[str, Any]:
    before = _existing(services, auth.project_id, provider=body.provider)
    saved = upsert_connection(services.sessions, services.settings, auth.project_id, body)
    audit.record_in(services.sessions, actor, "llm_connection.updated" if before else "llm_connection.created",
                    org_id=auth.org_id, project_id=auth.project_id, resource_type="llm_connection",
                    resource_id=saved["id"], before=audit_summary(before), after=audit_summary(saved))
    return saved


@router.delete("/api/public/llm-connections/{id}", **typed(Message))
def llm_connections_delete(id: str, auth: AuthDep, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    before = _existing(services, auth.project_id, connection_id=id)
    delete_connection(services.sessions, auth.project_id, id)
    audit.record_in(services.sessions, actor, "llm_connection.deleted", org_id=auth.org_id,
                    project_id=auth.project_id, resource_type="llm_connection", resource_id=id,
                    before=audit_summary(before))
    return {"message": "LLM connection successfully deleted"}


def _existing(services: ServicesDep, project_id: str, **which: str) -> dict[str, Any] | None:
    with services.sessions() as session:
        row = get_connection(session, project_id, **which)
        return connection_shape(row) if row is not None else None
