"""Evaluators on experiments and re-scoring backfills: the dataset run item an execution judges,
the time before which a backfill re-runs finished executions, and run items found by trace.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

Self-contained on purpose (plain SQLAlchemy types, no imports from the models).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_executions") as batch:
        batch.add_column(sa.Column("dataset_run_item_id", sa.String(64), nullable=True))
    with op.batch_alter_table("evaluators") as batch:
        batch.add_column(sa.Column("backfill_rescore_before", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_dataset_run_items_project_id_trace_id", "dataset_run_items", ["project_id", "trace_id"])


def downgrade() -> None:
    op.drop_index("ix_dataset_run_items_project_id_trace_id", table_name="dataset_run_items")
    with op.batch_alter_table("evaluators") as batch:
        batch.drop_column("backfill_rescore_before")
    with op.batch_alter_table("job_executions") as batch:
        batch.drop_column("dataset_run_item_id")
