"""Dataset items: /api/public/dataset-items (upsert by id, list — optionally as of a `version`
timestamp —, get, delete)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, StrictStr

from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import DatasetItem, Message, PaginatedDatasetItems, typed
from owlscope.datasets.common import Paging
from owlscope.datasets.items import delete_item, get_item, list_items, upsert_item

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
def dataset_items_create(body: CreateDatasetItemBody, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return upsert_item(
        services.sessions, project_id=auth.project_id, dataset_name=body.datasetName, item_id=body.id,
        input=body.input, expected_output=body.expectedOutput, metadata=body.metadata,
        source_trace_id=body.sourceTraceId, source_observation_id=body.sourceObservationId, status=body.status,
    )


@router.get("/api/public/dataset-items", **typed(PaginatedDatasetItems))
def dataset_items_list(
    auth: AuthDep, services: ServicesDep, datasetName: str | None = None, sourceTraceId: str | None = None,
    sourceObservationId: str | None = None, version: str | None = None, page: int | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    data, meta = list_items(
        services.sessions, project_id=auth.project_id, dataset_name=datasetName, source_trace_id=sourceTraceId,
        source_observation_id=sourceObservationId, version=version, paging=Paging.of(page, limit),
        status="ACTIVE",  # as in Langfuse: archived items are not part of the dataset's item list
    )
    return {"data": data, "meta": meta}


@router.get("/api/public/dataset-items/{id:path}", **typed(DatasetItem))
def dataset_items_get(id: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return get_item(services.sessions, project_id=auth.project_id, item_id=id)


@router.delete("/api/public/dataset-items/{id:path}", **typed(Message))
def dataset_items_delete(id: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return delete_item(services.sessions, project_id=auth.project_id, item_id=id)
