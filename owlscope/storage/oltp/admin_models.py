"""Administration tables: organization-scoped API keys, project deletions and API feedback.

- `organization_api_keys`: the second kind of API key (see owlscope.auth.keys). Same hashing as a
  project key; it authenticates the organization endpoints only. `role` is the authority the key
  acts with: the role of the owner or admin who created it (an admin's key cannot grant OWNER).
- `project_deletions`: one row per project deletion, the progress of the background job that
  removes the project's rows, events, blobs and media. It outlives the project (no foreign key
  to it): it is the record that the project was deleted.
- `feedback`: what `POST /api/public/feedback` accepted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from owlscope.storage.oltp.base import Base, UTCDateTime, new_id, utcnow


class OrganizationApiKey(Base):
    __tablename__ = "organization_api_keys"
    __table_args__ = (
        ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        Index("ix_organization_api_keys_org_id", "org_id"),
        Index("ix_organization_api_keys_public_key", "public_key", unique=True),
        Index("ix_organization_api_keys_hashed_secret_key", "hashed_secret_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    org_id: Mapped[str] = mapped_column(String(64), nullable=False)
    public_key: Mapped[str] = mapped_column(String(128), nullable=False)
    hashed_secret_key: Mapped[str] = mapped_column(String(128), nullable=False)
    display_secret_key: Mapped[str] = mapped_column(String(32), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ProjectDeletion(Base):
    __tablename__ = "project_deletions"
    __table_args__ = (
        ForeignKeyConstraint(["org_id"], ["organizations.id"], ondelete="CASCADE"),
        Index("ix_project_deletions_project_id", "project_id"),
        Index("ix_project_deletions_org_id_requested_at", "org_id", "requested_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    org_id: Mapped[str] = mapped_column(String(64), nullable=False)
    project_name: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")  # queued|running|done|failed
    step: Mapped[str | None] = mapped_column(String(64))
    steps_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    steps_total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        Index("ix_feedback_project_id_created_at", "project_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str] = mapped_column(String(32), nullable=False)
    target: Mapped[str] = mapped_column(String(200), nullable=False)
    feedback: Mapped[str] = mapped_column(Text, nullable=False)
    goal: Mapped[str | None] = mapped_column(Text)
    reference_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


ADMIN_TABLES = ("organization_api_keys", "project_deletions", "feedback")
