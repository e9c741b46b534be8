"""A project's data retention: PATCH /api/public/projects/{projectId} with `{"retention": days}`
(0 keeps everything), as the Langfuse API does; the project key's own project only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, StrictInt

from owlscope.api.deps import ActorDep, AuthDep, ServicesDep, audit_action
from owlscope.api.schemas import ProjectRetention, typed
from owlscope.data_retention import retention_days, set_retention
from owlscope.errors import NotFound

router = APIRouter(tags=["Projects"])


class RetentionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    retention: StrictInt


@router.patch("/api/public/projects/{projectId}", **typed(ProjectRetention))
def project_set_retention(projectId: str, body: RetentionBody, auth: AuthDep, services: ServicesDep,
                          actor: ActorDep) -> dict[str, Any]:
    if projectId != auth.project_id:
        raise NotFound("Project not found")
    before = retention_days(services, projectId)
    days = set_retention(services, projectId, body.retention)
    audit_action(services, auth, actor, "retention.changed", "project", projectId,
                 before={"retention_days": before}, after={"retention_days": days})
    return {"id": projectId, "retentionDays": days}
