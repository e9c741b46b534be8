"""Integration tables: where a project's data goes besides the UI.

- `blob_storage_integrations`: one scheduled export per project (S3, S3-compatible, or a local
  directory in embedded mode). `last_sync_at` is the end of the last exported window: the
  watermark on a row's last update time (see owlscope.integrations.exports).
- `prompt_webhooks`: one URL per project notified of prompt version changes, with its signing secret
  (encrypted under ENCRYPTION_KEY).
- `webhook_deliveries`: the outbox and delivery log: a row is written in the transaction that
  changes the prompt, then delivered (and retried) by the worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKeyConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from owlscope.storage.oltp.base import Base, UTCDateTime, json_type, utcnow


class BlobStorageIntegration(Base):
    __tablename__ = "blob_storage_integrations"
    __table_args__ = (ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),)

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    bucket_name: Mapped[str] = mapped_column(String(255), nullable=False)
    endpoint: Mapped[str | None] = mapped_column(String(1024))
    region: Mapped[str] = mapped_column(String(64), nullable=False)
    access_key_id: Mapped[str | None] = mapped_column(String(255))
    secret_access_key: Mapped[str | None] = mapped_column(Text)  # encrypted
    prefix: Mapped[str] = mapped_column(String(1024), nullable=False, default="")
    export_frequency: Mapped[str] = mapped_column(String(32), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    force_path_style: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    file_type: Mapped[str] = mapped_column(String(16), nullable=False)
    export_mode: Mapped[str] = mapped_column(String(32), nullable=False)
    export_start_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    compressed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    export_source: Mapped[str] = mapped_column(String(64), nullable=False)
    export_field_groups: Mapped[Any] = mapped_column(json_type(), nullable=True)
    next_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    running_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime())  # of the run under way (a retry reuses it)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class PromptWebhook(Base):
    __tablename__ = "prompt_webhooks"
    __table_args__ = (ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),)

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    secret: Mapped[str] = mapped_column(Text, nullable=False)  # encrypted
    secret_hint: Mapped[str] = mapped_column(String(32), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        Index("ix_webhook_deliveries_project_id_created_at", "project_id", "created_at"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    webhook_id: Mapped[str] = mapped_column(String(64), nullable=False)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


INTEGRATION_TABLES = ("blob_storage_integrations", "prompt_webhooks", "webhook_deliveries")
