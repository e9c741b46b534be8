"""Custom dashboards and their widgets.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04

Self-contained on purpose (plain SQLAlchemy types, no imports from the models).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _common() -> list[sa.Column]:
    return [
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
    ]


def _times() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "dashboards",
        *_common(),
        sa.Column("definition", _json(), nullable=False),
        sa.Column("filters", _json(), nullable=False),
        *_times(),
        sa.PrimaryKeyConstraint("id", name="pk_dashboards"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_dashboards_project_id_projects",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_dashboards_project_id_updated_at", "dashboards", ["project_id", "updated_at"])
    op.create_table(
        "dashboard_widgets",
        *_common(),
        sa.Column("view", sa.String(32), nullable=False),
        sa.Column("dimensions", _json(), nullable=False),
        sa.Column("metrics", _json(), nullable=False),
        sa.Column("filters", _json(), nullable=False),
        sa.Column("chart_type", sa.String(32), nullable=False),
        sa.Column("chart_config", _json(), nullable=False),
        *_times(),
        sa.PrimaryKeyConstraint("id", name="pk_dashboard_widgets"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_dashboard_widgets_project_id_projects",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_dashboard_widgets_project_id_updated_at", "dashboard_widgets", ["project_id", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_dashboard_widgets_project_id_updated_at", table_name="dashboard_widgets")
    op.drop_table("dashboard_widgets")
    op.drop_index("ix_dashboards_project_id_updated_at", table_name="dashboards")
    op.drop_table("dashboards")
