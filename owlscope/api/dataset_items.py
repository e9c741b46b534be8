"""Dataset items: /api/public/dataset-items (upsert by id, list — optionally as of a `version`
timestamp —, get, delete)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StrictStr

from owlscope.api.deps import ActorDep, AuthDep, ServicesDep, audit_action
from owlscope.api.schemas import DatasetItem, Message, PaginatedDatasetItems, typed
from owlscope.datasets.items import delete_item, get_item, list_items, upsert_item
from owlscope.media.references import attach_item_media
from owlscope.pipeline.masking import masker_for
from owlscope.wire import PageRequest

router = APIRouter(tags=["DatasetItems"])


class CreateDatasetItemBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    datasetName: StrictStr
    input: Any = None
    expectedOutput: Any = None
    metadata: Any = None
    sourceTraceId: StrictStr | None = None
    sourceObservationId: StrictStr | None = None
    id: StrictStr | None = None
    status: StrictStr | None = None


@router.post("/api/public/dataset-items", **typed(DatasetItem))
def dataset_items_create(body: CreateDatasetItemBody, request: Request, auth: AuthDep, services: ServicesDep
                         ) -> dict[str, Any]:
    item = upsert_item(
        services.sessions, masker=masker_for(services, auth.project_id), project_id=auth.project_id,
        dataset_name=body.datasetName, item_id=body.id,
        input=body.input, expected_output=body.expectedOutput, metadata=body.metadata,
        source_trace_id=body.sourceTraceId, source_observation_id=body.sourceObservationId, status=body.status,
    )
    return _with_media(request, services, auth.project_id, [item])[0]


def _with_media(request: Request, services: ServicesDep, project_id: str, items: list[dict[str, Any]]
                ) -> list[dict[str, Any]]:
    attach_item_media(services, project_id, items, base_url=services.settings.public_url or str(request.base_url))
    return items


@router.get("/api/public/dataset-items", **typed(PaginatedDatasetItems))
def dataset_items_list(
    request: Request, auth: AuthDep, services: ServicesDep, datasetName: str | None = None,
    sourceTraceId: str | None = None,
    sourceObservationId: str | None = None, version: str | None = None, page: int | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    data, meta = list_items(
        services.sessions, project_id=auth.project_id, dataset_name=datasetName, source_trace_id=sourceTraceId,
        source_observation_id=sourceObservationId, version=version, paging=PageRequest.of(page, limit),
        status="ACTIVE",  # as in Langfuse: archived items are not part of the dataset's item list
    )
    return {"data": _with_media(request, services, auth.project_id, data), "meta": meta}


@router.get("/api/public/dataset-items/{id:path}", **typed(DatasetItem))
def dataset_items_get(id: str, request: Request, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    item = get_item(services.sessions, project_id=auth.project_id, item_id=id)
    return _with_media(request, services, auth.project_id, [item])[0]


@router.delete("/api/public/dataset-items/{id:path}", **typed(Message))
def dataset_items_delete(id: str, auth: AuthDep, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    answer = delete_item(services.sessions, project_id=auth.project_id, item_id=id)
    audit_action(services, auth, actor, "dataset_item.deleted", "dataset_item", id)
    return answer
