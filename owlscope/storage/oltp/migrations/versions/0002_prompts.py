"""Prompts: one row per version of a named prompt.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Self-contained on purpose (plain SQLAlchemy types, no imports from the models).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)
TS = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "prompts",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("prompt", JSON, nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("commit_message", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prompts"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_prompts_project_id_projects",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("project_id", "name", "version", name="uq_prompts_project_id_name_version"),
    )
    op.create_index("ix_prompts_project_id_name", "prompts", ["project_id", "name"])


def downgrade() -> None:
    op.drop_index("ix_prompts_project_id_name", table_name="prompts")
    op.drop_table("prompts")
