"""Organization API keys, project deletions (background job progress), API feedback, and a
metadata object on projects.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04

Self-contained on purpose (plain SQLAlchemy types, no imports from the models).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "organization_api_keys",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("public_key", sa.String(128), nullable=False),
        sa.Column("hashed_secret_key", sa.String(128), nullable=False),
        sa.Column("display_secret_key", sa.String(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_organization_api_keys"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                name="fk_organization_api_keys_org_id_organizations", ondelete="CASCADE"),
    )
    op.create_index("ix_organization_api_keys_org_id", "organization_api_keys", ["org_id"])
    op.create_index("ix_organization_api_keys_public_key", "organization_api_keys", ["public_key"], unique=True)
    op.create_index("ix_organization_api_keys_hashed_secret_key", "organization_api_keys", ["hashed_secret_key"],
                    unique=True)
    op.create_table(
        "project_deletions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("project_name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("steps_done", sa.Integer(), nullable=False),
        sa.Column("steps_total", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_project_deletions"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                name="fk_project_deletions_org_id_organizations", ondelete="CASCADE"),
    )
    op.create_index("ix_project_deletions_project_id", "project_deletions", ["project_id"])
    op.create_index("ix_project_deletions_org_id_requested_at", "project_deletions", ["org_id", "requested_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("feedback", sa.Text(), nullable=False),
        sa.Column("goal", sa.Text(), nullable=True),
        sa.Column("reference_url", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_feedback_project_id_projects",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_feedback_project_id_created_at", "feedback", ["project_id", "created_at"])
    op.add_column("projects", sa.Column("metadata", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("metadata")
    op.drop_index("ix_feedback_project_id_created_at", table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_project_deletions_org_id_requested_at", table_name="project_deletions")
    op.drop_index("ix_project_deletions_project_id", table_name="project_deletions")
    op.drop_table("project_deletions")
    op.drop_index("ix_organization_api_keys_hashed_secret_key", table_name="organization_api_keys")
    op.drop_index("ix_organization_api_keys_public_key", table_name="organization_api_keys")
    op.drop_index("ix_organization_api_keys_org_id", table_name="organization_api_keys")
    op.drop_table("organization_api_keys")
