"""Project model definitions (the `models`, `pricing_tiers`, `prices` tables) as price-table entries.

The worker prices generations with a `PriceBook` made of the shipped global models plus the
project's own models read here; a project model overrides a global one that matches the same name.
"""

from __future__ import annotations

import logging

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from owlscope.ingestion.pricing import ModelPrice, condition_from_dict
from owlscope.ingestion.pricing import PricingTier as TierPrice
from owlscope.storage.oltp.models import Model, PricingTier

log = logging.getLogger(__name__)


def tier_price_from_row(tier: PricingTier) -> TierPrice:
    return TierPrice(
        id=tier.id,
        name=tier.name,
        is_default=tier.is_default,
        priority=tier.priority,
        conditions=tuple(condition_from_dict(c) for c in tier.conditions or ()),
        prices={p.usage_type: float(p.price) for p in tier.prices},
    )


def model_price_from_row(model: Model) -> ModelPrice:
    """A `Model` row with its tiers and prices loaded, as the pricing engine's (and API's) model.

    Raises ValueError (or re.error) when a stored pattern or condition is not usable.
    """
    config = model.tokenizer_config
    return ModelPrice(
        id=model.id,
        model_name=model.model_name,
        match_pattern=model.match_pattern,
        pricing_tiers=tuple(tier_price_from_row(t) for t in model.pricing_tiers),
        start_date=model.start_date,
        project_id=model.project_id,
        tokenizer_id=model.tokenizer_id,
        tokenizer_config=config if isinstance(config, dict) else None,
        unit=model.unit,
        created_at=model.created_at,
        updated_at=model.updated_at,
    )


def model_rows_query(project_id: str) -> Select[tuple[Model]]:
    """The project's models with tiers and prices eagerly loaded (three queries, no N+1)."""
    return (
        select(Model)
        .where(Model.project_id == project_id)
        .options(selectinload(Model.pricing_tiers).selectinload(PricingTier.prices))
        .order_by(Model.created_at, Model.id)
    )


def load_project_models(session: Session, project_id: str) -> list[ModelPrice]:
    found: list[ModelPrice] = []
    for row in session.scalars(model_rows_query(project_id)):
        try:
            found.append(model_price_from_row(row))
        except Exception as exc:  # noqa: BLE001 - one broken definition must not stop pricing
            log.warning("project %s: model %s (%s) skipped for pricing: %s", project_id, row.id,
                        row.model_name, exc)
    return found


def project_models(sessions: sessionmaker[Session], project_id: str) -> list[ModelPrice]:
    """The project's own model definitions (not the global ones), ready for a `PriceBook`."""
    with sessions() as session:
        return load_project_models(session, project_id)
