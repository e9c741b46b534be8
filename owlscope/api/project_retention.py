"""A project's data retention: PATCH /api/public/projects/{projectId} with `{"retention": days}`
(0 keeps everything), as the Langfuse API does; the project key's own project only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, StrictInt

from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import ProjectRetention, typed
from owlscope.data_retention import set_retention
from owlscope.errors import NotFound

router = APIRouter(tags=["Projects"])


class RetentionBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    retention: StrictInt


@router.patch("/api/public/projects/{projectId}", **typed(ProjectRetention))
def project_set_retention(projectId: str, body: RetentionBody, auth: AuthDep, services: ServicesDep
                          ) -> dict[str, Any]:
    if projectId != auth.project_id:
        raise NotFound("Project not found")
    days = set_retention(services, projectId, body.retention)
    return {"id": projectId, "retentionDays": days}
