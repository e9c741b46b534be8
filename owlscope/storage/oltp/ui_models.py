"""Tables of the web UI: public sharing of traces and sessions.

- `public_shares`: one row per shared (or explicitly unshared) trace or session. A trace's OLAP
  `public` flag is aggregated with max() and can never be switched off by a later event, so the
  switch lives here: a row with `shared` true makes the object readable by anyone with its link;
  a row with `shared` false is an explicit revoke that also overrides a trace the SDK marked
  public. Without a row, a trace is public exactly when the SDK said so; a session never is.
- `revoked_sessions`: ids of signed-out browser sessions (kept as long as a cookie can live).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from owlscope.storage.oltp.base import Base, UTCDateTime, new_id, utcnow


class ShareObjectType(enum.StrEnum):
    TRACE = "TRACE"
    SESSION = "SESSION"


class PublicShare(Base):
    __tablename__ = "public_shares"
    __table_args__ = (
        UniqueConstraint("project_id", "object_type", "object_id",
                         name="uq_public_shares_project_id_object_type_object_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(64), ForeignKey("projects.id", ondelete="CASCADE"),
                                            nullable=False)
    object_type: Mapped[ShareObjectType] = mapped_column(
        Enum(ShareObjectType, native_enum=False, create_constraint=False, length=16, validate_strings=True,
             values_callable=lambda e: [m.value for m in e]),
        nullable=False,
    )
    object_id: Mapped[str] = mapped_column(String(255), nullable=False)
    shared: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_by: Mapped[str | None] = mapped_column(String(64), ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class RevokedSession(Base):
    """A signed-out browser session: its cookie is refused even though its signature is valid."""

    __tablename__ = "revoked_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, index=True)


UI_TABLES = ("public_shares", "revoked_sessions")
