"""Custom masking rules of a project (a regex or a JSON path, with a replacement).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

Self-contained on purpose (plain SQLAlchemy types, no imports from the models).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "masking_rules",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("replacement", sa.String(255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_masking_rules"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_masking_rules_project_id_projects",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_masking_rules_project_id_position", "masking_rules", ["project_id", "position"])


def downgrade() -> None:
    op.drop_index("ix_masking_rules_project_id_position", table_name="masking_rules")
    op.drop_table("masking_rules")
