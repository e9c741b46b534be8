"""GET /api/public/sessions and /api/public/sessions/{sessionId}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from owlscope import tracing
from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import PaginatedSessions, SessionWithTraces, typed
from owlscope.errors import NotFound

router = APIRouter(tags=["sessions"])


@router.get("/api/public/sessions", **typed(PaginatedSessions))
def list_sessions(
    auth: AuthDep, services: ServicesDep, page: int | None = None, limit: int | None = None,
    from_timestamp: Annotated[str | None, Query(alias="fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, Query(alias="toTimestamp")] = None,
    environment: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    return tracing.list_sessions(services.olap, auth.project_id, page=page, limit=limit,
                                 from_timestamp=from_timestamp, to_timestamp=to_timestamp, environment=environment)


@router.get("/api/public/sessions/{session_id}", **typed(SessionWithTraces))
def get_session(session_id: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    session = tracing.get_session(services.olap, auth.project_id, session_id)
    if session is None:
        raise NotFound(f"Session {session_id} not found within authorized project")
    return session
