"""Datasets, their items (with every version kept), runs and run items.

- `datasets`: a named collection in a project, with optional JSON schemas that item inputs and
  expected outputs must match.
- `dataset_items`: the current state of each item. Item ids come from clients (the SDK upserts on
  them), so the key is (project_id, id): the same id in another project is another item.
- `dataset_item_versions`: one row per change of an item (create, update, status change, delete
  as a tombstone). The state of a dataset at time T is, per item, its latest version with
  `valid_from <= T` unless that version is a tombstone.
- `dataset_runs`: one run (an "experiment") per (dataset, name). Ids may come from clients (the
  SDK's experiment id), so the key is (project_id, id). `dataset_id` is NULL for experiments the
  SDK ran on local data.
- `dataset_run_items`: which trace (and root observation) a run produced for a dataset item.
  `item_key` is the dataset item id, or for local data the SDK's experiment item id (a hash of
  the input); a run item is unique per (run, item_key, trace).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from owlscope.storage.oltp.base import Base, UTCDateTime, json_type, new_id, utcnow

ITEM_ID_LENGTH = 255
RUN_NAME_LENGTH = 1024


def _project_fk() -> Mapped[str]:
    return mapped_column(String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


class Dataset(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_datasets_project_id_name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = _project_fk()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[Any | None] = mapped_column("metadata", json_type())
    input_schema: Mapped[Any | None] = mapped_column(json_type())
    expected_output_schema: Mapped[Any | None] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class DatasetItem(Base):
    __tablename__ = "dataset_items"
    __table_args__ = (
        PrimaryKeyConstraint("project_id", "id", name="pk_dataset_items"),
        Index("ix_dataset_items_project_id_dataset_id_created_at", "project_id", "dataset_id", "created_at"),
        Index("ix_dataset_items_project_id_source_trace_id", "project_id", "source_trace_id"),
    )

    project_id: Mapped[str] = _project_fk()
    id: Mapped[str] = mapped_column(String(ITEM_ID_LENGTH))
    dataset_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="ACTIVE")
    input: Mapped[Any | None] = mapped_column(json_type())
    expected_output: Mapped[Any | None] = mapped_column(json_type())
    metadata_: Mapped[Any | None] = mapped_column("metadata", json_type())
    source_trace_id: Mapped[str | None] = mapped_column(String(255))
    source_observation_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class DatasetItemVersion(Base):
    __tablename__ = "dataset_item_versions"
    __table_args__ = (
        Index("ix_dataset_item_versions_project_dataset_item_valid",
              "project_id", "dataset_id", "item_id", "valid_from"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = _project_fk()
    item_id: Mapped[str] = mapped_column(String(ITEM_ID_LENGTH), nullable=False)
    dataset_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False
    )
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    is_deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    input: Mapped[Any | None] = mapped_column(json_type())
    expected_output: Mapped[Any | None] = mapped_column(json_type())
    metadata_: Mapped[Any | None] = mapped_column("metadata", json_type())
    source_trace_id: Mapped[str | None] = mapped_column(String(255))
    source_observation_id: Mapped[str | None] = mapped_column(String(255))
    item_created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class DatasetRun(Base):
    __tablename__ = "dataset_runs"
    __table_args__ = (
        PrimaryKeyConstraint("project_id", "id", name="pk_dataset_runs"),
        UniqueConstraint("project_id", "dataset_id", "name", name="uq_dataset_runs_project_id_dataset_id_name"),
        Index("ix_dataset_runs_project_id_created_at", "project_id", "created_at"),
    )

    project_id: Mapped[str] = _project_fk()
    id: Mapped[str] = mapped_column(String(255))
    dataset_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("datasets.id", ondelete="CASCADE"), nullable=True
    )
    name: Mapped[str] = mapped_column(String(RUN_NAME_LENGTH), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[Any | None] = mapped_column("metadata", json_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class DatasetRunItem(Base):
    __tablename__ = "dataset_run_items"
    __table_args__ = (
        UniqueConstraint("project_id", "run_id", "item_key", "trace_id",
                         name="uq_dataset_run_items_project_id_run_id_item_key_trace_id"),
        Index("ix_dataset_run_items_project_id_dataset_item_id", "project_id", "dataset_item_id"),
        Index("ix_dataset_run_items_project_id_created_at", "project_id", "created_at"),
        Index("ix_dataset_run_items_project_id_trace_id", "project_id", "trace_id"),
        ForeignKeyConstraint(["project_id", "run_id"], ["dataset_runs.project_id", "dataset_runs.id"],
                             name="fk_dataset_run_items_run_id_dataset_runs", ondelete="CASCADE"),
        ForeignKeyConstraint(["project_id", "dataset_item_id"], ["dataset_items.project_id", "dataset_items.id"],
                             name="fk_dataset_run_items_dataset_item_id_dataset_items", ondelete="CASCADE"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = _project_fk()
    run_id: Mapped[str] = mapped_column(String(255), nullable=False)
    dataset_item_id: Mapped[str | None] = mapped_column(String(ITEM_ID_LENGTH))
    item_key: Mapped[str] = mapped_column(String(ITEM_ID_LENGTH), nullable=False)
    trace_id: Mapped[str] = mapped_column(String(255), nullable=False)
    observation_id: Mapped[str | None] = mapped_column(String(255))
    dataset_item_version: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


DATASET_TABLES = ("datasets", "dataset_items", "dataset_item_versions", "dataset_runs", "dataset_run_items")
