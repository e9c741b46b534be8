"""Annotation queues and their assigned reviewers (`/api/public/annotation-queues`).

A queue names the score configs its reviewers fill in (at least one, each a config of the
project) and has a unique name in its project. Reviewers are project members with at least the
MEMBER role (VIEWERs cannot annotate).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from owlscope.accounts.orgs import project_role, role_at_least
from owlscope.errors import Conflict, InvalidRequest, NotFound
from owlscope.storage.oltp.models import Project, ScoreConfig, User
from owlscope.storage.oltp.queue_models import AnnotationQueue, AnnotationQueueAssignment
from owlscope.tracing_config.common import ApiInput, parse_input
from owlscope.wire import Page, PageRequest, iso

NAME_MAX = 255
DESCRIPTION_MAX = 2000
QUEUE_NOT_FOUND = "Annotation queue not found within authorized project"


class CreateAnnotationQueueRequest(ApiInput):
    name: str
    description: str | None = None
    scoreConfigIds: list[str]


class AssignmentRequest(ApiInput):
    userId: str


def queue_to_dict(q: AnnotationQueue) -> dict[str, Any]:
    """The API's AnnotationQueue."""
    return {"id": q.id, "name": q.name, "description": q.description, "scoreConfigIds": list(q.score_config_ids),
            "createdAt": iso(q.created_at), "updatedAt": iso(q.updated_at)}


def load_queue(session: Session, project_id: str, queue_id: str) -> AnnotationQueue:
    queue = session.scalars(select(AnnotationQueue).where(
        AnnotationQueue.project_id == project_id, AnnotationQueue.id == queue_id)).first()
    if queue is None:
        raise NotFound(QUEUE_NOT_FOUND)
    return queue


def _clean(session: Session, project_id: str, req: CreateAnnotationQueueRequest) -> tuple[str, str | None, list[str]]:
    name = req.name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidRequest(f"name must be 1 to {NAME_MAX} characters")
    description = (req.description or "").strip() or None
    if description and len(description) > DESCRIPTION_MAX:
        raise InvalidRequest(f"description is at most {DESCRIPTION_MAX} characters")
    ids = list(dict.fromkeys(req.scoreConfigIds))
    if not ids:
        raise InvalidRequest("scoreConfigIds must name at least one score config")
    found = set(session.scalars(select(ScoreConfig.id).where(
        ScoreConfig.project_id == project_id, ScoreConfig.id.in_(ids), ScoreConfig.is_archived.is_(False))))
    missing = [i for i in ids if i not in found]
    if missing:
        raise InvalidRequest(f"Score configs not found (or archived) in this project: {', '.join(missing)}")
    return name, description, ids


def _name_taken(session: Session, project_id: str, name: str, exclude: str | None = None) -> bool:
    where = [AnnotationQueue.project_id == project_id, AnnotationQueue.name == name]
    if exclude:
        where.append(AnnotationQueue.id != exclude)
    return bool(session.scalar(select(func.count()).select_from(AnnotationQueue).where(*where)))


def create_queue(sessions: sessionmaker[Session], *, project_id: str,
                 data: CreateAnnotationQueueRequest | Mapping[str, Any]) -> dict[str, Any]:
    req = parse_input(CreateAnnotationQueueRequest, data)
    try:
        with sessions() as session, session.begin():
            name, description, ids = _clean(session, project_id, req)
            if _name_taken(session, project_id, name):
                raise Conflict(f"An annotation queue named {name!r} already exists in this project")
            queue = AnnotationQueue(project_id=project_id, name=name, description=description, score_config_ids=ids)
            session.add(queue)
            session.flush()
            return queue_to_dict(queue)
    except IntegrityError:  # a concurrent create with the same name
        raise Conflict(f"An annotation queue named {req.name.strip()!r} already exists in this project") from None


def update_queue(sessions: sessionmaker[Session], *, project_id: str, queue_id: str,
                 data: CreateAnnotationQueueRequest | Mapping[str, Any]) -> dict[str, Any]:
    """Change a queue's name, description and score configs (the settings page)."""
    req = parse_input(CreateAnnotationQueueRequest, data)
    with sessions() as session, session.begin():
        queue = load_queue(session, project_id, queue_id)
        name, description, ids = _clean(session, project_id, req)
        if _name_taken(session, project_id, name, exclude=queue_id):
            raise Conflict(f"An annotation queue named {name!r} already exists in this project")
        queue.name, queue.description, queue.score_config_ids = name, description, ids
        session.flush()
        return queue_to_dict(queue)


def delete_queue(sessions: sessionmaker[Session], *, project_id: str, queue_id: str) -> None:
    with sessions() as session, session.begin():
        session.delete(load_queue(session, project_id, queue_id))


def get_queue(sessions: sessionmaker[Session], *, project_id: str, queue_id: str) -> dict[str, Any]:
    with sessions() as session:
        return queue_to_dict(load_queue(session, project_id, queue_id))


def list_queues(sessions: sessionmaker[Session], *, project_id: str, page: PageRequest | None = None) -> Page:
    """The project's queues, newest first."""
    page = page or PageRequest()
    where = AnnotationQueue.project_id == project_id
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(AnnotationQueue).where(where)) or 0
        rows = session.scalars(select(AnnotationQueue).where(where)
                               .order_by(AnnotationQueue.created_at.desc(), AnnotationQueue.id.desc())
                               .offset(page.offset).limit(page.limit)).all()
        return Page([queue_to_dict(q) for q in rows], page.page, page.limit, total)


# ---- assignments -----------------------------------------------------------------------------
def _check_reviewer(session: Session, project_id: str, user_id: str) -> None:
    project = session.get(Project, project_id)
    user = session.get(User, user_id) if user_id else None
    role = project_role(session, user_id=user_id, project=project) if project and user else None
    if role is None:
        raise NotFound(f"User {user_id!r} is not a member of this project")
    if not role_at_least(role, "MEMBER"):
        raise InvalidRequest(f"User {user_id!r} is a {role.value} in this project; reviewers need the MEMBER role")


def assign(sessions: sessionmaker[Session], *, project_id: str, queue_id: str,
           data: AssignmentRequest | Mapping[str, Any]) -> dict[str, Any]:
    """Assign a member to review the queue (assigning twice is the same as once)."""
    req = parse_input(AssignmentRequest, data)
    with sessions() as session, session.begin():
        load_queue(session, project_id, queue_id)
        _check_reviewer(session, project_id, req.userId)
        exists = session.scalar(select(func.count()).select_from(AnnotationQueueAssignment).where(
            AnnotationQueueAssignment.project_id == project_id, AnnotationQueueAssignment.queue_id == queue_id,
            AnnotationQueueAssignment.user_id == req.userId))
        if not exists:
            session.add(AnnotationQueueAssignment(project_id=project_id, queue_id=queue_id, user_id=req.userId))
    return {"userId": req.userId, "queueId": queue_id, "projectId": project_id}


def unassign(sessions: sessionmaker[Session], *, project_id: str, queue_id: str,
             data: AssignmentRequest | Mapping[str, Any]) -> dict[str, Any]:
    req = parse_input(AssignmentRequest, data)
    with sessions() as session, session.begin():
        load_queue(session, project_id, queue_id)
        row = session.scalars(select(AnnotationQueueAssignment).where(
            AnnotationQueueAssignment.project_id == project_id, AnnotationQueueAssignment.queue_id == queue_id,
            AnnotationQueueAssignment.user_id == req.userId)).first()
        if row is None:
            raise NotFound(f"User {req.userId!r} is not assigned to this queue")
        session.delete(row)
    return {"success": True}


def assigned_user_ids(sessions: sessionmaker[Session], *, project_id: str, queue_id: str) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(AnnotationQueueAssignment.user_id).where(
            AnnotationQueueAssignment.project_id == project_id, AnnotationQueueAssignment.queue_id == queue_id)
            .order_by(AnnotationQueueAssignment.created_at)))
