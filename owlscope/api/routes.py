"""Every router of the public API, in the order they are matched. A new resource: import its module
and add its router here."""

from __future__ import annotations

from fastapi import APIRouter

from owlscope.api import (
    annotation_queues,
    blob_storage,
    comments,
    dashboards,
    dataset_items,
    dataset_runs,
    datasets,
    erasure,
    evaluators,
    feedback,
    health,
    ingest,
    llm_connections,
    local_control,
    masking_rules,
    mcp,
    media,
    metrics,
    models,
    observations,
    org_admin,
    project_retention,
    projects,
    prometheus,
    prompts,
    scim,
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
    erasure.router, blob_storage.router, mcp.router, annotation_queues.router,
    org_admin.router, scim.router, feedback.router, dashboards.router,
)
