"""Datasets: create (upsert by name), get, list, update, delete. Every query is scoped by project."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from owlscope.datasets.common import check_schema, schema_errors
from owlscope.errors import InvalidRequest, NotFound
from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.dataset_models import Dataset, DatasetItem
from owlscope.storage.oltp.db import write_transaction
from owlscope.wire import PageRequest, iso

UNSET: Any = object()  # "leave as it is" for update_dataset


def dataset_to_api(ds: Dataset) -> dict[str, Any]:
    return {
        "id": ds.id, "name": ds.name, "description": ds.description, "metadata": ds.metadata_,
        "inputSchema": ds.input_schema, "expectedOutputSchema": ds.expected_output_schema,
        "projectId": ds.project_id, "createdAt": iso(ds.created_at), "updatedAt": iso(ds.updated_at),
    }


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("name must be a non-empty string")
    if len(name) > 255:
        raise InvalidRequest("name must be at most 255 characters")
    return name


def find_dataset(session: Session, project_id: str, name: str) -> Dataset:
    ds = session.scalars(select(Dataset).where(Dataset.project_id == project_id, Dataset.name == name)).first()
    if ds is None:
        raise NotFound(f"Dataset {name!r} not found")
    return ds


def find_dataset_by_id(session: Session, project_id: str, dataset_id: str) -> Dataset | None:
    return session.scalars(
        select(Dataset).where(Dataset.project_id == project_id, Dataset.id == dataset_id)
    ).first()


def _check_existing_items(session: Session, ds: Dataset) -> None:
    """Setting a schema validates every current item: the first failures are reported, nothing changes."""
    if ds.input_schema is None and ds.expected_output_schema is None:
        return
    problems: list[str] = []
    rows = session.scalars(select(DatasetItem).where(
        DatasetItem.project_id == ds.project_id, DatasetItem.dataset_id == ds.id))
    for item in rows:
        errs = schema_errors(ds.input_schema, item.input, "input")
        errs += schema_errors(ds.expected_output_schema, item.expected_output, "expectedOutput")
        if errs:
            problems.append(f"item {item.id}: {'; '.join(errs)}")
        if len(problems) >= 5:
            break
    if problems:
        raise InvalidRequest("existing items of dataset " f"{ds.name!r} do not match the new schema: "
                             + " | ".join(problems))


def create_dataset(
    sessions: sessionmaker[Session], *, project_id: str, name: str, description: str | None = None,
    metadata: Any = None, input_schema: Any = None, expected_output_schema: Any = None,
) -> dict[str, Any]:
    """Create a dataset, or update the one with this name (fields given as None are kept, as the
    public API's upsert does). A schema that existing items do not match is a 400."""
    name = check_name(name)
    check_schema(input_schema, "inputSchema")
    check_schema(expected_output_schema, "expectedOutputSchema")
    for attempt in range(2):
        try:
            with write_transaction(sessions) as session:
                ds = session.scalars(select(Dataset).where(
                    Dataset.project_id == project_id, Dataset.name == name)).first()
                if ds is None:
                    ds = Dataset(project_id=project_id, name=name, description=description, metadata_=metadata,
                                 input_schema=input_schema, expected_output_schema=expected_output_schema)
                    session.add(ds)
                    session.flush()
                    return dataset_to_api(ds)
                changes = {"description": description, "metadata_": metadata, "input_schema": input_schema,
                           "expected_output_schema": expected_output_schema}
                return _apply(session, ds, {k: v for k, v in changes.items() if v is not None})
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def _apply(session: Session, ds: Dataset, changes: dict[str, Any]) -> dict[str, Any]:
    schema_changed = False
    for key, value in changes.items():
        if key in ("input_schema", "expected_output_schema") and value != getattr(ds, key):
            schema_changed = True
        setattr(ds, key, value)
    if changes:
        ds.updated_at = utcnow()
    if schema_changed:
        _check_existing_items(session, ds)
    session.flush()
    return dataset_to_api(ds)


def update_dataset(
    sessions: sessionmaker[Session], *, project_id: str, name: str, new_name: Any = UNSET,
    description: Any = UNSET, metadata: Any = UNSET, input_schema: Any = UNSET,
    expected_output_schema: Any = UNSET,
) -> dict[str, Any]:
    """Change a dataset (UI): each given field is set, None included (clears it)."""
    changes: dict[str, Any] = {}
    if new_name is not UNSET:
        changes["name"] = check_name(new_name)
    if description is not UNSET:
        changes["description"] = description
    if metadata is not UNSET:
        changes["metadata_"] = metadata
    if input_schema is not UNSET:
        changes["input_schema"] = check_schema(input_schema, "inputSchema")
    if expected_output_schema is not UNSET:
        changes["expected_output_schema"] = check_schema(expected_output_schema, "expectedOutputSchema")
    try:
        with write_transaction(sessions) as session:
            ds = find_dataset(session, project_id, name)
            return _apply(session, ds, changes)
    except IntegrityError as exc:
        raise InvalidRequest(f"a dataset named {changes.get('name')!r} already exists") from exc


def get_dataset(sessions: sessionmaker[Session], *, project_id: str, name: str) -> dict[str, Any]:
    with sessions() as session:
        return dataset_to_api(find_dataset(session, project_id, name))


def list_datasets(
    sessions: sessionmaker[Session], *, project_id: str, paging: PageRequest = PageRequest(),
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Newest first; returns (data, meta)."""
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(Dataset).where(Dataset.project_id == project_id))
        rows = session.scalars(
            select(Dataset).where(Dataset.project_id == project_id)
            .order_by(Dataset.created_at.desc(), Dataset.id.desc()).offset(paging.offset).limit(paging.limit)
        ).all()
        return [dataset_to_api(r) for r in rows], paging.meta(total or 0)


def delete_dataset(sessions: sessionmaker[Session], *, project_id: str, name: str) -> None:
    """Delete a dataset with its items, their history, its runs and run items (UI)."""
    with write_transaction(sessions) as session:
        session.delete(find_dataset(session, project_id, name))
