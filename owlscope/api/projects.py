from __future__ import annotations

from fastapi import APIRouter

from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import Projects, typed
from owlscope.errors import NotFound

router = APIRouter()


@router.get("/api/public/projects", **typed(Projects))
def get_projects(auth: AuthDep, services: ServicesDep) -> dict:
    """The project the API key belongs to (the SDK's auth check calls this)."""
    from owlscope.storage.oltp.models import Project

    with services.sessions() as session:
        project = session.get(Project, auth.project_id)
        if project is None or project.deleted_at is not None:
            raise NotFound("Project not found")
        return {
            "data": [{
                "id": project.id,
                "name": project.name,
                "organization": {"id": project.org_id, "name": project.organization.name},
                "metadata": project.meta or {},
                "retentionDays": project.retention_days,
            }]
        }
