"""Media uploaded by the SDKs and the traces, observations and dataset items that refer to it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Self-contained on purpose (plain SQLAlchemy types, no imports from the models).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("sha256_hash", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("content_length", sa.BigInteger(), nullable=False),
        sa.Column("blob_key", sa.String(512), nullable=False),
        sa.Column("uploaded_at", TS, nullable=True),
        sa.Column("upload_http_status", sa.Integer(), nullable=True),
        sa.Column("upload_http_error", sa.Text(), nullable=True),
        sa.Column("upload_time_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "id", name="pk_media"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_media_project_id_projects",
                                ondelete="CASCADE"),
    )
    op.create_table(
        "media_references",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("media_id", sa.String(64), nullable=False),
        sa.Column("trace_id", sa.String(255), nullable=False),
        sa.Column("observation_id", sa.String(255), nullable=False),
        sa.Column("dataset_item_id", sa.String(255), nullable=False),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("dataset_id", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "media_id", "trace_id", "observation_id", "dataset_item_id", "field",
                                name="pk_media_references"),
        sa.ForeignKeyConstraint(["project_id", "media_id"], ["media.project_id", "media.id"],
                                name="fk_media_references_project_id_media", ondelete="CASCADE"),
    )
    op.create_index("ix_media_references_project_id_trace_id", "media_references", ["project_id", "trace_id"])
    op.create_index("ix_media_references_project_id_dataset_item_id", "media_references",
                    ["project_id", "dataset_item_id"])


def downgrade() -> None:
    op.drop_index("ix_media_references_project_id_dataset_item_id", table_name="media_references")
    op.drop_index("ix_media_references_project_id_trace_id", table_name="media_references")
    op.drop_table("media_references")
    op.drop_table("media")
