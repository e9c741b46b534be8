"""Every router of the public API, in the order they are matched. A new resource: import its module
and add its router here."""

from __future__ import annotations

from fastapi import APIRouter

from owlscope.api import (
    comments,
    dashboards,
    dataset_items,
    dataset_runs,
    datasets,
    erasure,
    evaluators,
    health,
    ingest,
    llm_connections,
    local_control,
    masking_rules,
    media,
    metrics,
    models,
    observations,
    project_retention,
    projects,
    prometheus,
    prompts,
    score_configs,
    scores_read,
    sessions,
    traces,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router, projects.router, ingest.router, models.router, score_configs.router, comments.router,
    prompts.router, datasets.router, dataset_items.router, dataset_runs.router,
    traces.router, observations.router, sessions.router, scores_read.router, metrics.router,
    llm_connections.router, evaluators.router, prometheus.router, local_control.router,
    media.router, masking_rules.router, project_retention.router,
    erasure.router, dashboards.router,
)
