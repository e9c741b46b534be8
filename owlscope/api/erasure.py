"""Erasure: DELETE /api/public/users/{userId} and DELETE /api/public/sessions/{sessionId} delete
every trace of that user or session in the key's project, with observations, scores, media and
raw events."""

from __future__ import annotations

from fastapi import APIRouter

from owlscope.api.deps import ActorDep, AuthDep, ServicesDep, audit_action
from owlscope.api.schemas import ErasureResult, typed
from owlscope.data_retention import erase

router = APIRouter(tags=["Erasure"])


@router.delete("/api/public/users/{userId}", **typed(ErasureResult))
def users_delete(userId: str, auth: AuthDep, services: ServicesDep, actor: ActorDep) -> dict[str, object]:
    deleted = erase(services, auth.project_id, user_id=userId)
    audit_action(services, auth, actor, "user.erased", "user", userId, after={"deleted_traces": deleted})
    return {"message": "User data deleted", "deletedTraces": deleted}


@router.delete("/api/public/sessions/{sessionId}", **typed(ErasureResult))
def sessions_delete(sessionId: str, auth: AuthDep, services: ServicesDep, actor: ActorDep) -> dict[str, object]:
    deleted = erase(services, auth.project_id, session_id=sessionId)
    audit_action(services, auth, actor, "session.erased", "session", sessionId, after={"deleted_traces": deleted})
    return {"message": "Session deleted", "deletedTraces": deleted}
