"""Model prices and cost computation.

The price table (`model_prices.json`, shipped with the package, same shape as Langfuse's
default-model-prices) lists models with a case-insensitive regex `matchPattern` on the model name
and one or more pricing tiers. A tier holds prices in USD per unit for each usage key
(`input`, `output`, `input_cached_tokens`, `total`, ...) and conditions that all must hold for the
tier to apply:

- usage conditions: the sum of the usage values whose key matches `usageDetailPattern` compared
  (`gt`, `gte`, `lt`, `lte`, `eq`, `neq`) with `value` (e.g. a "> 200k input tokens" tier);
- attribute conditions: a top-level key of the observation's `model_parameters` or `metadata`
  whose value is one of `values` (e.g. `service_tier in ["flex"]`).

Tier selection follows Langfuse: conditional tiers in ascending `priority` (1 before 2: the most
specific tier has the lowest number), the first whose conditions all hold wins; the default tier
is the fallback.

Model selection (`PriceBook.match`): project models win over global ones; among several matches
the newest `start_date` wins (a model without one is the oldest); with an observation time `at`,
models that start after it are skipped.

Cost (`PriceBook.compute_cost`): provided costs win (their "total" is their sum when not given);
otherwise cost per usage key = price x units, keys without a price contribute nothing, and
"total" = the sum. A model priced by "total" (older completions and embedding models) prices the
usage "total" (the sum of the usage values when the usage has no "total").

Pure: no I/O except reading the packaged JSON once.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from owlscope.wire import iso

PRICES_FILE = Path(__file__).with_name("model_prices.json")

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
    "neq": operator.ne,
}
ATTRIBUTE_SOURCES = ("model_parameters", "metadata")


def _parse_dt(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _number(value: Any) -> float | int | None:
    """A finite int or float, else None (bools, strings, None, NaN are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _decimal(value: float | int) -> Decimal:
    # str() keeps the decimal digits the price was written with (2.5e-06, not its binary expansion)
    return Decimal(value) if isinstance(value, int) else Decimal(str(value))


# --------------------------------------------------------------------------------------- conditions


@dataclass(frozen=True, slots=True)
class UsageCondition:
    """Sum of the usage values whose key matches `usage_detail_pattern`, compared with `value`."""

    usage_detail_pattern: str
    operator: str
    value: float
    case_sensitive: bool = False
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.operator not in _OPERATORS:
            raise ValueError(f"unknown pricing tier operator {self.operator!r}")
        flags = 0 if self.case_sensitive else re.IGNORECASE
        object.__setattr__(self, "_regex", re.compile(self.usage_detail_pattern, flags))

    def holds(self, usage: Mapping[str, float | int], attributes: Mapping[str, Mapping[str, Any]]) -> bool:
        search = self._regex.search
        total = sum(v for k, v in usage.items() if search(k))
        return _OPERATORS[self.operator](total, self.value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "usageDetailPattern": self.usage_detail_pattern,
            "operator": self.operator,
            "value": self.value,
            "caseSensitive": self.case_sensitive,
        }


@dataclass(frozen=True, slots=True)
class AttributeCondition:
    """A top-level key of the observation's model parameters (or metadata) is one of `values`."""

    source: str  # "model_parameters" | "metadata"
    key: str
    values: tuple[str, ...]
    operator: str = "in"

    def __post_init__(self) -> None:
        if self.source not in ATTRIBUTE_SOURCES:
            raise ValueError(f"unknown pricing tier condition source {self.source!r}")
        if self.operator != "in":
            raise ValueError(f"attribute conditions support only the 'in' operator, not {self.operator!r}")

    def holds(self, usage: Mapping[str, float | int], attributes: Mapping[str, Mapping[str, Any]]) -> bool:
        values = attributes.get(self.source)
        if not values or self.key not in values:
            return False
        value = values[self.key]
        if value is None:
            return False
        if isinstance(value, bool):
            value = "true" if value else "false"
        return str(value) in self.values

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "key": self.key,
            "operator": self.operator,
            "values": list(self.values),
        }


Condition = UsageCondition | AttributeCondition


def condition_from_dict(d: Mapping[str, Any]) -> Condition:
    if "source" in d:
        return AttributeCondition(
            source=d["source"],
            key=d["key"],
            values=tuple(str(v) for v in d.get("values") or ()),
            operator=d.get("operator", "in"),
        )
    return UsageCondition(
        usage_detail_pattern=d.get("usageDetailPattern", d.get("usage_detail_pattern")),
        operator=d["operator"],
        value=d["value"],
        case_sensitive=bool(d.get("caseSensitive", d.get("case_sensitive", False))),
    )


# ------------------------------------------------------------------------------------------- tiers


@dataclass(frozen=True, slots=True)
class PricingTier:
    id: str
    name: str
    is_default: bool
    priority: int
    conditions: tuple[Condition, ...]
    prices: Mapping[str, float]  # usage key -> USD per unit
    _decimal_prices: Mapping[str, Decimal] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_decimal_prices", {k: _decimal(v) for k, v in self.prices.items()})

    def applies(self, usage: Mapping[str, float | int], attributes: Mapping[str, Mapping[str, Any]]) -> bool:
        """All conditions hold. A tier without conditions applies only as the default."""
        if not self.conditions:
            return self.is_default
        return all(c.holds(usage, attributes) for c in self.conditions)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, fallback_id: str = "") -> PricingTier:
        prices: dict[str, float] = {}
        for key, value in (d.get("prices") or {}).items():
            if isinstance(value, Mapping):  # the API's {"input": {"price": 1e-6}}
                value = value.get("price")
            if _number(value) is not None:
                prices[key] = float(value)
        is_default = bool(d.get("isDefault", d.get("is_default", False)))
        return cls(
            id=d.get("id") or fallback_id,
            name=d.get("name") or ("Standard" if is_default else ""),
            is_default=is_default,
            priority=int(d.get("priority", 0)),
            conditions=tuple(condition_from_dict(c) for c in d.get("conditions") or ()),
            prices=prices,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "isDefault": self.is_default,
            "priority": self.priority,
            "conditions": [c.to_dict() for c in self.conditions],
            "prices": dict(self.prices),
        }


# ------------------------------------------------------------------------------------------ models


@dataclass(frozen=True, slots=True)
class ModelPrice:
    id: str
    model_name: str
    match_pattern: str  # regex on the observation's model name, matched case-insensitively
    pricing_tiers: tuple[PricingTier, ...]
    start_date: datetime | None = None  # applies to observations from this time on
    project_id: str | None = None  # None: a global (built-in) model
    tokenizer_id: str | None = None
    tokenizer_config: Mapping[str, Any] | None = None
    unit: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _tier_order: tuple[PricingTier, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", re.compile(self.match_pattern, re.IGNORECASE))
        conditional = sorted((t for t in self.pricing_tiers if not t.is_default), key=lambda t: t.priority)
        defaults = [t for t in self.pricing_tiers if t.is_default]
        object.__setattr__(self, "_tier_order", tuple(conditional + defaults[:1]))

    def matches(self, model_name: str) -> bool:
        return self._regex.search(model_name) is not None

    @property
    def default_tier(self) -> PricingTier | None:
        for tier in self.pricing_tiers:
            if tier.is_default:
                return tier
        return None

    @property
    def prices(self) -> Mapping[str, float]:
        """The default tier's prices (the flat prices of the API's Model)."""
        tier = self.default_tier
        return tier.prices if tier else {}

    def select_tier(
        self,
        usage: Mapping[str, float | int] | None,
        model_parameters: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> PricingTier | None:
        order = self._tier_order
        if len(order) == 1 and order[0].is_default:
            return order[0]
        attributes = {"model_parameters": model_parameters or {}, "metadata": metadata or {}}
        usage = usage or {}
        for tier in order:
            if tier.applies(usage, attributes):
                return tier
        return None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, project_id: str | None = None) -> ModelPrice:
        """From the price file / API shape (camelCase) or snake_case keys.

        Without `pricingTiers`, flat prices (`prices`, or the legacy `inputPrice`, `outputPrice`,
        `totalPrice`) become the default tier.
        """
        model_id = d["id"]
        tiers_raw = d.get("pricingTiers", d.get("pricing_tiers"))
        if tiers_raw:
            tiers = tuple(
                PricingTier.from_dict(t, fallback_id=f"{model_id}_tier_{i}") for i, t in enumerate(tiers_raw)
            )
        else:
            flat: dict[str, Any] = dict(d.get("prices") or {})
            for key, name in (("inputPrice", "input"), ("outputPrice", "output"), ("totalPrice", "total")):
                if d.get(key) is not None:
                    flat.setdefault(name, d[key])
            tiers = (
                PricingTier.from_dict(
                    {"isDefault": True, "priority": 0, "name": "Standard", "prices": flat},
                    fallback_id=f"{model_id}_tier_default",
                ),
            )
        tokenizer_config = d.get("tokenizerConfig", d.get("tokenizer_config"))
        if isinstance(tokenizer_config, str):
            tokenizer_config = json.loads(tokenizer_config) if tokenizer_config else None
        return cls(
            id=model_id,
            model_name=d.get("modelName", d.get("model_name")),
            match_pattern=d.get("matchPattern", d.get("match_pattern")),
            pricing_tiers=tiers,
            start_date=_parse_dt(d.get("startDate", d.get("start_date"))),
            project_id=project_id if project_id is not None else d.get("projectId", d.get("project_id")),
            tokenizer_id=d.get("tokenizerId", d.get("tokenizer_id")),
            tokenizer_config=tokenizer_config,
            unit=d.get("unit"),
            created_at=_parse_dt(d.get("createdAt", d.get("created_at"))),
            updated_at=_parse_dt(d.get("updatedAt", d.get("updated_at"))),
        )

    def to_dict(self) -> dict[str, Any]:
        """The public API's Model object."""
        prices = self.prices
        return {
            "id": self.id,
            "modelName": self.model_name,
            "matchPattern": self.match_pattern,
            "startDate": iso(self.start_date),
            "unit": self.unit,
            "inputPrice": prices.get("input"),
            "outputPrice": prices.get("output"),
            "totalPrice": prices.get("total"),
            "tokenizerId": self.tokenizer_id,
            "tokenizerConfig": dict(self.tokenizer_config) if self.tokenizer_config is not None else None,
            "isLangfuseManaged": self.project_id is None,
            "createdAt": iso(self.created_at),
            "prices": {k: {"price": v} for k, v in prices.items()},
            "pricingTiers": [t.to_dict() for t in self.pricing_tiers],
        }


@functools.cache
def _default_models() -> tuple[ModelPrice, ...]:
    with PRICES_FILE.open("rb") as f:
        raw = json.load(f)
    return tuple(ModelPrice.from_dict(d, project_id=None) for d in raw)


def load_default_models() -> list[ModelPrice]:
    """The built-in (global) models from the packaged price table (parsed once per process)."""
    return list(_default_models())


# ------------------------------------------------------------------------------------------- costs


@dataclass(frozen=True, slots=True)
class CostResult:
    cost_details: dict[str, float] | None  # per usage key plus "total"; None: unknown
    model: ModelPrice | None  # the matched model (also when the cost was provided)
    tier: PricingTier | None  # the tier that priced the usage; None when provided or unpriced
    provided: bool  # the cost came from the client

    @property
    def model_id(self) -> str | None:
        return self.model.id if self.model else None

    @property
    def total_cost(self) -> float | None:
        return self.cost_details.get("total") if self.cost_details else None

    @property
    def tier_name(self) -> str | None:
        return self.tier.name if self.tier else None


def clean_provided_cost(provided: Mapping[str, Any] | None) -> dict[str, float] | None:
    """The client's cost details as floats with a "total" (their sum when not given); None if empty."""
    if not provided:
        return None
    out = {k: float(v) for k, v in provided.items() if _number(v) is not None}
    if not out:
        return None
    if "total" not in out:
        out["total"] = math.fsum(out.values())
    return out


def clean_usage(usage: Mapping[str, Any] | None) -> dict[str, float | int]:
    """The numeric usage values (None, bools, strings and NaN dropped)."""
    if not usage:
        return {}
    return {k: v for k, v in usage.items() if _number(v) is not None}


def cost_for_tier(tier: PricingTier, usage: Mapping[str, Any] | None) -> dict[str, float] | None:
    """price x units per priced usage key, plus "total"; None if no usage key has a price."""
    units_by_key = clean_usage(usage)
    if not units_by_key:
        return None
    prices = tier._decimal_prices
    if "total" in prices and "total" not in units_by_key and units_by_key:
        units_by_key["total"] = sum(units_by_key.values())
    costs: dict[str, Decimal] = {}
    for key, units in units_by_key.items():
        price = prices.get(key)
        if price is not None:
            costs[key] = price * _decimal(units)
    if not costs:
        return None
    total = costs["total"] if "total" in costs else sum(costs.values(), Decimal(0))
    out = {k: float(v) for k, v in costs.items()}
    out["total"] = float(total)
    return out


class PriceBook:
    """The models that can price one project's observations: its own plus the global ones.

    Thread-safe and meant to be long-lived: model-name lookups are cached (LRU), so pricing a
    generation of an already seen model costs one dict lookup plus the arithmetic.
    """

    def __init__(
        self,
        default_models: Iterable[ModelPrice] | None = None,
        project_models: Iterable[ModelPrice] = (),
        *,
        cache_size: int = 4096,
    ) -> None:
        if default_models is None:
            default_models = _default_models()
        project = [m for m in project_models]
        glob = [m for m in default_models]

        def newest_first(m: ModelPrice) -> tuple[bool, float]:
            return (m.start_date is None, -m.start_date.timestamp() if m.start_date else 0.0)

        # project models first, then global; within each, newest start_date first (stable: ties
        # keep the given order)
        self.models: tuple[ModelPrice, ...] = tuple(
            sorted(project, key=newest_first) + sorted(glob, key=newest_first)
        )
        self._candidates = functools.lru_cache(maxsize=cache_size)(self._find_candidates)

    def _find_candidates(self, model_name: str) -> tuple[ModelPrice, ...]:
        return tuple(m for m in self.models if m._regex.search(model_name))

    def candidates(self, model_name: str) -> tuple[ModelPrice, ...]:
        """Every model matching the name, the preferred first."""
        return self._candidates(model_name) if model_name else ()

    def match(self, model_name: str | None, at: datetime | None = None) -> ModelPrice | None:
        """The model pricing `model_name`; with `at` (the observation's time) only models started by then."""
        if not model_name:
            return None
        found = self._candidates(model_name)
        if not found:
            return None
        if at is None:
            return found[0]
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        for m in found:
            if m.start_date is None or m.start_date <= at:
                return m
        return None

    def price(
        self,
        model_name: str | None,
        usage: Mapping[str, Any] | None,
        provided_cost: Mapping[str, Any] | None = None,
        *,
        model_parameters: Mapping[str, Any] | str | None = None,
        metadata: Mapping[str, Any] | str | None = None,
        at: datetime | None = None,
    ) -> CostResult:
        """Cost details with the matched model and the tier used (see the module doc for the rules).

        `model_parameters` / `metadata` (dicts or JSON object text) feed attribute conditions such
        as `service_tier in ["flex"]`.
        """
        model = self.match(model_name, at)
        provided = clean_provided_cost(provided_cost)
        if provided is not None:
            return CostResult(provided, model, None, True)
        units = clean_usage(usage)
        if model is None or not units:
            return CostResult(None, model, None, False)
        tier = model.select_tier(units, _as_mapping(model_parameters), _as_mapping(metadata))
        if tier is None:
            return CostResult(None, model, None, False)
        return CostResult(cost_for_tier(tier, units), model, tier, False)

    def compute_cost(
        self,
        model_name: str | None,
        usage: Mapping[str, Any] | None,
        provided_cost: Mapping[str, Any] | None,
        *,
        model_parameters: Mapping[str, Any] | str | None = None,
        metadata: Mapping[str, Any] | str | None = None,
        at: datetime | None = None,
    ) -> tuple[dict[str, float] | None, str | None]:
        """(cost_details incl. "total" or None, matched model id or None)."""
        r = self.price(
            model_name, usage, provided_cost, model_parameters=model_parameters, metadata=metadata, at=at
        )
        return r.cost_details, r.model_id

    def cache_info(self) -> Any:
        return self._candidates.cache_info()


def _as_mapping(value: Mapping[str, Any] | str | None) -> Mapping[str, Any] | None:
    if value is None or isinstance(value, Mapping):
        return value
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        return None
    return decoded if isinstance(decoded, Mapping) else None
