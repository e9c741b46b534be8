"""Organization administration with an organization API key: the organization's projects, API
keys and memberships, and each project's API keys and memberships (as Langfuse's
`/api/public/organizations/*` and `/api/public/projects/{projectId}/*`).

Every route takes `OrgAuthDep`: a project key is refused with 403, and everything is looked up
in the key's organization (another organization's project is a 404). Role rules are the UI's,
with the key acting as the role of the owner or admin who created it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import IntegrityError

from owlscope import audit
from owlscope.accounts import org_admin
from owlscope.api.deps import OrgActorDep, OrgAuthDep, ServicesDep
from owlscope.api.schemas import (
    ApiKeyDeletionResponse,
    ApiKeyList,
    ApiKeyResponse,
    MembershipDeletionResponse,
    MembershipResponse,
    MembershipsResponse,
    OrganizationApiKeysResponse,
    OrganizationProjectsResponse,
    Project,
    ProjectDeletionResponse,
    typed,
)
from owlscope.auth.keys import create_api_key, list_api_keys, revoke_api_key
from owlscope.auth.org_keys import clean_note, list_org_api_keys
from owlscope.errors import Conflict, Forbidden, InvalidRequest, NotFound
from owlscope.project_deletion import request_project_deletion
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.models import Project as ProjectRow
from owlscope.storage.oltp.models import Role
from owlscope.wire import iso

router = APIRouter(tags=["Organizations"])


class ProjectBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: Any = None
    metadata: Any = None
    retention: Any = None


class ApiKeyBody(BaseModel):
    note: str | None = None
    publicKey: str | None = None
    secretKey: str | None = None


class MembershipBody(BaseModel):
    userId: Any = None
    role: Any = None


class DeleteMembershipBody(BaseModel):
    userId: Any = None


def _project(project: ProjectRow, org_name: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"id": project.id, "name": project.name, "metadata": project.meta or {},
                            "retentionDays": project.retention_days}
    if org_name is not None:
        body["organization"] = {"id": project.org_id, "name": org_name}
    return body


def _key_summary(key: Any) -> dict[str, Any]:
    return {
        "id": key.id, "createdAt": iso(key.created_at), "expiresAt": iso(key.expires_at),
        "lastUsedAt": iso(key.last_used_at), "note": key.note, "publicKey": key.public_key,
        "displaySecretKey": key.display_secret_key,
    }


def _membership(m: org_admin.MembershipView) -> dict[str, Any]:
    return {"userId": m.user_id, "role": m.role.value, "email": m.email, "name": m.name or ""}


# ---- the organization -------------------------------------------------------------------------
@router.get("/api/public/organizations/projects", **typed(OrganizationProjectsResponse))
def organization_projects(auth: OrgAuthDep, services: ServicesDep) -> dict[str, Any]:
    with services.sessions() as session:
        projects = org_admin.org_projects(session, org_id=auth.org_id)
        return {"projects": [{"id": p.id, "name": p.name, "metadata": p.meta or {}, "createdAt": iso(p.created_at),
                              "updatedAt": iso(p.updated_at)} for p in projects]}


@router.get("/api/public/organizations/apiKeys", **typed(OrganizationApiKeysResponse))
def organization_api_keys(auth: OrgAuthDep, services: ServicesDep) -> dict[str, Any]:
    with services.sessions() as session:
        return {"apiKeys": [_key_summary(k) for k in list_org_api_keys(session, org_id=auth.org_id)]}


@router.get("/api/public/organizations/memberships", **typed(MembershipsResponse))
def organization_memberships(auth: OrgAuthDep, services: ServicesDep) -> dict[str, Any]:
    with services.sessions() as session:
        return {"memberships": [_membership(m) for m in org_admin.org_memberships(session, org_id=auth.org_id)]}


@router.put("/api/public/organizations/memberships", **typed(MembershipResponse))
def organization_membership_upsert(body: MembershipBody, auth: OrgAuthDep, services: ServicesDep, actor: OrgActorDep) -> dict[str, Any]:
    with write_transaction(services.sessions) as session:
        view = org_admin.upsert_org_membership(session, org_id=auth.org_id, user_id=body.userId, role=body.role,
                                               actor_role=auth.role)
        audit.record(session, actor, "member.role_changed", org_id=auth.org_id, resource_type="user",
                     resource_id=body.userId, after={"role": body.role})
    return _membership(view)


@router.delete("/api/public/organizations/memberships", **typed(MembershipDeletionResponse))
def organization_membership_delete(
    body: DeleteMembershipBody, auth: OrgAuthDep, services: ServicesDep, actor: OrgActorDep,
) -> dict[str, Any]:
    with write_transaction(services.sessions) as session:
        user_id = org_admin.remove_org_membership(session, org_id=auth.org_id, user_id=body.userId,
                                                  actor_role=auth.role)
        audit.record(session, actor, "member.removed", org_id=auth.org_id, resource_type="user", resource_id=user_id)
    return {"message": "Membership deleted successfully", "userId": user_id}


# ---- projects ---------------------------------------------------------------------------------
@router.post("/api/public/projects", **typed(Project))
def projects_create(body: ProjectBody, auth: OrgAuthDep, services: ServicesDep, actor: OrgActorDep) -> dict[str, Any]:
    with write_transaction(services.sessions) as session:
        project = org_admin.create_org_project(session, org_id=auth.org_id, name=body.name, metadata=body.metadata,
                                               retention=body.retention)
        audit.record(session, actor, "project.created", org_id=auth.org_id, project_id=project.id,
                     resource_type="project", resource_id=project.id, after={"name": project.name})
        return _project(project, project.organization.name)


@router.put("/api/public/projects/{projectId}", **typed(Project))
def projects_update(projectId: str, body: ProjectBody, auth: OrgAuthDep, services: ServicesDep, actor: OrgActorDep) -> dict[str, Any]:
    given = body.model_fields_set
    with write_transaction(services.sessions) as session:
        project = org_admin.update_org_project(
            session, org_id=auth.org_id, project_id=projectId, name=body.name,
            **({"metadata": body.metadata} if "metadata" in given else {}),
            **({"retention": body.retention} if "retention" in given else {}),
        )
        audit.record(session, actor, "project.updated", org_id=auth.org_id, project_id=project.id,
                     resource_type="project", resource_id=project.id,
                     after={"name": project.name, **({"retention": body.retention} if "retention" in given else {})})
        return _project(project, project.organization.name)


@router.delete("/api/public/projects/{projectId}", status_code=202, **typed(ProjectDeletionResponse))
def projects_delete(projectId: str, auth: OrgAuthDep, services: ServicesDep, actor: OrgActorDep) -> dict[str, Any]:
    if auth.role != Role.OWNER:  # as in the UI: deleting a project takes an owner
        raise Forbidden("Deleting a project needs an organization key created by an owner")
    request_project_deletion(services, org_id=auth.org_id, project_id=projectId, actor=actor)
    return {"success": True,
            "message": "Project deletion has been initiated and is being processed asynchronously"}


# ---- a project's API keys ---------------------------------------------------------------------
@router.get("/api/public/projects/{projectId}/apiKeys", **typed(ApiKeyList))
def project_api_keys(projectId: str, auth: OrgAuthDep, services: ServicesDep) -> dict[str, Any]:
    with services.sessions() as session:
        project = org_admin.org_project(session, org_id=auth.org_id, project_id=projectId)
        return {"apiKeys": [_key_summary(k) for k in list_api_keys(session, project_id=project.id)]}


@router.post("/api/public/projects/{projectId}/apiKeys", **typed(ApiKeyResponse))
def project_api_key_create(
    projectId: str, body: ApiKeyBody, auth: OrgAuthDep, services: ServicesDep, actor: OrgActorDep,
) -> dict[str, Any]:
    if bool(body.publicKey) != bool(body.secretKey):
        raise InvalidRequest("Both publicKey and secretKey must be provided together when specifying predefined keys")
    try:
        with write_transaction(services.sessions) as session:
            project = org_admin.org_project(session, org_id=auth.org_id, project_id=projectId)
            key, secret = create_api_key(
                session, project_id=project.id, salt=services.settings.salt or "", note=clean_note(body.note),
                public_key=body.publicKey or None, secret_key=body.secretKey or None,
            )
            audit.record(session, actor, "api_key.created", org_id=auth.org_id, project_id=project.id,
                         resource_type="api_key", resource_id=key.id, after={"publicKey": key.public_key})
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    except IntegrityError:
        raise Conflict("API key with the provided publicKey or secretKey already exists") from None
    return {"id": key.id, "createdAt": iso(key.created_at), "publicKey": key.public_key, "secretKey": secret,
            "displaySecretKey": key.display_secret_key, "note": key.note}


@router.delete("/api/public/projects/{projectId}/apiKeys/{apiKeyId}", **typed(ApiKeyDeletionResponse))
def project_api_key_delete(projectId: str, apiKeyId: str, auth: OrgAuthDep, services: ServicesDep, actor: OrgActorDep) -> dict[str, Any]:
    with write_transaction(services.sessions) as session:
        project = org_admin.org_project(session, org_id=auth.org_id, project_id=projectId)
        if not revoke_api_key(session, project_id=project.id, key_id=apiKeyId):
            raise NotFound("API key not found")
        audit.record(session, actor, "api_key.revoked", org_id=auth.org_id, project_id=project.id,
                     resource_type="api_key", resource_id=apiKeyId)
    services.keys.invalidate(key_id=apiKeyId)
    return {"success": True}


# ---- a project's memberships ------------------------------------------------------------------
@router.get("/api/public/projects/{projectId}/memberships", **typed(MembershipsResponse))
def project_memberships(projectId: str, auth: OrgAuthDep, services: ServicesDep) -> dict[str, Any]:
    with services.sessions() as session:
        project = org_admin.org_project(session, org_id=auth.org_id, project_id=projectId)
        return {"memberships": [_membership(m) for m in org_admin.project_memberships(session, project=project)]}


@router.put("/api/public/projects/{projectId}/memberships", **typed(MembershipResponse))
def project_membership_upsert(
    projectId: str, body: MembershipBody, auth: OrgAuthDep, services: ServicesDep, actor: OrgActorDep,
) -> dict[str, Any]:
    with write_transaction(services.sessions) as session:
        project = org_admin.org_project(session, org_id=auth.org_id, project_id=projectId)
        view = org_admin.upsert_project_membership(session, project=project, user_id=body.userId, role=body.role,
                                                   actor_role=auth.role)
        audit.record(session, actor, "project_member.role_changed", org_id=auth.org_id, project_id=project.id,
                     resource_type="user", resource_id=body.userId, after={"role": body.role})
    return _membership(view)


@router.delete("/api/public/projects/{projectId}/memberships", **typed(MembershipDeletionResponse))
def project_membership_delete(
    projectId: str, body: DeleteMembershipBody, auth: OrgAuthDep, services: ServicesDep, actor: OrgActorDep,
) -> dict[str, Any]:
    with write_transaction(services.sessions) as session:
        project = org_admin.org_project(session, org_id=auth.org_id, project_id=projectId)
        user_id = org_admin.remove_project_membership(session, project=project, user_id=body.userId,
                                                      actor_role=auth.role)
        audit.record(session, actor, "project_member.removed", org_id=auth.org_id, project_id=project.id,
                     resource_type="user", resource_id=user_id)
    return {"message": "Project membership deleted successfully", "userId": user_id}
