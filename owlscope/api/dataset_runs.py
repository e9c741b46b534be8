"""Dataset runs and run items (/api/public/dataset-run-items, /api/public/datasets/{name}/runs…)
and the experiment views over them (/api/public/experiments, /api/public/experiment-items)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, StrictStr

from owlscope.api.datasets import path_names
from owlscope.api.deps import ActorDep, AuthDep, ServicesDep, audit_action
from owlscope.api.schemas import (
    DatasetRunItem,
    DatasetRunWithItems,
    ExperimentItemsResponse,
    ExperimentsResponse,
    Message,
    PaginatedDatasetRunItems,
    PaginatedDatasetRuns,
    typed,
)
from owlscope.datasets.experiments import list_experiment_items, list_experiments
from owlscope.datasets.runs import (
    DEPRECATION,
    create_run_item,
    delete_run,
    get_run,
    list_run_items,
    list_runs,
)
from owlscope.evals.jobs import schedule_run_items
from owlscope.wire import PageRequest

router = APIRouter(tags=["DatasetRuns"])
_RUNS = "/api/public/datasets/"


class CreateRunItemBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    runName: StrictStr
    runDescription: StrictStr | None = None
    metadata: Any = None
    datasetItemId: StrictStr
    observationId: StrictStr | None = None
    traceId: StrictStr | None = None
    datasetVersion: StrictStr | None = None
    createdAt: StrictStr | None = None


@router.post("/api/public/dataset-run-items", **typed(DatasetRunItem))
def dataset_run_items_create(body: CreateRunItemBody, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    item = create_run_item(
        services.sessions, services.olap, project_id=auth.project_id, run_name=body.runName,
        dataset_item_id=body.datasetItemId, trace_id=body.traceId, observation_id=body.observationId,
        run_description=body.runDescription, metadata=body.metadata, dataset_version=body.datasetVersion,
        created_at=body.createdAt,
    )
    schedule_run_items(services, auth.project_id, [item["id"]])  # experiment evaluators judge it
    return item


@router.get("/api/public/dataset-run-items", **typed(PaginatedDatasetRunItems))
def dataset_run_items_list(auth: AuthDep, services: ServicesDep, datasetId: str, runName: str,
                           page: int | None = None, limit: int | None = None) -> dict[str, Any]:
    data, meta = list_run_items(services.sessions, project_id=auth.project_id, dataset_id=datasetId,
                                run_name=runName, paging=PageRequest.of(page, limit))
    return {"data": data, "meta": meta, "_deprecation": DEPRECATION}


@router.get("/api/public/datasets/{datasetName:path}/runs", **typed(PaginatedDatasetRuns))
def dataset_runs_list(datasetName: str, request: Request, auth: AuthDep, services: ServicesDep,
                      page: int | None = None, limit: int | None = None) -> dict[str, Any]:
    [name, _] = path_names(request, _RUNS, 2, [datasetName, "runs"])
    data, meta = list_runs(services.sessions, project_id=auth.project_id, dataset_name=name,
                           paging=PageRequest.of(page, limit))
    return {"data": data, "meta": meta, "_deprecation": DEPRECATION}


@router.get("/api/public/datasets/{datasetName:path}/runs/{runName:path}", **typed(DatasetRunWithItems))
def dataset_run_get(datasetName: str, runName: str, request: Request, auth: AuthDep,
                    services: ServicesDep) -> dict[str, Any]:
    name, run = path_names(request, _RUNS, 2, [datasetName, runName], sep="runs")
    out = get_run(services.sessions, services.olap, project_id=auth.project_id, dataset_name=name, run_name=run)
    out["_deprecation"] = DEPRECATION
    return out


@router.delete("/api/public/datasets/{datasetName:path}/runs/{runName:path}", **typed(Message))
def dataset_run_delete(datasetName: str, runName: str, request: Request, auth: AuthDep,
                       services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    name, run = path_names(request, _RUNS, 2, [datasetName, runName], sep="runs")
    answer = delete_run(services.sessions, project_id=auth.project_id, dataset_name=name, run_name=run)
    audit_action(services, auth, actor, "dataset_run.deleted", "dataset_run", run, before={"dataset": name})
    return answer


@router.get("/api/public/experiments", **typed(ExperimentsResponse))
def experiments_list(
    auth: AuthDep, services: ServicesDep, fromStartTime: str, toStartTime: str | None = None,
    fields: str | None = None, limit: int | None = None, scoreLimit: int | None = None, cursor: str | None = None,
    id: str | None = None, name: str | None = None, datasetId: str | None = None, filter: str | None = None,
) -> dict[str, Any]:
    return list_experiments(
        services.sessions, services.olap, project_id=auth.project_id, from_start_time=fromStartTime,
        to_start_time=toStartTime, fields=fields, limit=limit, score_limit=scoreLimit, cursor=cursor, ids=id,
        names=name, dataset_ids=datasetId, filter=filter,
    )


@router.get("/api/public/experiment-items", **typed(ExperimentItemsResponse))
def experiment_items_list(
    auth: AuthDep, services: ServicesDep, fromStartTime: str, toStartTime: str | None = None,
    fields: str | None = None, limit: int | None = None, scoreLimit: int | None = None, cursor: str | None = None,
    experimentId: str | None = None, experimentName: str | None = None, experimentItemId: str | None = None,
    datasetId: str | None = None, filter: str | None = None,
) -> dict[str, Any]:
    return list_experiment_items(
        services.sessions, services.olap, project_id=auth.project_id, from_start_time=fromStartTime,
        to_start_time=toStartTime, fields=fields, limit=limit, score_limit=scoreLimit, cursor=cursor,
        experiment_ids=experimentId, experiment_names=experimentName, item_ids=experimentItemId,
        dataset_ids=datasetId, filter=filter,
    )
