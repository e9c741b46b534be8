"""Dataset runs and run items: the public API's (deprecated but used by SDK v4) run-item endpoint,
run lists and details, deletes, and the idempotent writes the experiment recorder uses.

A run is identified by (dataset, name). Its id is the one the SDK derives for an experiment on a
dataset (`experiment_run_id`), so a run created by `POST /dataset-run-items` and the same run
recorded from SDK spans coincide, and run-level scores (datasetRunId) find it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from owlscope.datasets.common import (
    check_length,
    experiment_run_id,
    parse_time,
    stable_id,
)
from owlscope.datasets.olap_reads import scores_for_runs
from owlscope.datasets.store import find_dataset
from owlscope.errors import InvalidRequest, NotFound
from owlscope.storage.olap.client import Olap
from owlscope.storage.oltp.base import new_id, utcnow
from owlscope.storage.oltp.dataset_models import (
    RUN_NAME_LENGTH,
    Dataset,
    DatasetItem,
    DatasetRun,
    DatasetRunItem,
)
from owlscope.storage.oltp.db import write_transaction
from owlscope.tracing.obs_select import observation_trace
from owlscope.wire import PageRequest, iso

DEPRECATION = {
    "message": "Dataset runs are replaced by experiments (GET /api/public/experiments).",
}


def run_to_api(run: DatasetRun, dataset_name: str | None) -> dict[str, Any]:
    return {
        "id": run.id, "name": run.name, "description": run.description, "metadata": run.metadata_,
        "datasetId": run.dataset_id, "datasetName": dataset_name, "createdAt": iso(run.created_at),
        "updatedAt": iso(run.updated_at),
    }


def run_item_to_api(ri: DatasetRunItem, run_name: str) -> dict[str, Any]:
    return {
        "id": ri.id, "datasetRunId": ri.run_id, "datasetRunName": run_name, "datasetItemId": ri.dataset_item_id
        or ri.item_key, "traceId": ri.trace_id, "observationId": ri.observation_id,
        "createdAt": iso(ri.created_at), "updatedAt": iso(ri.updated_at),
    }


def insert_ignore(session: Session, table: Any, values: dict[str, Any]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING (SQLite and PostgreSQL): concurrent writers of the same
    record (two workers recording one experiment) never fail; the loser reads the winner's row."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return session.execute(insert(table).values(**values).on_conflict_do_nothing()).rowcount


def find_run(session: Session, project_id: str, dataset_id: str, name: str) -> DatasetRun | None:
    return session.scalars(select(DatasetRun).where(
        DatasetRun.project_id == project_id, DatasetRun.dataset_id == dataset_id, DatasetRun.name == name)).first()


def ensure_run(
    session: Session, *, project_id: str, dataset_id: str | None, name: str, run_id: str | None = None,
    description: str | None = None, metadata: Any = None, created_at: datetime | None = None,
) -> DatasetRun:
    """The run (dataset, name) — or, without a dataset, the run with `run_id` — created if missing.
    A given description/metadata replaces the stored one."""
    if dataset_id is None and not run_id:
        raise ValueError("a run without a dataset needs its id")

    def existing() -> DatasetRun | None:
        if dataset_id is not None:
            return find_run(session, project_id, dataset_id, name)
        return session.get(DatasetRun, (project_id, run_id), populate_existing=True)

    run = existing()
    if run is None:
        now = created_at or utcnow()
        candidates = [run_id] if run_id else []
        if dataset_id is not None:
            candidates += [experiment_run_id(project_id, dataset_id, name), new_id()]
        for rid in candidates:
            insert_ignore(session, DatasetRun.__table__, {
                "project_id": project_id, "id": rid, "dataset_id": dataset_id, "name": name,
                "description": description, "metadata": metadata, "created_at": now, "updated_at": now,
            })
            run = existing()
            if run is not None:
                return run
        raise RuntimeError(f"could not create run {name!r}")
    changed = False
    if description is not None and description != run.description:
        run.description, changed = description, True
    if metadata is not None and metadata != run.metadata_:
        run.metadata_, changed = metadata, True
    if changed:
        run.updated_at = utcnow()
        session.flush()
    return run


def record_run_item(
    session: Session, run: DatasetRun, *, item_key: str, dataset_item_id: str | None, trace_id: str,
    observation_id: str | None = None, dataset_item_version: datetime | None = None,
    created_at: datetime | None = None,
) -> DatasetRunItem:
    """The run item (run, item, trace), created if missing; a later call fills what it lacked and
    keeps the earliest `created_at` (spans of one item arrive in any order)."""
    rid = stable_id(run.project_id, run.id, item_key, trace_id)
    now = utcnow()
    insert_ignore(session, DatasetRunItem.__table__, {
        "id": rid, "project_id": run.project_id, "run_id": run.id, "dataset_item_id": dataset_item_id,
        "item_key": item_key, "trace_id": trace_id, "observation_id": observation_id,
        "dataset_item_version": dataset_item_version, "created_at": created_at or now, "updated_at": now,
    })
    ri = session.scalars(select(DatasetRunItem).where(
        DatasetRunItem.project_id == run.project_id, DatasetRunItem.run_id == run.id,
        DatasetRunItem.item_key == item_key, DatasetRunItem.trace_id == trace_id,
    ).execution_options(populate_existing=True)).one()
    if observation_id and ri.observation_id != observation_id:
        ri.observation_id = observation_id
    if dataset_item_version is not None and ri.dataset_item_version is None:
        ri.dataset_item_version = dataset_item_version
    if created_at is not None and created_at < ri.created_at:
        ri.created_at = created_at
    session.flush()
    return ri


def create_run_item(
    sessions: sessionmaker[Session], olap: Olap | None, *, project_id: str, run_name: str, dataset_item_id: str,
    trace_id: str | None = None, observation_id: str | None = None, run_description: str | None = None,
    metadata: Any = None, dataset_version: Any = None, created_at: Any = None,
) -> dict[str, Any]:
    """POST /dataset-run-items: link a trace to a dataset item in the run `run_name` (created on
    first use in the item's dataset; description and metadata update an existing run)."""
    if not isinstance(run_name, str) or not run_name:
        raise InvalidRequest("runName must be a non-empty string")
    check_length(run_name, "runName", RUN_NAME_LENGTH)
    check_length(trace_id, "traceId")
    check_length(observation_id, "observationId")
    version = parse_time(dataset_version, "datasetVersion")
    created = parse_time(created_at, "createdAt")
    if not trace_id:
        if observation_id and olap is not None:
            trace_id = observation_trace(olap, project_id, observation_id)
        if not trace_id:
            raise InvalidRequest("traceId is required (it could not be inferred from observationId)")
    with write_transaction(sessions) as session:
        item = session.get(DatasetItem, (project_id, dataset_item_id))
        if item is None:
            raise NotFound(f"Dataset item {dataset_item_id!r} not found")
        run = ensure_run(session, project_id=project_id, dataset_id=item.dataset_id, name=run_name,
                         description=run_description, metadata=metadata)
        ri = record_run_item(session, run, item_key=item.id, dataset_item_id=item.id, trace_id=trace_id,
                             observation_id=observation_id, dataset_item_version=version, created_at=created)
        return run_item_to_api(ri, run.name)


def list_run_items(
    sessions: sessionmaker[Session], *, project_id: str, dataset_id: str, run_name: str, paging: PageRequest = PageRequest(),
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    with sessions() as session:
        run = find_run(session, project_id, dataset_id, run_name)
        if run is None:
            raise NotFound(f"Dataset run {run_name!r} not found")
        conds = (DatasetRunItem.project_id == project_id, DatasetRunItem.run_id == run.id)
        total = session.scalar(select(func.count()).select_from(DatasetRunItem).where(*conds)) or 0
        rows = session.scalars(select(DatasetRunItem).where(*conds).order_by(
            DatasetRunItem.created_at.desc(), DatasetRunItem.id).offset(paging.offset).limit(paging.limit)).all()
        return [run_item_to_api(r, run.name) for r in rows], paging.meta(total)


def list_runs(
    sessions: sessionmaker[Session], *, project_id: str, dataset_name: str, paging: PageRequest = PageRequest(),
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """A dataset's runs, newest first; returns (data, meta)."""
    with sessions() as session:
        ds = find_dataset(session, project_id, dataset_name)
        conds = (DatasetRun.project_id == project_id, DatasetRun.dataset_id == ds.id)
        total = session.scalar(select(func.count()).select_from(DatasetRun).where(*conds)) or 0
        rows = session.scalars(select(DatasetRun).where(*conds).order_by(
            DatasetRun.created_at.desc(), DatasetRun.id).offset(paging.offset).limit(paging.limit)).all()
        return [run_to_api(r, ds.name) for r in rows], paging.meta(total)


def _find_run_by_name(session: Session, project_id: str, dataset_name: str, run_name: str) -> tuple[Dataset, DatasetRun]:
    ds = find_dataset(session, project_id, dataset_name)
    run = find_run(session, project_id, ds.id, run_name)
    if run is None:
        raise NotFound(f"Dataset run {run_name!r} not found in dataset {dataset_name!r}")
    return ds, run


def get_run(
    sessions: sessionmaker[Session], olap: Olap | None, *, project_id: str, dataset_name: str, run_name: str,
) -> dict[str, Any]:
    """A run with its items (`DatasetRunWithItems`) and its run-level scores (`scores`)."""
    with sessions() as session:
        ds, run = _find_run_by_name(session, project_id, dataset_name, run_name)
        items = session.scalars(select(DatasetRunItem).where(
            DatasetRunItem.project_id == project_id, DatasetRunItem.run_id == run.id,
        ).order_by(DatasetRunItem.created_at, DatasetRunItem.id)).all()
        out = run_to_api(run, ds.name)
        out["datasetRunItems"] = [run_item_to_api(r, run.name) for r in items]
    out["scores"] = scores_for_runs(olap, project_id, [run.id]).get(run.id, []) if olap is not None else []
    return out


def delete_run(sessions: sessionmaker[Session], *, project_id: str, dataset_name: str, run_name: str) -> dict[str, str]:
    """Delete a run and its run items (traces and scores stay)."""
    with write_transaction(sessions) as session:
        _, run = _find_run_by_name(session, project_id, dataset_name, run_name)
        session.delete(run)
    return {"message": "Dataset run successfully deleted"}
