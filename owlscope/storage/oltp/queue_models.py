"""Annotation queues: lists of traces, observations and sessions for people to score.

- `annotation_queues`: a named queue with the score configs its reviewers fill in.
- `annotation_queue_items`: one object (TRACE, OBSERVATION or SESSION) in a queue, PENDING until a
  reviewer completes it. While someone reviews an item it is locked to them (`locked_by_user_id`,
  `locked_at`) for a few minutes, so two reviewers never score the same item at once.
- `annotation_queue_assignments`: the project members assigned to review a queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from owlscope.storage.oltp.base import Base, UTCDateTime, json_type, new_id, utcnow


class AnnotationQueue(Base):
    __tablename__ = "annotation_queues"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_annotation_queues_project_id_name"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(64), ForeignKey("projects.id", ondelete="CASCADE"),
                                            nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    score_config_ids: Mapped[list[Any]] = mapped_column(json_type(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class AnnotationQueueItem(Base):
    __tablename__ = "annotation_queue_items"
    __table_args__ = (
        ForeignKeyConstraint(["queue_id"], ["annotation_queues.id"], ondelete="CASCADE"),
        UniqueConstraint("project_id", "queue_id", "object_type", "object_id",
                         name="uq_annotation_queue_items_object"),
        Index("ix_annotation_queue_items_queue_status", "project_id", "queue_id", "status",
              "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(64), ForeignKey("projects.id", ondelete="CASCADE"),
                                            nullable=False)
    queue_id: Mapped[str] = mapped_column(String(64), nullable=False)
    object_type: Mapped[str] = mapped_column(String(16), nullable=False)
    object_id: Mapped[str] = mapped_column(String(255), nullable=False)
    trace_id: Mapped[str | None] = mapped_column(String(255))  # an observation's trace
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="PENDING")
    locked_by_user_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("users.id", ondelete="SET NULL"))
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    annotator_user_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("users.id", ondelete="SET NULL"))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class AnnotationQueueAssignment(Base):
    __tablename__ = "annotation_queue_assignments"
    __table_args__ = (
        ForeignKeyConstraint(["queue_id"], ["annotation_queues.id"], ondelete="CASCADE"),
        UniqueConstraint("project_id", "queue_id", "user_id",
                         name="uq_annotation_queue_assignments_user"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(64), ForeignKey("projects.id", ondelete="CASCADE"),
                                            nullable=False)
    queue_id: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


QUEUE_TABLES = ("annotation_queues", "annotation_queue_items", "annotation_queue_assignments")
