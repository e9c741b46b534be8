"""Model definitions: the project's own models plus the shipped (global) price table.

A project model overrides a global one: the pricing engine tries project models first (see
`owlscope.ingestion.pricing.PriceBook`). Global models come from the packaged price table and are
read-only: to change a global model's prices, create a project model with the same name.

Validation follows Langfuse's public API: flat prices (`inputPrice`/`outputPrice`/`totalPrice`)
OR `pricingTiers`, never both and never neither; `totalPrice` only without input/output prices;
exactly one default tier (priority 0, no conditions); conditional tiers need a condition, unique
names and priorities, and the default tier's usage keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from owlscope.errors import Forbidden, InvalidRequest, NotFound
from owlscope.ingestion.pricing import ModelPrice, condition_from_dict, load_default_models
from owlscope.storage.oltp.base import new_id
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.models import Model, Price, PricingTier
from owlscope.tracing_config.common import ApiInput, parse_input
from owlscope.tracing_config.project_prices import load_project_models, model_price_from_row
from owlscope.wire import Page, PageRequest

ModelUsageUnit = Literal["CHARACTERS", "TOKENS", "MILLISECONDS", "SECONDS", "IMAGES", "REQUESTS"]

MAX_NAME = 255
MAX_PATTERN = 1024
MAX_TIER_NAME = 100
MAX_PRIORITY = 999
MAX_USAGE_PATTERN = 200
MAX_USAGE_TYPE = 128
MAX_PRICE = 1e30  # prices are NUMERIC(65, 30): 35 integer digits at most
OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")
ATTRIBUTE_SOURCES = ("model_parameters", "metadata")
NOT_FOUND = "No model with this id found."


class PricingTierInput(ApiInput):
    name: str
    isDefault: bool = False
    priority: int
    conditions: list[dict[str, Any]] = Field(default_factory=list)
    prices: dict[str, float]


class CreateModelRequest(ApiInput):
    """The public API's CreateModelRequest."""

    modelName: str
    matchPattern: str
    startDate: datetime | None = None
    unit: ModelUsageUnit | None = None
    inputPrice: float | None = None
    outputPrice: float | None = None
    totalPrice: float | None = None
    pricingTiers: list[PricingTierInput] | None = None
    tokenizerId: Literal["openai", "claude"] | None = None
    tokenizerConfig: dict[str, Any] | None = None


# ------------------------------------------------------------------------------------ validation


def _check_regex(pattern: str, what: str, flags: int = re.IGNORECASE) -> None:
    try:
        re.compile(pattern, flags)
    except re.error as exc:
        raise InvalidRequest(f"{what} is not a valid regular expression: {exc}") from exc


def _check_price(value: float, what: str) -> None:
    if value < 0:
        raise InvalidRequest(f"{what} must not be negative")
    if value >= MAX_PRICE:
        raise InvalidRequest(f"{what} must be below {MAX_PRICE:g} (USD per unit)")


def _condition(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One tier condition, checked and normalised to the API's shape."""
    if "source" in raw:
        source, key, values = raw.get("source"), raw.get("key"), raw.get("values")
        if source not in ATTRIBUTE_SOURCES:
            raise InvalidRequest(f"{where}.source must be one of {', '.join(ATTRIBUTE_SOURCES)}")
        if not isinstance(key, str) or not key or len(key) > MAX_USAGE_PATTERN:
            raise InvalidRequest(f"{where}.key must be a string of 1 to {MAX_USAGE_PATTERN} characters")
        if raw.get("operator", "in") != "in":
            raise InvalidRequest(f"{where}.operator must be 'in' for attribute conditions")
        if (not isinstance(values, list) or not values
                or not all(isinstance(v, str) and v for v in values)):
            raise InvalidRequest(f"{where}.values must be a non-empty list of non-empty strings")
    else:
        pattern, op, value = raw.get("usageDetailPattern"), raw.get("operator"), raw.get("value")
        case_sensitive = raw.get("caseSensitive", False)
        if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_USAGE_PATTERN:
            raise InvalidRequest(
                f"{where}.usageDetailPattern must be a regex of 1 to {MAX_USAGE_PATTERN} characters"
            )
        _check_regex(pattern, f"{where}.usageDetailPattern", 0)
        if op not in OPERATORS:
            raise InvalidRequest(f"{where}.operator must be one of {', '.join(OPERATORS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise InvalidRequest(f"{where}.value must be a non-negative number")
        if not isinstance(case_sensitive, bool):
            raise InvalidRequest(f"{where}.caseSensitive must be a boolean")
    try:
        return condition_from_dict(raw).to_dict()
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidRequest(f"{where} is not a valid pricing tier condition: {exc}") from exc


def _validated_tiers(tiers: list[PricingTierInput]) -> list[dict[str, Any]]:
    """Langfuse's pricing tier rules; returns the tiers with names trimmed and conditions normalised."""
    out: list[dict[str, Any]] = []
    for i, tier in enumerate(tiers):
        where = f"pricingTiers.{i}"
        name = tier.name.strip()
        if not name or len(name) > MAX_TIER_NAME:
            raise InvalidRequest(f"{where}.name must be 1 to {MAX_TIER_NAME} characters")
        if not 0 <= tier.priority <= MAX_PRIORITY:
            raise InvalidRequest(f"{where}.priority must be from 0 to {MAX_PRIORITY}")
        if not tier.prices:
            raise InvalidRequest(f'Pricing tier "{name}" must have at least one price defined')
        for usage_type, price in tier.prices.items():
            if not usage_type or len(usage_type) > MAX_USAGE_TYPE:
                raise InvalidRequest(f"{where}.prices: usage types must be 1 to {MAX_USAGE_TYPE} characters")
            _check_price(price, f"{where}.prices.{usage_type}")
        conditions = [_condition(c, f"{where}.conditions.{j}") for j, c in enumerate(tier.conditions)]
        out.append({"name": name, "isDefault": tier.isDefault, "priority": tier.priority,
                    "conditions": conditions, "prices": dict(tier.prices)})

    defaults = [t for t in out if t["isDefault"]]
    if not defaults:
        raise InvalidRequest("Exactly one pricing tier must have isDefault: true")
    if len(defaults) > 1:
        raise InvalidRequest(f"Only one pricing tier can have isDefault: true, found {len(defaults)}")
    default = defaults[0]
    if default["priority"] != 0:
        raise InvalidRequest("Default pricing tier must have priority: 0")
    if default["conditions"]:
        raise InvalidRequest("Default pricing tier must have empty conditions array")
    for t in out:
        if not t["isDefault"] and not t["conditions"]:
            raise InvalidRequest(f'Non-default pricing tier "{t["name"]}" must have at least one condition')
    if len({t["priority"] for t in out}) != len(out):
        raise InvalidRequest("Pricing tier priorities must be unique within a model")
    if len({t["name"] for t in out}) != len(out):
        raise InvalidRequest("Pricing tier names must be unique")
    keys = sorted(default["prices"])
    for t in out:
        if sorted(t["prices"]) != keys:
            raise InvalidRequest(
                f'Pricing tier "{t["name"]}" must have the same usage keys as the default tier. '
                f"Expected: [{', '.join(keys)}], Got: [{', '.join(sorted(t['prices']))}]"
            )
    return out


def validate_model_request(req: CreateModelRequest) -> list[dict[str, Any]]:
    """Every rule of a model definition; returns its pricing tiers (flat prices become the default tier)."""
    if not req.modelName.strip() or len(req.modelName) > MAX_NAME:
        raise InvalidRequest(f"modelName must be 1 to {MAX_NAME} characters")
    if not req.matchPattern or len(req.matchPattern) > MAX_PATTERN:
        raise InvalidRequest(f"matchPattern must be 1 to {MAX_PATTERN} characters")
    _check_regex(req.matchPattern, "matchPattern")
    flat = {"input": req.inputPrice, "output": req.outputPrice, "total": req.totalPrice}
    flat = {k: v for k, v in flat.items() if v is not None}
    has_tiers = bool(req.pricingTiers)
    if flat and has_tiers:
        raise InvalidRequest(
            "Must provide either flat prices (inputPrice/outputPrice/totalPrice) OR pricingTiers, not both"
        )
    if not flat and not has_tiers:
        raise InvalidRequest("Must provide either flat prices (inputPrice/outputPrice/totalPrice) OR pricingTiers")
    if has_tiers:
        assert req.pricingTiers is not None
        return _validated_tiers(req.pricingTiers)
    if "total" in flat and ("input" in flat or "output" in flat):
        raise InvalidRequest("totalPrice: If input and/or output price is set, total price must be null")
    for key, value in flat.items():
        _check_price(value, f"{key}Price")
    return [{"name": "Standard", "isDefault": True, "priority": 0, "conditions": [], "prices": flat}]


# ------------------------------------------------------------------------------------ operations


def _defaults_by_id() -> dict[str, ModelPrice]:
    return {m.id: m for m in load_default_models()}


def _project_row(session: Session, project_id: str, model_id: str) -> Model | None:
    return session.scalars(
        select(Model)
        .where(Model.project_id == project_id, Model.id == model_id)
        .options(selectinload(Model.pricing_tiers).selectinload(PricingTier.prices))
    ).first()


def create_model(
    sessions: sessionmaker[Session], *, project_id: str, data: CreateModelRequest | Mapping[str, Any]
) -> ModelPrice:
    """Create a project model (a 400 for an invalid definition or a name already used in the project)."""
    req = parse_input(CreateModelRequest, data)
    tiers = validate_model_request(req)
    model_id = new_id()
    start = req.startDate
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    row = Model(
        id=model_id, project_id=project_id, model_name=req.modelName.strip(), match_pattern=req.matchPattern,
        start_date=start, unit=req.unit, tokenizer_id=req.tokenizerId, tokenizer_config=req.tokenizerConfig,
    )
    flat = not req.pricingTiers
    for tier in tiers:
        row.pricing_tiers.append(PricingTier(
            id=f"{model_id}_tier_default" if flat else new_id(),
            name=tier["name"], is_default=tier["isDefault"], priority=tier["priority"],
            conditions=tier["conditions"],
            prices=[Price(model_id=model_id, usage_type=k, price=Decimal(str(v)))
                    for k, v in tier["prices"].items()],
        ))
    with write_transaction(sessions) as session:  # two creates cannot both pass the name check
        taken = session.scalar(
            select(Model.id).where(Model.project_id == project_id, Model.model_name == row.model_name).limit(1)
        )
        if taken is not None:
            raise InvalidRequest(f"Model name '{row.model_name}' already exists in project")
        session.add(row)
        session.flush()
        return model_price_from_row(row)


def list_models(
    sessions: sessionmaker[Session], *, project_id: str, page: PageRequest | None = None
) -> Page:
    """The project's models and the global ones, by name, unit, and newest start date first."""
    page = page or PageRequest()
    with sessions() as session:
        models = load_project_models(session, project_id) + load_default_models()

    def order(m: ModelPrice) -> tuple:
        start = -m.start_date.timestamp() if m.start_date else 0.0
        return (m.model_name, m.unit or "", m.start_date is None, start, m.project_id is None, m.id)

    models.sort(key=order)
    return Page(models[page.offset: page.offset + page.limit], page.page, page.limit, len(models))


def get_model(sessions: sessionmaker[Session], *, project_id: str, model_id: str) -> ModelPrice:
    """A project model or a global one; another project's model is not found."""
    with sessions() as session:
        row = _project_row(session, project_id, model_id)
        if row is not None:
            return model_price_from_row(row)
    found = _defaults_by_id().get(model_id)
    if found is None:
        raise NotFound(NOT_FOUND)
    return found


def delete_model(sessions: sessionmaker[Session], *, project_id: str, model_id: str) -> None:
    """Delete a project model with its tiers and prices; global models cannot be deleted (403)."""
    with sessions() as session, session.begin():
        row = session.scalars(
            select(Model).where(Model.project_id == project_id, Model.id == model_id)
        ).first()
        if row is not None:
            session.delete(row)
            return
    if model_id in _defaults_by_id():
        raise Forbidden(
            f"Model {model_id} is a built-in model and cannot be deleted. To change its prices, create "
            "a model with the same modelName in your project: project models override built-in ones."
        )
    raise NotFound(NOT_FOUND)
