"""Blob storage export integration: /api/public/integrations/blob-storage (Langfuse's shapes).

Langfuse asks for an organization-scoped key here: it manages the integrations of every project of
its organization. A project key is accepted too and manages its own project's integration only
(the body's projectId must be the key's project)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from owlscope.api.deps import ManagedProjectsDep, ServicesDep
from owlscope.api.schemas import (
    BlobStorageIntegrationDeletionResponse,
    BlobStorageIntegrationResponse,
    BlobStorageIntegrationsResponse,
    BlobStorageIntegrationStatusResponse,
    typed,
)
from owlscope.errors import Forbidden, InvalidRequest, NotFound
from owlscope.integrations import exports

router = APIRouter(tags=["BlobStorageIntegrations"])
PATH = "/api/public/integrations/blob-storage"


@router.get(PATH, **typed(BlobStorageIntegrationsResponse))
def blob_storage_list(projects: ManagedProjectsDep, services: ServicesDep) -> dict[str, Any]:
    return {"data": [i for p in projects for i in exports.list_integrations(services, p)]}


@router.put(PATH, **typed(BlobStorageIntegrationResponse))
def blob_storage_upsert(body: Annotated[dict[str, Any], Body()], projects: ManagedProjectsDep,
                        services: ServicesDep) -> dict[str, Any]:
    """CreateBlobStorageIntegrationRequest; each field is checked by `exports.upsert_integration`."""
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object")
    project_id = body.get("projectId")
    if project_id not in projects:
        raise Forbidden("projectId must be a project this API key manages")
    return exports.upsert_integration(services, project_id, body)


def _project_of(services: ServicesDep, projects: list[str], integration_id: str) -> str:
    project_id = exports.project_of_integration(services, integration_id)
    if project_id is None or project_id not in projects:
        raise NotFound("Blob storage integration not found")
    return project_id


@router.get(PATH + "/{integrationId}", **typed(BlobStorageIntegrationStatusResponse))
def blob_storage_status(integrationId: str, projects: ManagedProjectsDep, services: ServicesDep) -> dict[str, Any]:
    return exports.integration_status(services, _project_of(services, projects, integrationId), integrationId)


@router.delete(PATH + "/{integrationId}", **typed(BlobStorageIntegrationDeletionResponse))
def blob_storage_delete(integrationId: str, projects: ManagedProjectsDep, services: ServicesDep) -> dict[str, Any]:
    exports.delete_integration(services, _project_of(services, projects, integrationId), integrationId)
    return {"message": "Blob storage integration deleted"}
