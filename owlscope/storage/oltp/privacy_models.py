"""Privacy tables: a project's custom masking rules (applied at ingestion, see pipeline.masking).

- `masking_rules`: a regular expression (`kind` = "regex") or a dot path into an event body
  (`kind` = "path", e.g. `metadata.customer.ssn`) and the text that replaces what it finds,
  applied in `position` order after the instance detectors.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from owlscope.storage.oltp.base import Base, UTCDateTime, utcnow


class MaskingRule(Base):
    __tablename__ = "masking_rules"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        Index("ix_masking_rules_project_id_position", "project_id", "position"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    target: Mapped[str] = mapped_column(Text, nullable=False)
    replacement: Mapped[str] = mapped_column(String(255), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


PRIVACY_TABLES = ("masking_rules",)
