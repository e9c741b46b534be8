"""LLM connections, the default evaluation model, evaluator templates, evaluators and job executions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27

Self-contained on purpose (plain SQLAlchemy types, no imports from the models).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)
TS = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _base(table: str) -> list:
    return [
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=f"fk_{table}_project_id_projects",
                                ondelete="CASCADE"),
    ]


def _stamps() -> list:
    return [sa.Column("created_at", TS, nullable=False), sa.Column("updated_at", TS, nullable=False)]


def upgrade() -> None:
    op.create_table(
        "llm_connections",
        *_base("llm_connections"),
        sa.Column("provider", sa.String(255), nullable=False),
        sa.Column("adapter", sa.String(32), nullable=False),
        sa.Column("secret_key", sa.Text(), nullable=False),
        sa.Column("display_secret_key", sa.String(32), nullable=False),
        sa.Column("base_url", sa.String(2048), nullable=True),
        sa.Column("custom_models", JSON, nullable=False),
        sa.Column("with_default_models", sa.Boolean(), nullable=False),
        sa.Column("extra_headers", sa.Text(), nullable=True),
        sa.Column("extra_header_keys", JSON, nullable=False),
        sa.Column("config", JSON, nullable=True),
        *_stamps(),
        sa.UniqueConstraint("project_id", "provider", name="uq_llm_connections_project_id_provider"),
    )
    op.create_table(
        "eval_default_models",
        *_base("eval_default_models"),
        sa.Column("connection_id", ID, nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("model_params", JSON, nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(["connection_id"], ["llm_connections.id"],
                                name="fk_eval_default_models_connection_id_llm_connections", ondelete="CASCADE"),
        sa.UniqueConstraint("project_id", name="uq_eval_default_models_project_id"),
    )
    op.create_table(
        "eval_templates",
        *_base("eval_templates"),
        sa.Column("family_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("variables", JSON, nullable=False),
        sa.Column("output_definition", JSON, nullable=False),
        sa.Column("provider", sa.String(255), nullable=True),
        sa.Column("model", sa.String(255), nullable=True),
        sa.Column("model_params", JSON, nullable=True),
        sa.Column("default_mapping", JSON, nullable=True),
        sa.Column("managed", sa.Boolean(), nullable=False),
        *_stamps(),
        sa.UniqueConstraint("project_id", "name", "version", name="uq_eval_templates_project_id_name_version"),
    )
    op.create_index("ix_eval_templates_project_id_family_id", "eval_templates", ["project_id", "family_id"])
    op.create_table(
        "evaluators",
        *_base("evaluators"),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("template_family_id", ID, nullable=False),
        sa.Column("target", sa.String(32), nullable=False),
        sa.Column("filter", JSON, nullable=False),
        sa.Column("mapping", JSON, nullable=True),
        sa.Column("sampling", sa.Float(), nullable=False),
        sa.Column("delay_seconds", sa.Integer(), nullable=False),
        sa.Column("score_name", sa.String(255), nullable=False),
        sa.Column("time_scope", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("paused_reason", sa.String(64), nullable=True),
        sa.Column("paused_message", sa.Text(), nullable=True),
        sa.Column("failure_streak", sa.Integer(), nullable=False),
        sa.Column("created_by_api", sa.Boolean(), nullable=False),
        sa.Column("backfill_status", sa.String(16), nullable=True),
        sa.Column("backfill_cursor", sa.String(512), nullable=True),
        sa.Column("backfill_total", sa.Integer(), nullable=False),
        sa.Column("backfill_error", sa.Text(), nullable=True),
        sa.Column("backfill_updated_at", TS, nullable=True),
        *_stamps(),
        sa.UniqueConstraint("project_id", "name", name="uq_evaluators_project_id_name"),
    )
    op.create_index("ix_evaluators_project_id_template_family_id", "evaluators",
                    ["project_id", "template_family_id"])
    op.create_table(
        "job_executions",
        *_base("job_executions"),
        sa.Column("evaluator_id", ID, nullable=False),
        sa.Column("trace_id", sa.String(255), nullable=False),
        sa.Column("observation_id", sa.String(255), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("score_id", ID, nullable=True),
        sa.Column("judge_trace_id", ID, nullable=True),
        sa.Column("scheduled_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(["evaluator_id"], ["evaluators.id"], name="fk_job_executions_evaluator_id_evaluators",
                                ondelete="CASCADE"),
        sa.UniqueConstraint("evaluator_id", "trace_id", "observation_id",
                            name="uq_job_executions_evaluator_id_trace_id_observation_id"),
    )
    op.create_index("ix_job_executions_project_id_evaluator_id_created_at", "job_executions",
                    ["project_id", "evaluator_id", "created_at"])
    op.create_index("ix_job_executions_status_scheduled_at", "job_executions", ["status", "scheduled_at"])


def downgrade() -> None:
    op.drop_index("ix_job_executions_status_scheduled_at", table_name="job_executions")
    op.drop_index("ix_job_executions_project_id_evaluator_id_created_at", table_name="job_executions")
    op.drop_table("job_executions")
    op.drop_index("ix_evaluators_project_id_template_family_id", table_name="evaluators")
    op.drop_table("evaluators")
    op.drop_index("ix_eval_templates_project_id_family_id", table_name="eval_templates")
    op.drop_table("eval_templates")
    op.drop_table("eval_default_models")
    op.drop_table("llm_connections")
