"""Evaluation tables: LLM connections, the default evaluation model, judge templates, evaluators
(job configurations) and their executions. Every table is project-scoped.

- `llm_connections`: one provider endpoint per (project, provider name). The API key and the extra
  header values are encrypted (AES-256-GCM under ENCRYPTION_KEY, see owlscope.evals.crypto); only
  a masked key and the header names are stored in the clear.
- `eval_default_models`: at most one per project, the model a template without its own model uses.
- `eval_templates`: one row per version of a named judge prompt; `family_id` is the id of the
  first version and stays stable across versions (the public API's evaluator id).
- `evaluators`: a template family bound to a target, filter, sampling, delay and variable mapping.
- `job_executions`: one row per (evaluator, trace, observation) ever scheduled; the unique key is
  what makes "never score the same target twice" hold under retries, replays and sweeps.
  `observation_id` is '' for trace-level executions (NULLs would not collide in a unique key).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from owlscope.storage.oltp.base import Base, UTCDateTime, json_type, new_id, utcnow


def _project_fk() -> Mapped[str]:
    return mapped_column(String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


class LlmConnection(Base):
    __tablename__ = "llm_connections"
    __table_args__ = (UniqueConstraint("project_id", "provider", name="uq_llm_connections_project_id_provider"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = _project_fk()
    provider: Mapped[str] = mapped_column(String(255), nullable=False)
    adapter: Mapped[str] = mapped_column(String(32), nullable=False)
    secret_key: Mapped[str] = mapped_column(Text, nullable=False)  # encrypted
    display_secret_key: Mapped[str] = mapped_column(String(32), nullable=False)
    base_url: Mapped[str | None] = mapped_column(String(2048))
    custom_models: Mapped[list[str]] = mapped_column(json_type(), nullable=False, default=list)
    with_default_models: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    extra_headers: Mapped[str | None] = mapped_column(Text)  # encrypted JSON object
    extra_header_keys: Mapped[list[str]] = mapped_column(json_type(), nullable=False, default=list)
    config: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class EvalDefaultModel(Base):
    __tablename__ = "eval_default_models"
    __table_args__ = (UniqueConstraint("project_id", name="uq_eval_default_models_project_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = _project_fk()
    connection_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("llm_connections.id", ondelete="CASCADE"), nullable=False
    )
    model: Mapped[str] = mapped_column(String(255), nullable=False)
    model_params: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class EvalTemplate(Base):
    __tablename__ = "eval_templates"
    __table_args__ = (
        UniqueConstraint("project_id", "name", "version", name="uq_eval_templates_project_id_name_version"),
        Index("ix_eval_templates_project_id_family_id", "project_id", "family_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = _project_fk()
    family_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False, default="llm_as_judge")
    prompt: Mapped[str] = mapped_column(Text, nullable=False)
    variables: Mapped[list[str]] = mapped_column(json_type(), nullable=False, default=list)
    output_definition: Mapped[dict[str, Any]] = mapped_column(json_type(), nullable=False)
    provider: Mapped[str | None] = mapped_column(String(255))  # None: the project's default model
    model: Mapped[str | None] = mapped_column(String(255))
    model_params: Mapped[dict[str, Any] | None] = mapped_column(json_type())
    default_mapping: Mapped[list[dict[str, Any]] | None] = mapped_column(json_type())
    managed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)  # a built-in
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class Evaluator(Base):
    """A job configuration: which targets a template family judges, and how its variables are filled."""

    __tablename__ = "evaluators"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_evaluators_project_id_name"),
        Index("ix_evaluators_project_id_template_family_id", "project_id", "template_family_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = _project_fk()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    template_family_id: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str] = mapped_column(String(32), nullable=False)  # trace | observation
    filter: Mapped[list[dict[str, Any]]] = mapped_column(json_type(), nullable=False, default=list)
    mapping: Mapped[list[dict[str, Any]] | None] = mapped_column(json_type())  # None: template default
    sampling: Mapped[float] = mapped_column(Float, nullable=False, default=1.0)
    delay_seconds: Mapped[int] = mapped_column(Integer, nullable=False, default=10)
    score_name: Mapped[str] = mapped_column(String(255), nullable=False)
    time_scope: Mapped[list[str]] = mapped_column(json_type(), nullable=False, default=list)  # NEW, EXISTING
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    paused_reason: Mapped[str | None] = mapped_column(String(64))
    paused_message: Mapped[str | None] = mapped_column(Text)
    failure_streak: Mapped[int] = mapped_column(Integer, nullable=False, default=0)  # auth/quota in a row
    created_by_api: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    backfill_status: Mapped[str | None] = mapped_column(String(16))  # queued | running | done | error
    backfill_cursor: Mapped[str | None] = mapped_column(String(512))
    backfill_total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    backfill_error: Mapped[str | None] = mapped_column(Text)
    backfill_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # a backfill asked for on edit re-runs the executions that finished before this time
    backfill_rescore_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)

    @property
    def status(self) -> str:
        """The effective state: inactive (disabled), paused (blocked until fixed) or active."""
        if not self.enabled:
            return "inactive"
        return "paused" if self.paused_reason else "active"


class JobExecution(Base):
    __tablename__ = "job_executions"
    __table_args__ = (
        UniqueConstraint("evaluator_id", "trace_id", "observation_id",
                         name="uq_job_executions_evaluator_id_trace_id_observation_id"),
        Index("ix_job_executions_project_id_evaluator_id_created_at", "project_id", "evaluator_id", "created_at"),
        Index("ix_job_executions_status_scheduled_at", "status", "scheduled_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = _project_fk()
    evaluator_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("evaluators.id", ondelete="CASCADE"), nullable=False
    )
    trace_id: Mapped[str] = mapped_column(String(255), nullable=False)
    observation_id: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    dataset_run_item_id: Mapped[str | None] = mapped_column(String(64))  # target=experiment
    origin: Mapped[str] = mapped_column(String(16), nullable=False, default="new")  # new | backfill | experiment
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    score_id: Mapped[str | None] = mapped_column(String(64))
    judge_trace_id: Mapped[str | None] = mapped_column(String(64))
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


EVAL_TABLES = ("llm_connections", "eval_default_models", "eval_templates", "evaluators", "job_executions")
