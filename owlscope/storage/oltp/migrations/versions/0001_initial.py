"""Initial schema: organizations, projects, users, memberships, API keys, models, score configs, comments.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Self-contained on purpose (plain SQLAlchemy types, no imports from the models): a revision must
keep producing the same schema whatever the models become later.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)
TS = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
DECIMAL = sa.Numeric(65, 30).with_variant(sa.String(80), "sqlite")  # SQLite keeps exact decimal text


def _timestamps() -> list[sa.Column]:
    return [sa.Column("created_at", TS, nullable=False), sa.Column("updated_at", TS, nullable=False)]


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_organizations"),
    )
    op.create_table(
        "projects",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("deleted_at", TS, nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name="fk_projects_org_id_organizations",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_projects_org_id", "projects", ["org_id"])

    op.create_table(
        "users",
        sa.Column("id", ID, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )

    op.create_table(
        "organization_memberships",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_organization_memberships"),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"],
                                name="fk_organization_memberships_org_id_organizations", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name="fk_organization_memberships_user_id_users", ondelete="CASCADE"),
        sa.UniqueConstraint("org_id", "user_id", name="uq_organization_memberships_org_id_user_id"),
    )
    op.create_index("ix_organization_memberships_user_id", "organization_memberships", ["user_id"])

    op.create_table(
        "project_memberships",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_project_memberships"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name="fk_project_memberships_project_id_projects", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name="fk_project_memberships_user_id_users", ondelete="CASCADE"),
        sa.UniqueConstraint("project_id", "user_id", name="uq_project_memberships_project_id_user_id"),
    )
    op.create_index("ix_project_memberships_user_id", "project_memberships", ["user_id"])

    op.create_table(
        "api_keys",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("public_key", sa.String(128), nullable=False),
        sa.Column("hashed_secret_key", sa.String(128), nullable=False),
        sa.Column("display_secret_key", sa.String(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_api_keys_project_id_projects",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_api_keys_project_id", "api_keys", ["project_id"])
    op.create_index("ix_api_keys_public_key", "api_keys", ["public_key"], unique=True)
    op.create_index("ix_api_keys_hashed_secret_key", "api_keys", ["hashed_secret_key"], unique=True)

    op.create_table(
        "models",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=True),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("match_pattern", sa.String(1024), nullable=False),
        sa.Column("start_date", TS, nullable=True),
        sa.Column("unit", sa.String(32), nullable=True),
        sa.Column("tokenizer_id", sa.String(64), nullable=True),
        sa.Column("tokenizer_config", JSON, nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_models_project_id_projects",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_models_project_id_model_name", "models", ["project_id", "model_name"])

    op.create_table(
        "pricing_tiers",
        sa.Column("id", ID, nullable=False),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("conditions", JSON, nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_pricing_tiers"),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name="fk_pricing_tiers_model_id_models",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("model_id", "name", name="uq_pricing_tiers_model_id_name"),
        sa.UniqueConstraint("model_id", "priority", name="uq_pricing_tiers_model_id_priority"),
    )

    op.create_table(
        "prices",
        sa.Column("id", ID, nullable=False),
        sa.Column("model_id", ID, nullable=False),
        sa.Column("pricing_tier_id", ID, nullable=False),
        sa.Column("usage_type", sa.String(128), nullable=False),
        sa.Column("price", DECIMAL, nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_prices"),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name="fk_prices_model_id_models",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["pricing_tier_id"], ["pricing_tiers.id"],
                                name="fk_prices_pricing_tier_id_pricing_tiers", ondelete="CASCADE"),
        sa.UniqueConstraint("pricing_tier_id", "usage_type", name="uq_prices_pricing_tier_id_usage_type"),
    )
    op.create_index("ix_prices_model_id", "prices", ["model_id"])

    op.create_table(
        "score_configs",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("data_type", sa.String(16), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("max_value", sa.Float(), nullable=True),
        sa.Column("categories", JSON, nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_archived", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_score_configs"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_score_configs_project_id_projects",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_score_configs_project_id_name", "score_configs", ["project_id", "name"])

    op.create_table(
        "comments",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("object_type", sa.String(16), nullable=False),
        sa.Column("object_id", sa.String(255), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("author_user_id", ID, nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_comments"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_comments_project_id_projects",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_user_id"], ["users.id"], name="fk_comments_author_user_id_users",
                                ondelete="SET NULL"),
    )
    op.create_index(
        "ix_comments_project_id_object_type_object_id", "comments", ["project_id", "object_type", "object_id"]
    )


def downgrade() -> None:
    # Children before parents; dropping a table drops its indexes.
    for table in (
        "comments", "score_configs", "prices", "pricing_tiers", "models", "api_keys",
        "project_memberships", "organization_memberships", "users", "projects", "organizations",
    ):
        op.drop_table(table)
