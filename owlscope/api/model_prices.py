"""The matched model of each observation and its prices (`modelId`, `inputPrice`, `outputPrice`,
`totalPrice`) in the observation bodies, as Langfuse returns them.

The model is the one that prices the observation: the project's models first, then the global ones,
matched by name at the observation's start time (the same `PriceBook` rule ingestion uses for the
cost). Prices are those of the model's default tier. The v1 bodies carry them as numbers, v2 as
decimal strings (as Langfuse does).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from owlscope.ingestion.pricing import PriceBook, load_default_models
from owlscope.services import Services
from owlscope.tracing_config.project_prices import project_models


def _start(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _decimal_text(price: float | None) -> str | None:
    return None if price is None else format(Decimal(repr(price)).normalize(), "f")


def attach_model_prices(services: Services, project_id: str, observations: Iterable[dict[str, Any]], *,
                        v2: bool = False) -> None:
    """Fill the model id and prices of each observation body that names a model (in place).

    v2 bodies get them only with the `model` field group (where `providedModelName` is present)."""
    named = [o for o in observations
             if (o.get("providedModelName") if v2 else o.get("model")) and "modelId" in o]
    if not named:
        return
    book = PriceBook(load_default_models(), project_models=project_models(services.sessions, project_id))
    for o in named:
        model = book.match(o["providedModelName"] if v2 else o["model"], _start(o.get("startTime")))
        if model is None:
            continue
        prices = model.prices
        o["modelId"] = model.id
        if v2:
            o["internalModelId"] = model.id
        for key, field in (("input", "inputPrice"), ("output", "outputPrice"), ("total", "totalPrice")):
            price = prices.get(key)
            o[field] = _decimal_text(price) if v2 else price
