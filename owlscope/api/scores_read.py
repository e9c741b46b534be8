"""Reading and deleting scores: GET /api/public/v2/scores, /v2/scores/{id}, /v3/scores and
DELETE /api/public/scores/{id}. (Creating scores is the ingestion router's.)"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from owlscope import tracing
from owlscope.api.deps import ActorDep, AuthDep, ServicesDep, audit_action
from owlscope.api.schemas import GetScoresResponse, GetScoresV3Response, Score, typed
from owlscope.errors import NotFound

router = APIRouter(tags=["scores"])

Source = Annotated[str | None, Query(pattern="^(ANNOTATION|API|EVAL)$")]
DataType = Annotated[str | None, Query(alias="dataType", pattern="^(NUMERIC|BOOLEAN|CATEGORICAL|CORRECTION|TEXT)$")]


@router.get("/api/public/v2/scores", **typed(GetScoresResponse))
def list_scores_v2(
    auth: AuthDep, services: ServicesDep, page: int | None = None, limit: int | None = None,
    user_id: Annotated[str | None, Query(alias="userId")] = None, name: str | None = None,
    from_timestamp: Annotated[str | None, Query(alias="fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, Query(alias="toTimestamp")] = None,
    environment: Annotated[list[str] | None, Query()] = None, source: Source = None,
    operator: str | None = None, value: float | None = None,
    score_ids: Annotated[str | None, Query(alias="scoreIds")] = None,
    config_id: Annotated[str | None, Query(alias="configId")] = None,
    session_id: Annotated[str | None, Query(alias="sessionId")] = None,
    dataset_run_id: Annotated[str | None, Query(alias="datasetRunId")] = None,
    trace_id: Annotated[str | None, Query(alias="traceId")] = None,
    observation_id: Annotated[str | None, Query(alias="observationId")] = None,
    queue_id: Annotated[str | None, Query(alias="queueId")] = None,
    data_type: DataType = None,
    trace_tags: Annotated[list[str] | None, Query(alias="traceTags")] = None,
    fields: str | None = None, filter: str | None = None,
) -> dict[str, Any]:
    return tracing.list_scores_v2(
        services.olap, auth.project_id, page=page, limit=limit, user_id=user_id, name=name,
        from_timestamp=from_timestamp, to_timestamp=to_timestamp, environment=environment, source=source,
        operator=operator, value=value, score_ids=score_ids, config_id=config_id, session_id=session_id,
        dataset_run_id=dataset_run_id, trace_id=trace_id, observation_id=observation_id, queue_id=queue_id,
        data_type=data_type, trace_tags=trace_tags, fields=fields, filter=filter,
    )


@router.get("/api/public/v2/scores/{score_id}", **typed(Score))
def get_score(score_id: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    score = tracing.get_score(services.olap, auth.project_id, score_id)
    if score is None:
        raise NotFound(f"Score {score_id} not found within authorized project")
    return score


@router.get("/api/public/v3/scores", **typed(GetScoresV3Response))
def list_scores_v3(
    auth: AuthDep, services: ServicesDep, limit: int | None = None, cursor: str | None = None,
    fields: str | None = None, id: str | None = None, name: str | None = None, source: str | None = None,
    data_type: Annotated[str | None, Query(alias="dataType")] = None, environment: str | None = None,
    config_id: Annotated[str | None, Query(alias="configId")] = None,
    queue_id: Annotated[str | None, Query(alias="queueId")] = None,
    author_user_id: Annotated[str | None, Query(alias="authorUserId")] = None,
    value: str | None = None,
    value_min: Annotated[float | None, Query(alias="valueMin")] = None,
    value_max: Annotated[float | None, Query(alias="valueMax")] = None,
    trace_id: Annotated[str | None, Query(alias="traceId")] = None,
    session_id: Annotated[str | None, Query(alias="sessionId")] = None,
    observation_id: Annotated[str | None, Query(alias="observationId")] = None,
    experiment_id: Annotated[str | None, Query(alias="experimentId")] = None,
    from_timestamp: Annotated[str | None, Query(alias="fromTimestamp")] = None,
    to_timestamp: Annotated[str | None, Query(alias="toTimestamp")] = None,
) -> dict[str, Any]:
    return tracing.list_scores_v3(
        services.olap, auth.project_id, limit=limit, cursor=cursor, fields=fields, id=id, name=name,
        source=source, data_type=data_type, environment=environment, config_id=config_id, queue_id=queue_id,
        author_user_id=author_user_id, value=value, value_min=value_min, value_max=value_max, trace_id=trace_id,
        session_id=session_id, observation_id=observation_id, experiment_id=experiment_id,
        from_timestamp=from_timestamp, to_timestamp=to_timestamp,
    )


@router.delete("/api/public/scores/{score_id}", status_code=204, **typed(None))
def delete_score(score_id: str, auth: AuthDep, services: ServicesDep, actor: ActorDep) -> Response:
    if not tracing.delete_score(services.olap, auth.project_id, score_id):
        raise NotFound(f"Score {score_id} not found within authorized project")
    audit_action(services, auth, actor, "score.deleted", "score", score_id)
    return Response(status_code=204)
