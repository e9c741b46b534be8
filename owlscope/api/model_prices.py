"""The prices of each observation's matched model (`inputPrice`, `outputPrice`, `totalPrice`) in the
observation bodies, as Langfuse returns them.

The model id (`modelId`) is the one ingestion matched when it priced the observation, stored with it
(OLAP migration 0003): the project's models first, then the global ones (`PriceBook`). Its prices are
read here by that id, from the model as it is now (its default tier): a model whose prices changed
shows the new prices (the observation's cost stays the one computed when it was ingested); a project
model deleted since keeps its `modelId` with null prices. An observation ingested before model ids
were stored carries its model name instead (`MODEL_TO_MATCH`) and is matched by name at its start
time, as every read did before. The v1 bodies carry prices as numbers, v2 as decimal strings (as
Langfuse does).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from owlscope.ingestion.pricing import PriceBook, load_default_models
from owlscope.services import Services
from owlscope.tracing.observations import MODEL_TO_MATCH
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
    """Fill the prices of each observation body's model, by its stored `modelId` (in place)."""
    bodies = list(observations)
    unmatched = {id(o): o.pop(MODEL_TO_MATCH) for o in bodies if MODEL_TO_MATCH in o}
    if not unmatched and not any(o.get("modelId") for o in bodies):
        return
    defaults = load_default_models()
    own = project_models(services.sessions, project_id)
    if unmatched:
        book = PriceBook(defaults, project_models=own)
        for o in bodies:
            if id(o) in unmatched:
                model = book.match(unmatched[id(o)], _start(o.get("startTime")))
                o["modelId"] = model.id if model else None
    by_id = {m.id: m for m in defaults} | {m.id: m for m in own}
    for o in bodies:
        if "internalModelId" in o:
            o["internalModelId"] = o["modelId"]
        model = by_id.get(o.get("modelId") or "")
        if model is None:
            continue
        for key, field in (("input", "inputPrice"), ("output", "outputPrice"), ("total", "totalPrice")):
            price = model.prices.get(key)
            o[field] = _decimal_text(price) if v2 else price
