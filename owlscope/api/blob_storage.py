"""Blob storage export integration: /api/public/integrations/blob-storage (Langfuse's shapes).

Langfuse asks for an organization-scoped key here; a project key manages its own project's
integration (the body's projectId must be the key's project)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import (
    BlobStorageIntegrationDeletionResponse,
    BlobStorageIntegrationResponse,
    BlobStorageIntegrationsResponse,
    BlobStorageIntegrationStatusResponse,
    typed,
)
from owlscope.integrations import exports

router = APIRouter(tags=["BlobStorageIntegrations"])
PATH = "/api/public/integrations/blob-storage"


@router.get(PATH, **typed(BlobStorageIntegrationsResponse))
def blob_storage_list(auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return {"data": exports.list_integrations(services, auth.project_id)}


@router.put(PATH, **typed(BlobStorageIntegrationResponse))
def blob_storage_upsert(body: Annotated[dict[str, Any], Body()], auth: AuthDep, services: ServicesDep
                        ) -> dict[str, Any]:
    """CreateBlobStorageIntegrationRequest; each field is checked by `exports.upsert_integration`."""
    return exports.upsert_integration(services, auth.project_id, body)


@router.get(PATH + "/{integrationId}", **typed(BlobStorageIntegrationStatusResponse))
def blob_storage_status(integrationId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return exports.integration_status(services, auth.project_id, integrationId)


@router.delete(PATH + "/{integrationId}", **typed(BlobStorageIntegrationDeletionResponse))
def blob_storage_delete(integrationId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    exports.delete_integration(services, auth.project_id, integrationId)
    return {"message": "Blob storage integration deleted"}
