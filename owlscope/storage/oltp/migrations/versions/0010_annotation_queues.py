"""Annotation queues, their items (with a review lock) and their assigned reviewers.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

Self-contained on purpose (plain SQLAlchemy types, no imports from the models).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
TS = sa.DateTime(timezone=True)


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=f"fk_{table}_project_id_projects",
                                   ondelete="CASCADE")


def _queue_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["queue_id"], ["annotation_queues.id"],
                                   name=f"fk_{table}_queue_id_annotation_queues", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "annotation_queues",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("score_config_ids", JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_annotation_queues"),
        _project_fk("annotation_queues"),
        sa.UniqueConstraint("project_id", "name", name="uq_annotation_queues_project_id_name"),
    )
    op.create_table(
        "annotation_queue_items",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(16), nullable=False),
        sa.Column("object_id", sa.String(255), nullable=False),
        sa.Column("trace_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("locked_by_user_id", sa.String(64), nullable=True),
        sa.Column("locked_at", TS, nullable=True),
        sa.Column("annotator_user_id", sa.String(64), nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_annotation_queue_items"),
        _project_fk("annotation_queue_items"),
        _queue_fk("annotation_queue_items"),
        sa.ForeignKeyConstraint(["locked_by_user_id"], ["users.id"],
                                name="fk_annotation_queue_items_locked_by_user_id_users", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["annotator_user_id"], ["users.id"],
                                name="fk_annotation_queue_items_annotator_user_id_users", ondelete="SET NULL"),
        sa.UniqueConstraint("project_id", "queue_id", "object_type", "object_id",
                            name="uq_annotation_queue_items_object"),
    )
    op.create_index("ix_annotation_queue_items_queue_status", "annotation_queue_items",
                    ["project_id", "queue_id", "status", "created_at"])
    op.create_table(
        "annotation_queue_assignments",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_annotation_queue_assignments"),
        _project_fk("annotation_queue_assignments"),
        _queue_fk("annotation_queue_assignments"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_annotation_queue_assignments_user_id_users",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("project_id", "queue_id", "user_id",
                            name="uq_annotation_queue_assignments_user"),
    )


def downgrade() -> None:
    op.drop_table("annotation_queue_assignments")
    op.drop_index("ix_annotation_queue_items_queue_status", table_name="annotation_queue_items")
    op.drop_table("annotation_queue_items")
    op.drop_table("annotation_queues")
