"""Deterministic enrichment of mapped rows before insert: cost from the price table."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from owlscope.ingestion.pricing import PriceBook, load_default_models
from owlscope.ingestion.rows import Rows

if TYPE_CHECKING:
    from owlscope.services import Services

_TTL = 30.0


class Enricher:
    def __init__(self, services: Services):
        self.services = services
        self._books: dict[str, tuple[float, PriceBook]] = {}
        self._lock = threading.Lock()

    def price_book(self, project_id: str) -> PriceBook:
        now = time.monotonic()
        with self._lock:
            hit = self._books.get(project_id)
            if hit and now - hit[0] < _TTL:
                return hit[1]
        from owlscope.storage.oltp.pricing import project_models

        book = PriceBook(load_default_models(), project_models=project_models(self.services.sessions, project_id))
        with self._lock:
            self._books[project_id] = (now, book)
        return book

    def invalidate(self, project_id: str | None = None) -> None:
        with self._lock:
            if project_id is None:
                self._books.clear()
            else:
                self._books.pop(project_id, None)

    def enrich(self, rows: Rows) -> None:
        for obs in rows.observations:
            if obs.model is None or (obs.usage_details is None and obs.cost_details is None):
                continue
            book = self.price_book(obs.project_id)
            cost, _model_id = book.compute_cost(obs.model, obs.usage_details, obs.cost_details)
            if cost is not None:
                obs.cost_details = cost

