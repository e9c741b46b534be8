"""Score configs: the schema a project's scores follow (numeric range, categories, boolean, text).

Rules as in Langfuse's public API:
- name: 1 to 35 characters; letters, numbers, spaces, underscores, periods, parentheses, hyphens;
- NUMERIC: optional minValue / maxValue with minValue < maxValue; no categories;
- CATEGORICAL: at least one category, labels and values unique; no min/max;
- BOOLEAN: the categories True=1 and False=0 are generated and cannot be passed; no min/max;
- TEXT: neither categories nor min/max.
An update (PATCH) is merged into the stored config and the result must follow the same rules;
the data type cannot change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from owlscope.errors import InvalidRequest, NotFound
from owlscope.storage.oltp.models import ScoreConfig, ScoreDataType
from owlscope.tracing_config.common import ApiInput, parse_input
from owlscope.wire import Page, PageRequest, iso

NAME_MAX = 35
_NAME = re.compile(r"^[\w .()\-]+$")
BOOLEAN_CATEGORIES = ({"label": "True", "value": 1}, {"label": "False", "value": 0})
NOT_FOUND = "Score config not found within authorized project"

DataType = Literal["NUMERIC", "CATEGORICAL", "BOOLEAN", "TEXT"]


class CreateScoreConfigRequest(ApiInput):
    name: str
    dataType: DataType
    categories: list[dict[str, Any]] | None = None
    minValue: float | None = None
    maxValue: float | None = None
    description: str | None = None


class UpdateScoreConfigRequest(ApiInput):
    """Only the fields sent are changed; null clears minValue, maxValue, description and categories."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    isArchived: bool | None = None
    name: str | None = None
    categories: list[dict[str, Any]] | None = None
    minValue: float | None = None
    maxValue: float | None = None
    description: str | None = None


# ------------------------------------------------------------------------------------ validation


def _check_name(name: str) -> str:
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidRequest(f"name must be 1 to {NAME_MAX} characters")
    if not _NAME.match(name):
        raise InvalidRequest(
            "name may contain only letters, numbers, underscores, spaces, periods, parentheses and hyphens"
        )
    return name


def _check_categories(categories: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    labels: set[str] = set()
    values: set[float] = set()
    for cat in categories:
        label = cat.get("label") if isinstance(cat, Mapping) else None
        value = cat.get("value") if isinstance(cat, Mapping) else None
        if (not isinstance(label, str) or not label or isinstance(value, bool)
                or not isinstance(value, int | float) or not math.isfinite(value)):
            raise InvalidRequest(
                "Category must be an array of objects with label value pairs, where labels and values are unique."
            )
        if label in labels:
            raise InvalidRequest(f"Duplicate category label: {label}, category labels must be unique")
        if value in values:
            raise InvalidRequest(f"Duplicate category value: {value}, category values must be unique")
        labels.add(label)
        values.add(value)
        out.append({"label": label, "value": value})
    return out


def validate_config(
    data_type: str,
    *,
    categories: list[Any] | None,
    min_value: float | None,
    max_value: float | None,
    generated_categories: bool = False,
) -> list[dict[str, Any]] | None:
    """Check a whole config; returns the categories to store."""
    if data_type == "NUMERIC":
        if categories:
            raise InvalidRequest("categories are only allowed for CATEGORICAL score configs")
        if min_value is not None and max_value is not None and max_value <= min_value:
            raise InvalidRequest("Maximum value must be greater than Minimum value")
        return None
    if min_value is not None or max_value is not None:
        raise InvalidRequest(f"minValue and maxValue are only allowed for NUMERIC score configs, not {data_type}")
    if data_type == "CATEGORICAL":
        if not categories:
            raise InvalidRequest("CATEGORICAL score configs need at least one category ({label, value})")
        return _check_categories(categories)
    if data_type == "BOOLEAN":
        if categories and not generated_categories:
            raise InvalidRequest(
                "categories are generated for BOOLEAN score configs (True=1, False=0) and cannot be passed"
            )
        return [dict(c) for c in BOOLEAN_CATEGORIES]
    if categories:
        raise InvalidRequest(f"categories are only allowed for CATEGORICAL score configs, not {data_type}")
    return None


def config_to_dict(config: ScoreConfig) -> dict[str, Any]:
    """The API's ScoreConfig."""
    return {
        "id": config.id,
        "name": config.name,
        "createdAt": iso(config.created_at),
        "updatedAt": iso(config.updated_at),
        "projectId": config.project_id,
        "dataType": str(config.data_type),
        "isArchived": config.is_archived,
        "minValue": config.min_value,
        "maxValue": config.max_value,
        "categories": config.categories,
        "description": config.description,
    }


# ------------------------------------------------------------------------------------ operations


def create_score_config(
    sessions: sessionmaker[Session], *, project_id: str, data: CreateScoreConfigRequest | Mapping[str, Any]
) -> dict[str, Any]:
    req = parse_input(CreateScoreConfigRequest, data)
    name = _check_name(req.name)
    categories = validate_config(req.dataType, categories=req.categories, min_value=req.minValue,
                                 max_value=req.maxValue)
    with sessions() as session, session.begin():
        config = ScoreConfig(
            project_id=project_id, name=name, data_type=ScoreDataType(req.dataType),
            min_value=req.minValue, max_value=req.maxValue, categories=categories,
            description=req.description, is_archived=False,
        )
        session.add(config)
        session.flush()
        return config_to_dict(config)


def _row(session: Session, project_id: str, config_id: str) -> ScoreConfig:
    config = session.scalars(
        select(ScoreConfig).where(ScoreConfig.project_id == project_id, ScoreConfig.id == config_id)
    ).first()
    if config is None:
        raise NotFound(NOT_FOUND)
    return config


def get_score_config(sessions: sessionmaker[Session], *, project_id: str, config_id: str) -> dict[str, Any]:
    with sessions() as session:
        return config_to_dict(_row(session, project_id, config_id))


def list_score_configs(
    sessions: sessionmaker[Session], *, project_id: str, page: PageRequest | None = None
) -> Page:
    """The project's score configs, newest first."""
    page = page or PageRequest()
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(ScoreConfig)
                               .where(ScoreConfig.project_id == project_id)) or 0
        rows = session.scalars(
            select(ScoreConfig).where(ScoreConfig.project_id == project_id)
            .order_by(ScoreConfig.created_at.desc(), ScoreConfig.id.desc())
            .offset(page.offset).limit(page.limit)
        ).all()
        return Page([config_to_dict(r) for r in rows], page.page, page.limit, total)


def update_score_config(
    sessions: sessionmaker[Session],
    *,
    project_id: str,
    config_id: str,
    data: UpdateScoreConfigRequest | Mapping[str, Any],
) -> dict[str, Any]:
    """Apply the fields sent; the merged config must still be valid (the data type never changes)."""
    req = parse_input(UpdateScoreConfigRequest, data)
    sent = req.model_fields_set
    if not sent:
        raise InvalidRequest("Request body cannot be empty. At least one field must be provided for update.")
    with sessions() as session, session.begin():
        config = _row(session, project_id, config_id)
        data_type = str(config.data_type)
        name = config.name
        if "name" in sent and req.name is not None:
            name = _check_name(req.name)
        min_value = req.minValue if "minValue" in sent else config.min_value
        max_value = req.maxValue if "maxValue" in sent else config.max_value
        passed = "categories" in sent and req.categories is not None
        categories = req.categories if "categories" in sent else config.categories
        stored = validate_config(
            data_type, categories=categories, min_value=min_value, max_value=max_value,
            generated_categories=not passed,
        )
        config.name = name
        config.min_value, config.max_value = min_value, max_value
        config.categories = stored
        if "description" in sent:
            config.description = req.description
        if "isArchived" in sent and req.isArchived is not None:
            config.is_archived = req.isArchived
        session.flush()
        return config_to_dict(config)
