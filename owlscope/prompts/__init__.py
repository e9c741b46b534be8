"""Prompt management: versions, labels, tags, composition, a server-side cache, and the link from
generations to the prompt version they used.

Entry points:
- `prompt_store(services)` -> `PromptStore` (create / get / get_json / list / versions /
  update_labels / delete), shared by the API and the UI;
- `resolve_prompt_ids(sessions, project_id, pairs)` for the ingestion worker;
- `prompt_version_metrics(olap, project_id, prompt_name)` for the prompt's metrics view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from owlscope.prompts.cache import LocalPromptCache, PromptCache, RedisPromptCache, build_prompt_cache
from owlscope.prompts.composition import MAX_DEPTH, CompositionError, resolve
from owlscope.prompts.linking import forget_prompt_ids, resolve_prompt_ids
from owlscope.prompts.metrics import prompt_version_metrics
from owlscope.prompts.model import LATEST, PRODUCTION, PromptInput, parse_create
from owlscope.prompts.store import PromptStore

if TYPE_CHECKING:
    from owlscope.services import Services

def prompt_store(services: Services) -> PromptStore:
    """The process's PromptStore (built with the services; Redis cache when REDIS_URL is set)."""
    return services.prompts


__all__ = [
    "LATEST", "MAX_DEPTH", "PRODUCTION", "CompositionError", "LocalPromptCache", "PromptCache", "PromptInput",
    "PromptStore", "RedisPromptCache", "build_prompt_cache", "forget_prompt_ids", "parse_create",
    "prompt_store", "prompt_version_metrics", "resolve", "resolve_prompt_ids",
]
