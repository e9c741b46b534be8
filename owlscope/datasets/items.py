"""Dataset items: upsert by id, get, list (now or as of a point in time), delete.

Every change writes a row to `dataset_item_versions` in the same transaction, so the state of a
dataset at any time T can be read back: per item, its latest version with `valid_from <= T`,
unless that version is a deletion. Items created after T are absent; items updated after T show
their older values.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from owlscope.datasets.common import (
    check_length,
    check_status,
    parse_time,
    validate_item_fields,
)
from owlscope.datasets.store import find_dataset
from owlscope.errors import InvalidRequest, NotFound
from owlscope.ingestion.masking import Masker
from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.dataset_models import ITEM_ID_LENGTH, Dataset, DatasetItem, DatasetItemVersion
from owlscope.storage.oltp.db import write_transaction
from owlscope.wire import PageRequest, iso


def item_to_api(item: DatasetItem | DatasetItemVersion, dataset_name: str) -> dict[str, Any]:
    if isinstance(item, DatasetItemVersion):
        item_id, created, updated = item.item_id, item.item_created_at, item.valid_from
    else:
        item_id, created, updated = item.id, item.created_at, item.updated_at
    return {
        "id": item_id, "status": item.status, "input": item.input, "expectedOutput": item.expected_output,
        "metadata": item.metadata_, "sourceTraceId": item.source_trace_id,
        "sourceObservationId": item.source_observation_id, "datasetId": item.dataset_id,
        "datasetName": dataset_name, "createdAt": iso(created), "updatedAt": iso(updated),
        "mediaReferences": [],
    }


def _version(item: DatasetItem, *, deleted: bool = False) -> DatasetItemVersion:
    return DatasetItemVersion(
        project_id=item.project_id, item_id=item.id, dataset_id=item.dataset_id, valid_from=item.updated_at,
        is_deleted=deleted, status=item.status, input=item.input, expected_output=item.expected_output,
        metadata_=item.metadata_, source_trace_id=item.source_trace_id,
        source_observation_id=item.source_observation_id, item_created_at=item.created_at,
    )


def _check_id(item_id: Any) -> str:
    if not isinstance(item_id, str) or not item_id:
        raise InvalidRequest("id must be a non-empty string")
    if len(item_id) > ITEM_ID_LENGTH:
        raise InvalidRequest(f"id must be at most {ITEM_ID_LENGTH} characters")
    return item_id


def mask_item_fields(masker: Masker | None, input: Any, expected_output: Any, metadata: Any) -> tuple[Any, Any, Any]:
    """The item's text fields as they may be stored: masked with the project's masker (None: nothing
    to mask). Every item write goes through here (`upsert_item_in`), whatever it came from."""
    if masker is None:
        return input, expected_output, metadata
    out = masker.event_body({"input": input, "expectedOutput": expected_output, "metadata": metadata})
    return out["input"], out["expectedOutput"], out["metadata"]


def upsert_item_in(
    session: Session, ds: Dataset, *, masker: Masker | None, item_id: str | None = None, input: Any = None,
    expected_output: Any = None, metadata: Any = None, source_trace_id: str | None = None,
    source_observation_id: str | None = None, status: str | None = None, now: datetime | None = None,
) -> DatasetItem:
    """Create or update one item inside an open transaction (bulk adds share one transaction).

    `masker` is the project's (`pipeline.masking.masker_for`; required, so no write path can forget
    it). On update, fields given as None keep their value (the public API's upsert semantics)."""
    input, expected_output, metadata = mask_item_fields(masker, input, expected_output, metadata)
    status = check_status(status)
    check_length(source_trace_id, "sourceTraceId")
    check_length(source_observation_id, "sourceObservationId")
    now = now or utcnow()
    item = None
    if item_id is not None:
        item = session.get(DatasetItem, (ds.project_id, _check_id(item_id)))
    if item is None:
        item = DatasetItem(
            project_id=ds.project_id, id=item_id or str(uuid.uuid4()), dataset_id=ds.id, status=status or "ACTIVE",
            input=input, expected_output=expected_output, metadata_=metadata, source_trace_id=source_trace_id,
            source_observation_id=source_observation_id, created_at=now, updated_at=now,
        )
        validate_item_fields(ds, item.input, item.expected_output, what=f"dataset item {item.id!r}")
        session.add(item)
    else:
        if item.dataset_id != ds.id:
            raise InvalidRequest(
                f"dataset item {item.id!r} belongs to another dataset; item ids are unique per project "
                "and cannot move between datasets"
            )
        for attr, value in (("input", input), ("expected_output", expected_output), ("metadata_", metadata),
                            ("source_trace_id", source_trace_id),
                            ("source_observation_id", source_observation_id), ("status", status)):
            if value is not None:
                setattr(item, attr, value)
        validate_item_fields(ds, item.input, item.expected_output, what=f"dataset item {item.id!r}")
        item.updated_at = max(now, item.updated_at)
    session.add(_version(item))
    session.flush()
    return item


def upsert_item(
    sessions: sessionmaker[Session], *, masker: Masker | None, project_id: str, dataset_name: str,
    item_id: str | None = None,
    input: Any = None, expected_output: Any = None, metadata: Any = None, source_trace_id: str | None = None,
    source_observation_id: str | None = None, status: str | None = None,
) -> dict[str, Any]:
    """POST /dataset-items: create the item, or update the item with this id."""
    for attempt in range(2):
        try:
            with write_transaction(sessions) as session:
                ds = find_dataset(session, project_id, dataset_name)
                item = upsert_item_in(
                    session, ds, masker=masker, item_id=item_id, input=input, expected_output=expected_output, metadata=metadata,
                    source_trace_id=source_trace_id, source_observation_id=source_observation_id, status=status,
                )
                return item_to_api(item, ds.name)
        except IntegrityError:
            if attempt or item_id is None:  # a concurrent create of the same id: update it instead
                raise
    raise AssertionError("unreachable")


def _dataset_names(session: Session, project_id: str, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(select(Dataset.id, Dataset.name).where(
        Dataset.project_id == project_id, Dataset.id.in_(ids)))
    return dict(rows.tuples().all())


def get_item(sessions: sessionmaker[Session], *, project_id: str, item_id: str) -> dict[str, Any]:
    with sessions() as session:
        item = session.get(DatasetItem, (project_id, item_id))
        if item is None:
            raise NotFound(f"Dataset item {item_id!r} not found")
        return item_to_api(item, _dataset_names(session, project_id, {item.dataset_id})[item.dataset_id])


def list_items(
    sessions: sessionmaker[Session], *, project_id: str, dataset_name: str | None = None,
    source_trace_id: str | None = None, source_observation_id: str | None = None,
    version: datetime | str | None = None, status: str | None = None, paging: PageRequest = PageRequest(),
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Items, newest first; with `version`, the dataset as it was at that time. Returns (data, meta)."""
    at = parse_time(version, "version")
    status = check_status(status)
    if at is not None and dataset_name is None:
        raise InvalidRequest("version requires datasetName")
    with sessions() as session:
        ds = find_dataset(session, project_id, dataset_name) if dataset_name is not None else None
        if at is not None:
            assert ds is not None
            return _items_at(session, ds, at, source_trace_id, source_observation_id, status, paging)
        conds = [DatasetItem.project_id == project_id]
        if ds is not None:
            conds.append(DatasetItem.dataset_id == ds.id)
        if source_trace_id is not None:
            conds.append(DatasetItem.source_trace_id == source_trace_id)
        if source_observation_id is not None:
            conds.append(DatasetItem.source_observation_id == source_observation_id)
        if status is not None:
            conds.append(DatasetItem.status == status)
        total = session.scalar(select(func.count()).select_from(DatasetItem).where(*conds)) or 0
        rows = session.scalars(
            select(DatasetItem).where(*conds).order_by(DatasetItem.created_at.desc(), DatasetItem.id)
            .offset(paging.offset).limit(paging.limit)
        ).all()
        names = {ds.id: ds.name} if ds is not None else _dataset_names(session, project_id, {r.dataset_id for r in rows})
        return [item_to_api(r, names[r.dataset_id]) for r in rows], paging.meta(total)


def _until(at: datetime) -> datetime:
    """The end of the millisecond `at` falls in: times are shown to the millisecond, so the state at
    a shown `createdAt` includes the item created in that millisecond (stored with microseconds)."""
    return at.replace(microsecond=at.microsecond // 1000 * 1000) + timedelta(milliseconds=1)


def _items_at(
    session: Session, ds: Dataset, at: datetime, source_trace_id: str | None, source_observation_id: str | None,
    status: str | None, paging: PageRequest,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    v = DatasetItemVersion
    ranked = (
        select(v.id.label("vid"), func.row_number().over(
            partition_by=v.item_id, order_by=(v.valid_from.desc(), v.id.desc())).label("rn"))
        .where(v.project_id == ds.project_id, v.dataset_id == ds.id, v.valid_from < _until(at))
        .subquery()
    )
    conds = [ranked.c.rn == 1, v.is_deleted.is_(False)]
    if source_trace_id is not None:
        conds.append(v.source_trace_id == source_trace_id)
    if source_observation_id is not None:
        conds.append(v.source_observation_id == source_observation_id)
    if status is not None:
        conds.append(v.status == status)
    base = select(v).join(ranked, and_(ranked.c.vid == v.id)).where(*conds)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(
        base.order_by(v.item_created_at.desc(), v.item_id).offset(paging.offset).limit(paging.limit)
    ).all()
    return [item_to_api(r, ds.name) for r in rows], paging.meta(total)


def item_versions(sessions: sessionmaker[Session], *, project_id: str, item_id: str) -> list[dict[str, Any]]:
    """An item's history, newest first (UI): each version with `validFrom` and `isDeleted`."""
    with sessions() as session:
        rows = session.scalars(select(DatasetItemVersion).where(
            DatasetItemVersion.project_id == project_id, DatasetItemVersion.item_id == item_id,
        ).order_by(DatasetItemVersion.valid_from.desc(), DatasetItemVersion.id.desc())).all()
        if not rows:
            raise NotFound(f"Dataset item {item_id!r} not found")
        names = _dataset_names(session, project_id, {r.dataset_id for r in rows})
        return [{**item_to_api(r, names.get(r.dataset_id, "")), "validFrom": iso(r.valid_from),
                 "isDeleted": r.is_deleted} for r in rows]


def item_at(session: Session, project_id: str, item_id: str, at: datetime | None) -> DatasetItemVersion | None:
    """The version of an item in force at `at` (None: the latest); None if it did not exist then."""
    q = select(DatasetItemVersion).where(
        DatasetItemVersion.project_id == project_id, DatasetItemVersion.item_id == item_id)
    if at is not None:
        q = q.where(DatasetItemVersion.valid_from < _until(at))
    row = session.scalars(q.order_by(DatasetItemVersion.valid_from.desc(), DatasetItemVersion.id.desc())).first()
    return None if row is None or row.is_deleted else row


def delete_item(sessions: sessionmaker[Session], *, project_id: str, item_id: str) -> dict[str, str]:
    """Delete an item and its run items; its history keeps a deletion mark (versioned reads)."""
    with write_transaction(sessions) as session:
        item = session.get(DatasetItem, (project_id, item_id))
        if item is None:
            raise NotFound(f"Dataset item {item_id!r} not found")
        item.updated_at = max(utcnow(), item.updated_at)
        session.add(_version(item, deleted=True))
        session.delete(item)
    return {"message": "Dataset item successfully deleted"}
