"""Media tables: files the SDKs upload (images, audio, PDFs) and where traces and dataset items
refer to them. The bytes live in the blob store under `media/<project>/<sha256 hex>`; rows hold
only references.

- `media`: one row per distinct content in a project. Its id is the one the SDKs derive from the
  bytes (the first 22 characters of the URL-safe base64 SHA-256), so the same bytes get the same
  id in every project: the key is (project_id, id). `uploaded_at` is set only once the stored
  bytes were checked against the SHA-256; `upload_http_*` record what the SDK reported.
- `media_references`: which trace, observation or dataset item refers to a media, and in which
  field. Absent parts are '' rather than NULL, so the primary key holds (NULLs never collide).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKeyConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from owlscope.storage.oltp.base import Base, UTCDateTime, utcnow


class Media(Base):
    __tablename__ = "media"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
    )

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sha256_hash: Mapped[str] = mapped_column(String(64), nullable=False)  # base64, as the SDKs send it
    content_type: Mapped[str] = mapped_column(String(255), nullable=False)
    content_length: Mapped[int] = mapped_column(BigInteger, nullable=False)
    blob_key: Mapped[str] = mapped_column(String(512), nullable=False)
    uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    upload_http_status: Mapped[int | None] = mapped_column(Integer)
    upload_http_error: Mapped[str | None] = mapped_column(Text)
    upload_time_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class MediaReference(Base):
    __tablename__ = "media_references"
    __table_args__ = (
        ForeignKeyConstraint(["project_id", "media_id"], ["media.project_id", "media.id"], ondelete="CASCADE"),
        Index("ix_media_references_project_id_trace_id", "project_id", "trace_id"),
        Index("ix_media_references_project_id_dataset_item_id", "project_id", "dataset_item_id"),
    )

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    media_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    trace_id: Mapped[str] = mapped_column(String(255), primary_key=True, default="")
    observation_id: Mapped[str] = mapped_column(String(255), primary_key=True, default="")
    dataset_item_id: Mapped[str] = mapped_column(String(255), primary_key=True, default="")
    field: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


MEDIA_TABLES = ("media", "media_references")
