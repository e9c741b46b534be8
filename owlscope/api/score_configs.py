"""Score configs: /api/public/score-configs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import ScoreConfig, ScoreConfigs, typed
from owlscope.tracing_config.score_configs import (
    CreateScoreConfigRequest,
    UpdateScoreConfigRequest,
    create_score_config,
    get_score_config,
    list_score_configs,
    update_score_config,
)
from owlscope.wire import PageRequest

router = APIRouter(tags=["ScoreConfigs"])


@router.post("/api/public/score-configs", **typed(ScoreConfig))
def score_configs_create(body: CreateScoreConfigRequest, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return create_score_config(services.sessions, project_id=auth.project_id, data=body)


@router.get("/api/public/score-configs", **typed(ScoreConfigs))
def score_configs_list(
    auth: AuthDep, services: ServicesDep, page: int | None = None, limit: int | None = None
) -> dict[str, Any]:
    found = list_score_configs(services.sessions, project_id=auth.project_id, page=PageRequest.of(page, limit, maximum=100))
    return {"data": found.data, "meta": found.meta()}


@router.get("/api/public/score-configs/{configId}", **typed(ScoreConfig))
def score_configs_get(configId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return get_score_config(services.sessions, project_id=auth.project_id, config_id=configId)


@router.patch("/api/public/score-configs/{configId}", **typed(ScoreConfig))
def score_configs_update(
    configId: str, body: UpdateScoreConfigRequest, auth: AuthDep, services: ServicesDep
) -> dict[str, Any]:
    return update_score_config(services.sessions, project_id=auth.project_id, config_id=configId, data=body)
