"""Deterministic enrichment of mapped rows before insert: prompt links and cost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from owlscope.cache import TTLCache
from owlscope.ingestion.pricing import PriceBook, load_default_models
from owlscope.ingestion.rows import Rows
from owlscope.tracing.obs_select import fetch_merged

if TYPE_CHECKING:
    from owlscope.services import Services

_TTL = 30.0


class Enricher:
    def __init__(self, services: Services):
        self.services = services
        self._books: TTLCache[str, PriceBook] = TTLCache(_TTL, max_entries=1_000)

    def price_book(self, project_id: str) -> PriceBook:
        from owlscope.tracing_config.project_prices import project_models

        return self._books.get_or_load(project_id, lambda: PriceBook(
            load_default_models(), project_models=project_models(self.services.sessions, project_id)))

    def invalidate(self, project_id: str | None = None) -> None:
        if project_id is None:
            self._books.clear()
        else:
            self._books.pop(project_id)

    def enrich(self, rows: Rows) -> None:
        self._link_prompts(rows)
        self._fill_models(rows)
        books: dict[str, PriceBook] = {}
        for obs in rows.observations:
            if obs.model is None:
                continue
            book = books.get(obs.project_id)
            if book is None:
                book = books[obs.project_id] = self.price_book(obs.project_id)
            cost, model_id = book.compute_cost(obs.model, obs.usage_details, obs.cost_details)
            # stored with the row: '' says "this name matched no model" (it replaces an earlier match)
            obs.internal_model_id = model_id or ""
            if cost is not None:
                obs.cost_details = cost

    def _link_prompts(self, rows: Rows) -> None:
        """A generation that names a prompt version is linked to that version's id."""
        wanted: dict[str, set[tuple[str, int]]] = {}
        for obs in rows.observations:
            if obs.prompt_name and obs.prompt_version is not None and obs.prompt_id is None:
                wanted.setdefault(obs.project_id, set()).add((obs.prompt_name, obs.prompt_version))
        if not wanted:
            return
        from owlscope.prompts.linking import resolve_prompt_ids

        ids = {pid: resolve_prompt_ids(self.services.sessions, pid, pairs) for pid, pairs in wanted.items()}
        for obs in rows.observations:
            if obs.prompt_name and obs.prompt_version is not None and obs.prompt_id is None:
                obs.prompt_id = ids[obs.project_id].get((obs.prompt_name, obs.prompt_version))

    def _fill_models(self, rows: Rows) -> None:
        """A legacy usage update without a model is priced with the model its create named (a
        deterministic read of an immutable field, not a read-modify-write)."""
        need = [o for o in rows.observations
                if o.model is None and o.usage_details and not o.cost_details and o.type is None]
        if not need:
            return
        by_project: dict[str, list] = {}
        for o in need:
            by_project.setdefault(o.project_id, []).append(o)
        for project_id, obs in by_project.items():
            found = fetch_merged(self.services.olap, project_id, [(o.trace_id, o.id) for o in obs], {"o_model"})
            for o in obs:
                model = found.get((o.trace_id, o.id), {}).get("o_model")
                if model:
                    o.model = model
