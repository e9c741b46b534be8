"""Integrations: scheduled blob storage exports, prompt webhooks and their delivery log.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

Self-contained on purpose (plain SQLAlchemy types, no imports from the models).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=f"fk_{table}_project_id_projects",
                                   ondelete="CASCADE")


def upgrade() -> None:
    json = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
    op.create_table(
        "blob_storage_integrations",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("bucket_name", sa.String(255), nullable=False),
        sa.Column("endpoint", sa.String(1024), nullable=True),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("access_key_id", sa.String(255), nullable=True),
        sa.Column("secret_access_key", sa.Text(), nullable=True),
        sa.Column("prefix", sa.String(1024), nullable=False),
        sa.Column("export_frequency", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("force_path_style", sa.Boolean(), nullable=False),
        sa.Column("file_type", sa.String(16), nullable=False),
        sa.Column("export_mode", sa.String(32), nullable=False),
        _ts("export_start_date"),
        sa.Column("compressed", sa.Boolean(), nullable=False),
        sa.Column("export_source", sa.String(64), nullable=False),
        sa.Column("export_field_groups", json, nullable=True),
        _ts("next_sync_at"), _ts("last_sync_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("last_error_at"), _ts("running_since"), _ts("window_end"),
        _ts("created_at", False), _ts("updated_at", False),
        sa.PrimaryKeyConstraint("project_id", name="pk_blob_storage_integrations"),
        sa.UniqueConstraint("id", name="uq_blob_storage_integrations_id"),
        _project_fk("blob_storage_integrations"),
    )
    op.create_table(
        "prompt_webhooks",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("secret_hint", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _ts("created_at", False), _ts("updated_at", False),
        sa.PrimaryKeyConstraint("project_id", name="pk_prompt_webhooks"),
        sa.UniqueConstraint("id", name="uq_prompt_webhooks_id"),
        _project_fk("prompt_webhooks"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("next_attempt_at"), _ts("created_at", False), _ts("updated_at", False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        _project_fk("webhook_deliveries"),
    )
    op.create_index("ix_webhook_deliveries_project_id_created_at", "webhook_deliveries", ["project_id", "created_at"])
    op.create_index("ix_webhook_deliveries_status_next_attempt_at", "webhook_deliveries",
                    ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_status_next_attempt_at", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_project_id_created_at", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("prompt_webhooks")
    op.drop_table("blob_storage_integrations")
