"""Comments on traces, observations, sessions and prompts.

As in Langfuse, a comment must point at an object that exists in the project: traces and
observations (and the traces of a session) are looked up in the OLAP store. Ingestion is
asynchronous, so an object sent a moment ago may not be visible yet: the caller gets a 404 and
may retry. The author, when given, must be a member of the project's organization.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from owlscope.errors import Forbidden, InvalidRequest, NotFound
from owlscope.ingestion.masking import Masker
from owlscope.storage.olap.client import Olap
from owlscope.storage.oltp.models import (
    Comment,
    CommentObjectType,
    OrganizationMembership,
    Project,
    ProjectMembership,
    Role,
)
from owlscope.storage.oltp.prompt_models import Prompt
from owlscope.tracing.obs_select import observation_trace
from owlscope.tracing.sessions import session_exists
from owlscope.tracing.traces import trace_exists
from owlscope.tracing_config.common import ApiInput, parse_input
from owlscope.wire import Page, PageRequest, iso

MAX_CONTENT = 5000
MAX_OBJECT_ID = 255
OBJECT_TYPES = tuple(t.value for t in CommentObjectType)


class CreateCommentRequest(ApiInput):
    """The API's CreateCommentRequest; `projectId`, when sent, must be the key's project."""

    projectId: str | None = None
    objectType: str
    objectId: str
    content: str
    authorUserId: str | None = None


def object_type(value: str) -> CommentObjectType:
    """TRACE, OBSERVATION, SESSION or PROMPT (any case)."""
    try:
        return CommentObjectType(value.strip().upper())
    except ValueError:
        raise InvalidRequest(
            f"objectType must be one of {', '.join(OBJECT_TYPES)}, not {value!r}"
        ) from None


def comment_to_dict(c: Comment) -> dict[str, Any]:
    """The API's Comment."""
    return {
        "id": c.id,
        "projectId": c.project_id,
        "createdAt": iso(c.created_at),
        "updatedAt": iso(c.updated_at),
        "objectType": str(c.object_type),
        "objectId": c.object_id,
        "content": c.content,
        "authorUserId": c.author_user_id,
    }


# --------------------------------------------------------------------------------- references



def reference_exists(
    session: Session, olap: Olap | None, *, project_id: str, kind: CommentObjectType, object_id: str
) -> bool:
    """Whether the commented object exists in the project (without an OLAP client: True for the
    objects stored there). A prompt is referenced by the id of one of its versions."""
    if kind is CommentObjectType.PROMPT:
        return session.scalar(
            select(Prompt.id).where(Prompt.project_id == project_id, Prompt.id == object_id).limit(1)
        ) is not None
    if olap is None:
        return True
    if kind is CommentObjectType.SESSION:
        return session_exists(olap, project_id, object_id)
    if kind is CommentObjectType.TRACE:
        return trace_exists(olap, project_id, object_id)
    return observation_trace(olap, project_id, object_id) is not None


def _check_author(session: Session, project_id: str, user_id: str) -> None:
    project = session.get(Project, project_id)
    org_id = project.org_id if project is not None else None
    member = session.scalar(
        select(func.count()).select_from(OrganizationMembership).where(
            OrganizationMembership.org_id == org_id, OrganizationMembership.user_id == user_id
        )
    ) or session.scalar(
        select(func.count()).select_from(ProjectMembership).where(
            ProjectMembership.project_id == project_id, ProjectMembership.user_id == user_id,
            ProjectMembership.role != Role.NONE,
        )
    )
    if not member:
        raise InvalidRequest(
            f"authorUserId {user_id!r} is not a member of the organization that owns this project"
        )


# ------------------------------------------------------------------------------------ operations


def create_comment(
    sessions: sessionmaker[Session],
    *,
    olap: Olap | None,
    masker: Masker | None,
    project_id: str,
    data: CreateCommentRequest | Mapping[str, Any],
) -> dict[str, Any]:
    """Create a comment; `olap` None skips the check that a trace/observation/session exists. Its
    content is stored masked with `masker` (the project's, `pipeline.masking.masker_for`)."""
    req = parse_input(CreateCommentRequest, data)
    if req.projectId is not None and req.projectId != project_id:
        raise Forbidden(f"projectId {req.projectId!r} is not the project of this API key ({project_id})")
    kind = object_type(req.objectType)
    content = req.content.strip()
    if not content:
        raise InvalidRequest("content must not be empty")
    if len(content) > MAX_CONTENT:
        raise InvalidRequest(f"content is {len(content)} characters; the limit is {MAX_CONTENT}")
    if masker is not None:
        content = masker.text(content)
    if not req.objectId or len(req.objectId) > MAX_OBJECT_ID:
        raise InvalidRequest(f"objectId must be 1 to {MAX_OBJECT_ID} characters")
    with sessions() as session, session.begin():
        if req.authorUserId is not None:
            _check_author(session, project_id, req.authorUserId)
        if not reference_exists(session, olap, project_id=project_id, kind=kind, object_id=req.objectId):
            raise NotFound(f"Reference object, {kind.value}: {req.objectId} not found in project")
        comment = Comment(
            project_id=project_id, object_type=kind, object_id=req.objectId, content=content,
            author_user_id=req.authorUserId,
        )
        session.add(comment)
        session.flush()
        return comment_to_dict(comment)


def get_comment(sessions: sessionmaker[Session], *, project_id: str, comment_id: str) -> dict[str, Any]:
    with sessions() as session:
        comment = session.scalars(
            select(Comment).where(Comment.project_id == project_id, Comment.id == comment_id)
        ).first()
        if comment is None:
            raise NotFound("Comment not found within authorized project")
        return comment_to_dict(comment)


def list_comments(
    sessions: sessionmaker[Session],
    *,
    project_id: str,
    object_type_filter: str | None = None,
    object_id: str | None = None,
    author_user_id: str | None = None,
    page: PageRequest | None = None,
) -> Page:
    """The project's comments, oldest first (thread order), optionally for one object or author."""
    page = page or PageRequest()
    if object_id and not object_type_filter:
        raise InvalidRequest("objectType is required when objectId is provided")
    where = [Comment.project_id == project_id]
    if object_type_filter:
        where.append(Comment.object_type == object_type(object_type_filter))
    if object_id:
        where.append(Comment.object_id == object_id)
    if author_user_id:
        where.append(Comment.author_user_id == author_user_id)
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(Comment).where(*where)) or 0
        rows = session.scalars(
            select(Comment).where(*where).order_by(Comment.created_at, Comment.id)
            .offset(page.offset).limit(page.limit)
        ).all()
        return Page([comment_to_dict(r) for r in rows], page.page, page.limit, total)

