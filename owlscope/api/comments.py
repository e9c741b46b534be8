"""Comments: /api/public/comments."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import Comment, GetCommentsResponse, Id, typed
from owlscope.pipeline.masking import masker_for
from owlscope.tracing_config.comments import CreateCommentRequest, create_comment, get_comment, list_comments
from owlscope.wire import PageRequest

router = APIRouter(tags=["Comments"])


@router.post("/api/public/comments", **typed(Id))
def comments_create(body: CreateCommentRequest, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    comment = create_comment(services.sessions, olap=services.olap, masker=masker_for(services, auth.project_id),
                             project_id=auth.project_id, data=body)
    return {"id": comment["id"]}


@router.get("/api/public/comments", **typed(GetCommentsResponse))
def comments_list(
    auth: AuthDep,
    services: ServicesDep,
    page: int | None = None,
    limit: int | None = None,
    objectType: str | None = None,
    objectId: str | None = None,
    authorUserId: str | None = None,
) -> dict[str, Any]:
    found = list_comments(
        services.sessions, project_id=auth.project_id, object_type_filter=objectType, object_id=objectId,
        author_user_id=authorUserId, page=PageRequest.of(page, limit, maximum=100),
    )
    return {"data": found.data, "meta": found.meta()}


@router.get("/api/public/comments/{commentId}", **typed(Comment))
def comments_get(commentId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return get_comment(services.sessions, project_id=auth.project_id, comment_id=commentId)
