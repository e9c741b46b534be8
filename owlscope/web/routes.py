"""Every router of the web UI, in the order they are matched. A new area: import its module and
add its router here."""

from __future__ import annotations

from fastapi import APIRouter

from owlscope.web.views import (
    annotations,
    auth,
    dashboard,
    dashboards,
    datasets,
    downloads,
    erasure,
    evals,
    experiments,
    home,
    llm_connections,
    media,
    onboarding,
    org_api_keys,
    org_audit,
    org_settings,
    playground,
    project_integrations,
    project_keys,
    project_members,
    project_privacy,
    project_scores,
    project_settings,
    prompts,
    queue_review,
    queues,
    scores,
    sessions,
    sharing,
    sso,
    traces,
    users,
)

ROUTERS: tuple[APIRouter, ...] = (
    auth.router, sso.router, onboarding.router, org_audit.router, org_settings.router, org_api_keys.router,
    project_settings.router, project_keys.router, project_members.router,
    project_scores.router, downloads.router, dashboard.router, dashboards.router, traces.router, sessions.router, users.router,
    scores.router, annotations.router, sharing.router, home.router, prompts.router, datasets.router,
    experiments.router, llm_connections.router, evals.router, media.router, playground.router,
    project_privacy.router, project_integrations.router, queues.router, queue_review.router, erasure.router,
)
