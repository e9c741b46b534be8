"""LLM connections: /api/public/llm-connections (secrets are write-only; reads show them masked)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import LlmConnection, Message, PaginatedLlmConnections, typed
from owlscope.evals.connections import (
    UpsertConnectionRequest,
    delete_connection,
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
def llm_connections_upsert(body: UpsertConnectionRequest, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return upsert_connection(services.sessions, services.settings, auth.project_id, body)


@router.delete("/api/public/llm-connections/{id}", **typed(Message))
def llm_connections_delete(id: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    delete_connection(services.sessions, auth.project_id, id)
    return {"message": "LLM connection successfully deleted"}
