"""OLTP tables: organizations, projects, users, memberships, API keys, models, score configs, comments.

Every project-owned table leads its main index with `project_id`: every query filters on it first.
Enums are stored as short strings (no native enum types), so adding a value needs no migration.
The schema itself is created by the Alembic revisions in `migrations/versions/`; a test checks
that the revisions and these models agree.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Enum, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from owlscope.storage.oltp.base import Base, ExactDecimal, UTCDateTime, json_type, new_id, utcnow


class Role(enum.StrEnum):
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"
    VIEWER = "VIEWER"
    NONE = "NONE"  # project override only: an org member without access to this project


class ScoreDataType(enum.StrEnum):
    NUMERIC = "NUMERIC"
    CATEGORICAL = "CATEGORICAL"
    BOOLEAN = "BOOLEAN"
    TEXT = "TEXT"


class CommentObjectType(enum.StrEnum):
    TRACE = "TRACE"
    OBSERVATION = "OBSERVATION"
    SESSION = "SESSION"
    PROMPT = "PROMPT"


def _str_enum(cls: type[enum.StrEnum], length: int = 16) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        create_constraint=False,
        length=length,
        validate_strings=True,
        values_callable=lambda e: [m.value for m in e],
    )


def _id() -> Mapped[str]:
    return mapped_column(String(64), primary_key=True, default=new_id)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), nullable=False, default=utcnow)


def _updated() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


def _project_fk() -> Mapped[str]:
    return mapped_column(String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    projects: Mapped[list[Project]] = relationship(back_populates="organization", passive_deletes=True)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (Index("ix_projects_org_id", "org_id"),)

    id: Mapped[str] = _id()
    org_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    retention_days: Mapped[int | None] = mapped_column(Integer)
    # `metadata` is taken on declarative classes: the attribute is `meta`, the column `metadata`.
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", json_type())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    organization: Mapped[Organization] = relationship(back_populates="projects")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("email", name="uq_users_email"),)

    id: Mapped[str] = _id()
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    name: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    @validates("email")
    def _normalise_email(self, _key: str, value: str) -> str:
        return normalise_email(value)


def normalise_email(email: str) -> str:
    """Emails are unique case-insensitively: store and look them up lower-cased."""
    return email.strip().lower()


class OrganizationMembership(Base):
    __tablename__ = "organization_memberships"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id", name="uq_organization_memberships_org_id_user_id"),
        Index("ix_organization_memberships_user_id", "user_id"),
    )

    id: Mapped[str] = _id()
    org_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    role: Mapped[Role] = mapped_column(_str_enum(Role), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ProjectMembership(Base):
    """A per-project role that overrides the member's organization role for that project."""

    __tablename__ = "project_memberships"
    __table_args__ = (
        UniqueConstraint("project_id", "user_id", name="uq_project_memberships_project_id_user_id"),
        Index("ix_project_memberships_user_id", "user_id"),
    )

    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project_fk()
    user_id: Mapped[str] = mapped_column(String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    role: Mapped[Role] = mapped_column(_str_enum(Role), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ApiKey(Base):
    """A project's key pair. The secret is stored only as a salted hash (see owlscope.auth.keys)."""

    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_project_id", "project_id"),
        Index("ix_api_keys_public_key", "public_key", unique=True),
        Index("ix_api_keys_hashed_secret_key", "hashed_secret_key", unique=True),
    )

    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project_fk()
    public_key: Mapped[str] = mapped_column(String(128), nullable=False)
    hashed_secret_key: Mapped[str] = mapped_column(String(128), nullable=False)
    display_secret_key: Mapped[str] = mapped_column(String(32), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    project: Mapped[Project] = relationship()


class Model(Base):
    """A model definition for cost and tokenization. `project_id` None means a global model."""

    __tablename__ = "models"
    __table_args__ = (Index("ix_models_project_id_model_name", "project_id", "model_name"),)

    id: Mapped[str] = _id()
    project_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=True
    )
    model_name: Mapped[str] = mapped_column(String(255), nullable=False)
    match_pattern: Mapped[str] = mapped_column(String(1024), nullable=False)
    start_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unit: Mapped[str | None] = mapped_column(String(32))
    tokenizer_id: Mapped[str | None] = mapped_column(String(64))
    tokenizer_config: Mapped[Any | None] = mapped_column(json_type())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    pricing_tiers: Mapped[list[PricingTier]] = relationship(
        back_populates="model",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="PricingTier.priority",
    )

    @property
    def is_global(self) -> bool:
        return self.project_id is None


class PricingTier(Base):
    """A set of prices that applies when all `conditions` match; the default tier is the fallback."""

    __tablename__ = "pricing_tiers"
    __table_args__ = (
        UniqueConstraint("model_id", "name", name="uq_pricing_tiers_model_id_name"),
        UniqueConstraint("model_id", "priority", name="uq_pricing_tiers_model_id_priority"),
    )

    id: Mapped[str] = _id()
    model_id: Mapped[str] = mapped_column(String(64), ForeignKey("models.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(json_type(), nullable=False, default=list)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    model: Mapped[Model] = relationship(back_populates="pricing_tiers")
    prices: Mapped[list[Price]] = relationship(
        back_populates="pricing_tier", cascade="all, delete-orphan", passive_deletes=True
    )


class Price(Base):
    """USD per unit of one usage type (`input`, `output`, `cache_read_input_tokens`, ...)."""

    __tablename__ = "prices"
    __table_args__ = (
        UniqueConstraint("pricing_tier_id", "usage_type", name="uq_prices_pricing_tier_id_usage_type"),
        Index("ix_prices_model_id", "model_id"),
    )

    id: Mapped[str] = _id()
    model_id: Mapped[str] = mapped_column(String(64), ForeignKey("models.id", ondelete="CASCADE"), nullable=False)
    pricing_tier_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("pricing_tiers.id", ondelete="CASCADE"), nullable=False
    )
    usage_type: Mapped[str] = mapped_column(String(128), nullable=False)
    price: Mapped[Decimal] = mapped_column(ExactDecimal(), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    pricing_tier: Mapped[PricingTier] = relationship(back_populates="prices")


class ScoreConfig(Base):
    __tablename__ = "score_configs"
    __table_args__ = (Index("ix_score_configs_project_id_name", "project_id", "name"),)

    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project_fk()
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    data_type: Mapped[ScoreDataType] = mapped_column(_str_enum(ScoreDataType), nullable=False)
    min_value: Mapped[float | None] = mapped_column(Float)
    max_value: Mapped[float | None] = mapped_column(Float)
    categories: Mapped[list[dict[str, Any]] | None] = mapped_column(json_type())
    description: Mapped[str | None] = mapped_column(Text)
    is_archived: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (
        Index("ix_comments_project_id_object_type_object_id", "project_id", "object_type", "object_id"),
    )

    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project_fk()
    object_type: Mapped[CommentObjectType] = mapped_column(_str_enum(CommentObjectType), nullable=False)
    object_id: Mapped[str] = mapped_column(String(255), nullable=False)
    content: Mapped[str] = mapped_column(Text, nullable=False)
    author_user_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


TABLES = (
    "organizations", "projects", "users", "organization_memberships", "project_memberships", "api_keys",
    "models", "pricing_tiers", "prices", "score_configs", "comments", "prompts",
)

# Models kept in their own modules register on the same metadata (Alembic and the tests see them).
from owlscope.storage.oltp.dataset_models import DATASET_TABLES  # noqa: E402
from owlscope.storage.oltp.prompt_models import Prompt  # noqa: E402, F401

TABLES = (*TABLES, *DATASET_TABLES)

from owlscope.storage.oltp.eval_models import EVAL_TABLES  # noqa: E402

TABLES = (*TABLES, *EVAL_TABLES)

from owlscope.storage.oltp.ui_models import UI_TABLES  # noqa: E402

TABLES = (*TABLES, *UI_TABLES)

from owlscope.storage.oltp.media_models import MEDIA_TABLES  # noqa: E402

TABLES = (*TABLES, *MEDIA_TABLES)

from owlscope.storage.oltp.privacy_models import PRIVACY_TABLES  # noqa: E402

TABLES = (*TABLES, *PRIVACY_TABLES)

from owlscope.storage.oltp.integration_models import INTEGRATION_TABLES  # noqa: E402

TABLES = (*TABLES, *INTEGRATION_TABLES)
from owlscope.storage.oltp.queue_models import QUEUE_TABLES  # noqa: E402

TABLES = (*TABLES, *QUEUE_TABLES)
from owlscope.storage.oltp.audit_models import AUDIT_TABLES  # noqa: E402

TABLES = (*TABLES, *AUDIT_TABLES)
from owlscope.storage.oltp.admin_models import ADMIN_TABLES  # noqa: E402

TABLES = (*TABLES, *ADMIN_TABLES)
from owlscope.storage.oltp.dashboard_models import DASHBOARD_TABLES  # noqa: E402

TABLES = (*TABLES, *DASHBOARD_TABLES)
