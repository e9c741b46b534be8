"""Web UI: public sharing of traces and sessions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

Self-contained on purpose (plain SQLAlchemy types, no imports from the models).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "public_shares",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(16), nullable=False),
        sa.Column("object_id", sa.String(255), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_public_shares"),
        sa.UniqueConstraint("project_id", "object_type", "object_id",
                            name="uq_public_shares_project_id_object_type_object_id"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_public_shares_project_id_projects",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name="fk_public_shares_created_by_users",
                                ondelete="SET NULL"),
    )


def downgrade() -> None:
    op.drop_table("public_shares")
