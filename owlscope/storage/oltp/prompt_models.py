"""The `prompts` table: one row per version of a named prompt in a project.

Labels are unique per (project, name) and `latest` always sits on the newest version; tags are the
same on every version of a name. Both invariants are kept by `owlscope.prompts.store`, not by the
database (labels and tags are JSON lists, which neither SQLite nor PostgreSQL can constrain).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from owlscope.storage.oltp.base import Base, UTCDateTime, json_type, new_id, utcnow


class Prompt(Base):
    __tablename__ = "prompts"
    __table_args__ = (
        UniqueConstraint("project_id", "name", "version", name="uq_prompts_project_id_name_version"),
        Index("ix_prompts_project_id_name", "project_id", "name"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)  # "text" | "chat"
    prompt: Mapped[Any] = mapped_column(json_type(), nullable=False)  # str, or a list of messages
    config: Mapped[Any] = mapped_column(json_type(), nullable=False, default=dict)
    labels: Mapped[list[str]] = mapped_column(json_type(), nullable=False, default=list)
    tags: Mapped[list[str]] = mapped_column(json_type(), nullable=False, default=list)
    commit_message: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)
