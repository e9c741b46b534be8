"""The audit log: who did what and when in an organization (sign-ins, keys, roles, prompts,
evaluators, connections, sharing, deletions, exports, privacy settings).

Append-only. The ORM refuses to update or delete an entry (the mapper events below), and the
migration adds triggers that make the database refuse UPDATE and DELETE too (SQLite and
PostgreSQL). No foreign keys on purpose: an entry outlives the project, key or user it names.
`org_id` is NULL only for failed sign-ins with an unknown email (they belong to no organization).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column

from owlscope.storage.oltp.base import Base, UTCDateTime, json_type, new_id, utcnow


class AppendOnlyError(RuntimeError):
    """An attempt to change or remove an audit log entry."""


class AuditLogEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_org_id_created_at", "org_id", "created_at"),
        Index("ix_audit_log_org_id_action", "org_id", "action"),
        Index("ix_audit_log_project_id_created_at", "project_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    org_id: Mapped[str | None] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(64))
    actor_type: Mapped[str] = mapped_column(String(16), nullable=False)  # user | api_key | system
    actor_id: Mapped[str | None] = mapped_column(String(64))
    actor_name: Mapped[str | None] = mapped_column(String(320))  # email or public key, as it was then
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_type: Mapped[str] = mapped_column(String(64), nullable=False)
    resource_id: Mapped[str | None] = mapped_column(String(512))
    before: Mapped[Any | None] = mapped_column(json_type())
    after: Mapped[Any | None] = mapped_column(json_type())
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


@event.listens_for(AuditLogEntry, "before_update")
def _no_update(_mapper: Any, _connection: Any, _target: Any) -> None:
    raise AppendOnlyError("audit log entries cannot be changed")


@event.listens_for(AuditLogEntry, "before_delete")
def _no_delete(_mapper: Any, _connection: Any, _target: Any) -> None:
    raise AppendOnlyError("audit log entries cannot be deleted")


AUDIT_TABLES = ("audit_log",)
