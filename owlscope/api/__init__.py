"""The public API: one router per resource."""

from __future__ import annotations

from importlib import import_module

from fastapi import APIRouter

_MODULES = (
    "health", "projects", "ingest", "models", "score_configs", "comments", "prompts",
    "datasets", "dataset_items", "dataset_runs",
    "traces", "observations", "sessions", "scores_read", "metrics",
    "llm_connections", "evaluators",
    "media",
)


def routers() -> list[APIRouter]:
    found = []
    for name in _MODULES:
        found.append(import_module(f"owlscope.api.{name}").router)
    return found
