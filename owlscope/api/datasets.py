"""Datasets: /api/public/v2/datasets (list, create-or-update by name, get by name).

Dataset names may contain `/`; clients URL-encode it (`%2F`), so a name is read from the raw
path when one is there (see `path_names`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StrictStr

from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import Dataset, PaginatedDatasets, typed
from owlscope.datasets.store import create_dataset, get_dataset, list_datasets
from owlscope.wire import PageRequest

router = APIRouter(tags=["Datasets"])


def path_names(request: Request, prefix: str, count: int, fallback: list[str], *, sep: str | None = None) -> list[str]:
    """The `count` URL-encoded names in the raw path after `prefix` (split at `/`, with `sep` a
    literal segment between them), decoded. When the client did not encode its slashes the split
    is ambiguous: then the router's values (`fallback`) are used."""
    raw = request.scope.get("raw_path")
    if raw:
        text = raw.decode("latin-1").split("?", 1)[0]
        if text.startswith(prefix):
            parts = text[len(prefix):].split("/")
            if sep is not None and len(parts) == 2 * count - 1 and all(p == sep for p in parts[1::2]):
                return [unquote(p) for p in parts[0::2]]
            if sep is None and len(parts) == count:
                return [unquote(p) for p in parts]
    return fallback


class CreateDatasetBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: StrictStr
    description: StrictStr | None = None
    metadata: Any = None
    inputSchema: Any = None
    expectedOutputSchema: Any = None


@router.get("/api/public/v2/datasets", **typed(PaginatedDatasets))
def datasets_list(auth: AuthDep, services: ServicesDep, page: int | None = None,
                  limit: int | None = None) -> dict[str, Any]:
    data, meta = list_datasets(services.sessions, project_id=auth.project_id, paging=PageRequest.of(page, limit))
    return {"data": data, "meta": meta}


@router.post("/api/public/v2/datasets", **typed(Dataset))
def datasets_create(body: CreateDatasetBody, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return create_dataset(
        services.sessions, project_id=auth.project_id, name=body.name, description=body.description,
        metadata=body.metadata, input_schema=body.inputSchema, expected_output_schema=body.expectedOutputSchema,
    )


@router.get("/api/public/v2/datasets/{datasetName:path}", **typed(Dataset))
def datasets_get(datasetName: str, request: Request, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    [name] = path_names(request, "/api/public/v2/datasets/", 1, [datasetName])
    return get_dataset(services.sessions, project_id=auth.project_id, name=name)
