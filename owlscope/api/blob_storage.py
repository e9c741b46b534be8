"""Blob storage export integration: /api/public/integrations/blob-storage (Langfuse's shapes).

Langfuse asks for an organization-scoped key here; a project key manages its own project's
integration (the body's projectId must be the key's project)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import (
    BlobStorageIntegrationDeletionResponse,
    BlobStorageIntegrationResponse,
    BlobStorageIntegrationsResponse,
    BlobStorageIntegrationStatusResponse,
    typed,
)
from owlscope.errors import InvalidRequest
from owlscope.integrations import exports

router = APIRouter(tags=["BlobStorageIntegrations"])
PATH = "/api/public/integrations/blob-storage"


@router.get(PATH, **typed(BlobStorageIntegrationsResponse))
def blob_storage_list(auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return {"data": exports.list_integrations(services, auth.project_id)}


@router.put(PATH, **typed(BlobStorageIntegrationResponse))
async def blob_storage_upsert(request: Request, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise InvalidRequest("The body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object")

    return await run_in_threadpool(exports.upsert_integration, services, auth.project_id, body)


@router.get(PATH + "/{integrationId}", **typed(BlobStorageIntegrationStatusResponse))
def blob_storage_status(integrationId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return exports.integration_status(services, auth.project_id, integrationId)


@router.delete(PATH + "/{integrationId}", **typed(BlobStorageIntegrationDeletionResponse))
def blob_storage_delete(integrationId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    exports.delete_integration(services, auth.project_id, integrationId)
    return {"message": "Blob storage integration deleted"}
