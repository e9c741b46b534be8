"""UI routers, one module per area."""

from __future__ import annotations

from importlib import import_module

from fastapi import APIRouter

_MODULES = (
    "auth", "onboarding", "org_settings", "project_settings", "project_keys", "project_scores",
    "dashboard", "traces", "sessions", "users", "scores", "annotations", "sharing", "home",
    "prompts", "datasets", "experiments", "llm_connections", "evals",
    "playground",
)


def routers() -> list[APIRouter]:
    return [import_module(f"owlscope.web.views.{name}").router for name in _MODULES]
