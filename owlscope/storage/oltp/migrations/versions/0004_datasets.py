"""Datasets, items (with their versions), runs and run items.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

Self-contained on purpose (plain SQLAlchemy types, no imports from the models).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)
TS = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _project(table: str) -> list:
    return [
        sa.Column("project_id", ID, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=f"fk_{table}_project_id_projects",
                                ondelete="CASCADE"),
    ]


def _timestamps() -> list[sa.Column]:
    return [sa.Column("created_at", TS, nullable=False), sa.Column("updated_at", TS, nullable=False)]


def _item_fields() -> list[sa.Column]:
    return [
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input", JSON, nullable=True),
        sa.Column("expected_output", JSON, nullable=True),
        sa.Column("metadata", JSON, nullable=True),
        sa.Column("source_trace_id", sa.String(255), nullable=True),
        sa.Column("source_observation_id", sa.String(255), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", ID, nullable=False),
        *_project("datasets"),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", JSON, nullable=True),
        sa.Column("input_schema", JSON, nullable=True),
        sa.Column("expected_output_schema", JSON, nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.UniqueConstraint("project_id", "name", name="uq_datasets_project_id_name"),
    )

    op.create_table(
        "dataset_items",
        *_project("dataset_items"),
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("dataset_id", ID, nullable=False),
        *_item_fields(),
        *_timestamps(),
        sa.PrimaryKeyConstraint("project_id", "id", name="pk_dataset_items"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name="fk_dataset_items_dataset_id_datasets",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_dataset_items_project_id_dataset_id_created_at", "dataset_items",
                    ["project_id", "dataset_id", "created_at"])
    op.create_index("ix_dataset_items_project_id_source_trace_id", "dataset_items",
                    ["project_id", "source_trace_id"])

    op.create_table(
        "dataset_item_versions",
        sa.Column("id", ID, nullable=False),
        *_project("dataset_item_versions"),
        sa.Column("item_id", sa.String(255), nullable=False),
        sa.Column("dataset_id", ID, nullable=False),
        sa.Column("valid_from", TS, nullable=False),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        *_item_fields(),
        sa.Column("item_created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_item_versions"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"],
                                name="fk_dataset_item_versions_dataset_id_datasets", ondelete="CASCADE"),
    )
    op.create_index("ix_dataset_item_versions_project_dataset_item_valid",
                    "dataset_item_versions", ["project_id", "dataset_id", "item_id", "valid_from"])

    op.create_table(
        "dataset_runs",
        *_project("dataset_runs"),
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("dataset_id", ID, nullable=True),
        sa.Column("name", sa.String(1024), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", JSON, nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("project_id", "id", name="pk_dataset_runs"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], name="fk_dataset_runs_dataset_id_datasets",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("project_id", "dataset_id", "name", name="uq_dataset_runs_project_id_dataset_id_name"),
    )
    op.create_index("ix_dataset_runs_project_id_created_at", "dataset_runs", ["project_id", "created_at"])

    op.create_table(
        "dataset_run_items",
        sa.Column("id", ID, nullable=False),
        *_project("dataset_run_items"),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("dataset_item_id", sa.String(255), nullable=True),
        sa.Column("item_key", sa.String(255), nullable=False),
        sa.Column("trace_id", sa.String(255), nullable=False),
        sa.Column("observation_id", sa.String(255), nullable=True),
        sa.Column("dataset_item_version", TS, nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_run_items"),
        sa.ForeignKeyConstraint(["project_id", "run_id"], ["dataset_runs.project_id", "dataset_runs.id"],
                                name="fk_dataset_run_items_run_id_dataset_runs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["project_id", "dataset_item_id"],
                                ["dataset_items.project_id", "dataset_items.id"],
                                name="fk_dataset_run_items_dataset_item_id_dataset_items", ondelete="CASCADE"),
        sa.UniqueConstraint("project_id", "run_id", "item_key", "trace_id",
                            name="uq_dataset_run_items_project_id_run_id_item_key_trace_id"),
    )
    op.create_index("ix_dataset_run_items_project_id_dataset_item_id", "dataset_run_items",
                    ["project_id", "dataset_item_id"])
    op.create_index("ix_dataset_run_items_project_id_created_at", "dataset_run_items", ["project_id", "created_at"])


def downgrade() -> None:
    op.drop_table("dataset_run_items")
    op.drop_table("dataset_runs")
    op.drop_table("dataset_item_versions")
    op.drop_table("dataset_items")
    op.drop_table("datasets")
