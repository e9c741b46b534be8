"""OLTP storage: users, organizations, projects, keys, configs (SQLite or PostgreSQL)."""

from owlscope.storage.oltp.base import Base, new_id, utcnow
from owlscope.storage.oltp.db import make_engine, make_session_factory, sqlite_optimize, write_transaction
from owlscope.storage.oltp.migrate import current_revision, downgrade, head_revision, upgrade
from owlscope.storage.oltp.models import (
    ApiKey,
    Comment,
    CommentObjectType,
    Model,
    Organization,
    OrganizationMembership,
    Price,
    PricingTier,
    Project,
    ProjectMembership,
    Role,
    ScoreConfig,
    ScoreDataType,
    User,
)

__all__ = [
    "ApiKey", "Base", "Comment", "CommentObjectType", "Model", "Organization", "OrganizationMembership",
    "Price", "PricingTier", "Project", "ProjectMembership", "Role", "ScoreConfig", "ScoreDataType", "User",
    "current_revision", "downgrade", "head_revision", "make_engine", "make_session_factory", "new_id",
    "sqlite_optimize", "upgrade", "utcnow", "write_transaction",
]
