"""Custom dashboards: charts (widgets) defined as metrics queries, and dashboards that place them.

- `dashboard_widgets`: one chart: a metrics-query view, dimensions, metrics and filters (JSON, the
  public API's shapes), a chart type and its config. A widget stands alone and may be placed on
  any number of the project's dashboards.
- `dashboards`: a name, dashboard-level filters and `definition`, the grid placements
  (`{"widgets": [{"type": "widget"|"preset", "id", "widgetId"|"presetId", "x", "y", "width",
  "height"}]}`), kept as one JSON document as the API reads and writes it whole.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from owlscope.storage.oltp.base import Base, UTCDateTime, json_type, utcnow


class _ProjectItem:
    """The columns a dashboard and a widget share."""

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class Dashboard(_ProjectItem, Base):
    __tablename__ = "dashboards"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        Index("ix_dashboards_project_id_updated_at", "project_id", "updated_at"),
    )

    definition: Mapped[Any] = mapped_column(json_type(), nullable=False)
    filters: Mapped[Any] = mapped_column(json_type(), nullable=False)


class DashboardWidget(_ProjectItem, Base):
    __tablename__ = "dashboard_widgets"
    __table_args__ = (
        ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        Index("ix_dashboard_widgets_project_id_updated_at", "project_id", "updated_at"),
    )

    view: Mapped[str] = mapped_column(String(32), nullable=False)
    dimensions: Mapped[Any] = mapped_column(json_type(), nullable=False)
    metrics: Mapped[Any] = mapped_column(json_type(), nullable=False)
    filters: Mapped[Any] = mapped_column(json_type(), nullable=False)
    chart_type: Mapped[str] = mapped_column(String(32), nullable=False)
    chart_config: Mapped[Any] = mapped_column(json_type(), nullable=False)


DASHBOARD_TABLES = ("dashboards", "dashboard_widgets")
