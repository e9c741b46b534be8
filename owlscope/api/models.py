"""Model definitions: /api/public/models (project models plus the built-in price table)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import Model, PaginatedModels, typed
from owlscope.services import Services
from owlscope.tracing_config.models import (
    CreateModelRequest,
    create_model,
    delete_model,
    get_model,
    list_models,
)
from owlscope.wire import PageRequest

router = APIRouter(tags=["Models"])


def _prices_changed(services: Services, project_id: str) -> None:
    # This process prices new generations at once; other workers within the price cache's TTL.
    services.processor.enricher.invalidate(project_id)


@router.post("/api/public/models", **typed(Model))
def models_create(body: CreateModelRequest, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    model = create_model(services.sessions, project_id=auth.project_id, data=body)
    _prices_changed(services, auth.project_id)
    return model.to_dict()


@router.get("/api/public/models", **typed(PaginatedModels))
def models_list(
    auth: AuthDep, services: ServicesDep, page: int | None = None, limit: int | None = None
) -> dict[str, Any]:
    found = list_models(services.sessions, project_id=auth.project_id, page=PageRequest.of(page, limit, maximum=100))
    return {"data": [m.to_dict() for m in found.data], "meta": found.meta()}


@router.get("/api/public/models/{id}", **typed(Model))
def models_get(id: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return get_model(services.sessions, project_id=auth.project_id, model_id=id).to_dict()


@router.delete("/api/public/models/{id}", status_code=204, **typed(None))
def models_delete(id: str, auth: AuthDep, services: ServicesDep) -> Response:
    delete_model(services.sessions, project_id=auth.project_id, model_id=id)
    _prices_changed(services, auth.project_id)
    return Response(status_code=204)
