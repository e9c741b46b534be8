"""Items of an annotation queue, and the reviewer's walk through them.

An item is a trace, an observation or a session of the project (checked to exist when added; an
object is in a queue at most once: adding it again returns the item already there). Items are
reviewed oldest first. Opening an item locks it to the reviewer for `LOCK_SECONDS`; the next-item
query skips items another reviewer holds, and the lock is taken with one conditional UPDATE, so
two reviewers asking at the same moment never get the same item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from owlscope.annotation.queues import load_queue
from owlscope.errors import Conflict, InvalidRequest, NotFound
from owlscope.storage.olap.client import Olap
from owlscope.storage.oltp.models import CommentObjectType
from owlscope.storage.oltp.queue_models import AnnotationQueueItem as Item
from owlscope.tracing.obs_select import observation_trace
from owlscope.tracing_config.comments import reference_exists
from owlscope.tracing_config.common import ApiInput, parse_input
from owlscope.wire import Page, PageRequest, iso

LOCK_SECONDS = 300
OBJECT_TYPES = ("TRACE", "OBSERVATION", "SESSION")
STATUSES = ("PENDING", "COMPLETED")
ITEM_NOT_FOUND = "Annotation queue item not found within authorized project"


class CreateItemRequest(ApiInput):
    objectId: str
    objectType: str
    status: str | None = None


class UpdateItemRequest(ApiInput):
    status: str | None = None


@dataclass(frozen=True)
class ReviewItem:
    """An item as the review screen needs it."""

    id: str
    queue_id: str
    object_type: str
    object_id: str
    trace_id: str | None
    status: str
    locked_by: str | None  # another reviewer holding the lock now, else None
    annotator: str | None
    position: int  # 1-based place in the queue (oldest first)
    total: int


def item_to_dict(i: Item) -> dict[str, Any]:
    """The API's AnnotationQueueItem."""
    return {"id": i.id, "queueId": i.queue_id, "objectId": i.object_id, "objectType": i.object_type,
            "status": i.status, "completedAt": iso(i.completed_at), "createdAt": iso(i.created_at),
            "updatedAt": iso(i.updated_at)}


def parse_status(value: str | None, *, allow_none: bool = True) -> str | None:
    if value is None and allow_none:
        return None
    status = (value or "").strip().upper()
    if status not in STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}, not {value!r}")
    return status


def parse_object_type(value: str) -> str:
    kind = (value or "").strip().upper()
    if kind not in OBJECT_TYPES:
        raise InvalidRequest(f"objectType must be one of {', '.join(OBJECT_TYPES)}, not {value!r}")
    return kind


def _load(session: Session, project_id: str, queue_id: str, item_id: str) -> Item:
    item = session.scalars(select(Item).where(Item.project_id == project_id, Item.queue_id == queue_id,
                                              Item.id == item_id)).first()
    if item is None:
        raise NotFound(ITEM_NOT_FOUND)
    return item


def _set_status(item: Item, status: str, user_id: str | None, now: datetime) -> None:
    item.status = status
    item.completed_at = now if status == "COMPLETED" else None
    item.annotator_user_id = user_id if status == "COMPLETED" else None
    if status == "COMPLETED":
        item.locked_by_user_id, item.locked_at = None, None


# ---- the API's operations --------------------------------------------------------------------
def add_items(sessions: sessionmaker[Session], olap: Olap | None, *, project_id: str, queue_id: str,
              object_type: str, object_ids: list[str], status: str | None = None) -> list[dict[str, Any]]:
    """Add objects of one type (each must exist in the project); returns the items, existing ones
    included. `olap` None skips the existence check."""
    kind = parse_object_type(object_type)
    status = parse_status(status) or "PENDING"
    ids = list(dict.fromkeys(i for i in object_ids))
    if not ids or any(not i or len(i) > 255 for i in ids):
        raise InvalidRequest("objectId must be 1 to 255 characters")
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        load_queue(session, project_id, queue_id)
        existing = {i.object_id: i for i in session.scalars(select(Item).where(
            Item.project_id == project_id, Item.queue_id == queue_id, Item.object_type == kind,
            Item.object_id.in_(ids)))}
        out = []
        for n, object_id in enumerate(ids):
            item = existing.get(object_id)
            if item is None:
                if olap is not None and not reference_exists(session, olap, project_id=project_id,
                                                             kind=CommentObjectType(kind), object_id=object_id):
                    raise NotFound(f"{kind.capitalize()} {object_id} not found in this project")
                trace_id = observation_trace(olap, project_id, object_id) if olap and kind == "OBSERVATION" else \
                    (object_id if kind == "TRACE" else None)
                item = Item(project_id=project_id, queue_id=queue_id, object_type=kind, object_id=object_id,
                            trace_id=trace_id, created_at=now + timedelta(microseconds=n), updated_at=now)
                _set_status(item, status, None, now)
                session.add(item)
            out.append(item)
        session.flush()
        return [item_to_dict(i) for i in out]


def add_item(sessions: sessionmaker[Session], olap: Olap | None, *, project_id: str, queue_id: str,
             data: CreateItemRequest | Mapping[str, Any]) -> dict[str, Any]:
    req = parse_input(CreateItemRequest, data)
    return add_items(sessions, olap, project_id=project_id, queue_id=queue_id, object_type=req.objectType,
                     object_ids=[req.objectId], status=req.status)[0]


def list_items(sessions: sessionmaker[Session], *, project_id: str, queue_id: str, status: str | None = None,
               page: PageRequest | None = None) -> Page:
    """The queue's items, oldest first, optionally of one status."""
    page = page or PageRequest()
    status = parse_status(status)
    where = [Item.project_id == project_id, Item.queue_id == queue_id]
    if status:
        where.append(Item.status == status)
    with sessions() as session:
        load_queue(session, project_id, queue_id)
        total = session.scalar(select(func.count()).select_from(Item).where(*where)) or 0
        rows = session.scalars(select(Item).where(*where).order_by(Item.created_at, Item.id)
                               .offset(page.offset).limit(page.limit)).all()
        return Page([item_to_dict(i) for i in rows], page.page, page.limit, total)


def get_item(sessions: sessionmaker[Session], *, project_id: str, queue_id: str, item_id: str) -> dict[str, Any]:
    with sessions() as session:
        return item_to_dict(_load(session, project_id, queue_id, item_id))


def update_item(sessions: sessionmaker[Session], *, project_id: str, queue_id: str, item_id: str,
                data: UpdateItemRequest | Mapping[str, Any], user_id: str | None = None) -> dict[str, Any]:
    req = parse_input(UpdateItemRequest, data)
    with sessions() as session, session.begin():
        item = _load(session, project_id, queue_id, item_id)
        if req.status is not None:
            _set_status(item, parse_status(req.status, allow_none=False) or "PENDING", user_id, datetime.now(UTC))
        session.flush()
        return item_to_dict(item)


def delete_item(sessions: sessionmaker[Session], *, project_id: str, queue_id: str, item_id: str) -> dict[str, Any]:
    with sessions() as session, session.begin():
        session.delete(_load(session, project_id, queue_id, item_id))
    return {"success": True, "message": "Item removed from the annotation queue"}


# ---- reviewing -------------------------------------------------------------------------------
def _free_for(user_id: str, now: datetime) -> Any:
    """Not locked by someone else (a lock older than LOCK_SECONDS has expired)."""
    return or_(Item.locked_by_user_id.is_(None), Item.locked_by_user_id == user_id,
               Item.locked_at < now - timedelta(seconds=LOCK_SECONDS))


def _review_item(session: Session, item: Item, user_id: str, now: datetime) -> ReviewItem:
    holder = item.locked_by_user_id
    other = holder if holder and holder != user_id and item.locked_at and \
        item.locked_at >= now - timedelta(seconds=LOCK_SECONDS) else None
    base = [Item.project_id == item.project_id, Item.queue_id == item.queue_id]
    before = session.scalar(select(func.count()).select_from(Item).where(
        *base, or_(Item.created_at < item.created_at, and_(Item.created_at == item.created_at, Item.id < item.id))))
    total = session.scalar(select(func.count()).select_from(Item).where(*base)) or 0
    return ReviewItem(item.id, item.queue_id, item.object_type, item.object_id, item.trace_id, item.status,
                      other, item.annotator_user_id, (before or 0) + 1, total)


def _try_lock(session: Session, item_id: str, user_id: str, now: datetime) -> bool:
    result = session.execute(update(Item).where(Item.id == item_id, Item.status == "PENDING", _free_for(user_id, now))
                             .values(locked_by_user_id=user_id, locked_at=now).execution_options(
                                 synchronize_session=False))
    return result.rowcount == 1


def open_item(sessions: sessionmaker[Session], *, project_id: str, queue_id: str, item_id: str,
              user_id: str, lock: bool = True) -> ReviewItem:
    """The item for the review screen; a pending item free for the user is locked to them."""
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        item = _load(session, project_id, queue_id, item_id)
        if lock and item.status == "PENDING":
            _try_lock(session, item.id, user_id, now)
            session.refresh(item)
        return _review_item(session, item, user_id, now)


def next_item(sessions: sessionmaker[Session], *, project_id: str, queue_id: str, user_id: str,
              after_item_id: str | None = None) -> ReviewItem | None:
    """The next pending item nobody else holds, after `after_item_id` in queue order (wrapping round
    to the start, the current item last), locked to the user. None when there is nothing left."""
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        load_queue(session, project_id, queue_id)
        base = [Item.project_id == project_id, Item.queue_id == queue_id, Item.status == "PENDING",
                _free_for(user_id, now)]
        passes: list[list[Any]] = [[]]
        if after_item_id:
            cur = _load(session, project_id, queue_id, after_item_id)
            later = or_(Item.created_at > cur.created_at, and_(Item.created_at == cur.created_at, Item.id > cur.id))
            passes = [[later], [~later, Item.id != cur.id], [Item.id == cur.id]]
        for extra in passes:
            candidates = session.scalars(select(Item.id).where(*base, *extra).order_by(Item.created_at, Item.id)
                                         .limit(20)).all()
            for candidate in candidates:
                if _try_lock(session, candidate, user_id, now):
                    return _review_item(session, session.get(Item, candidate, populate_existing=True), user_id, now)
    return None


def previous_item(sessions: sessionmaker[Session], *, project_id: str, queue_id: str, user_id: str,
                  before_item_id: str) -> ReviewItem | None:
    """The item before `before_item_id` (any status, to revisit it) that nobody else holds."""
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        cur = _load(session, project_id, queue_id, before_item_id)
        earlier = or_(Item.created_at < cur.created_at, and_(Item.created_at == cur.created_at, Item.id < cur.id))
        found = session.scalars(select(Item).where(Item.project_id == project_id, Item.queue_id == queue_id, earlier,
                                                   or_(Item.status == "COMPLETED", _free_for(user_id, now)))
                                .order_by(Item.created_at.desc(), Item.id.desc()).limit(1)).first()
        if found is None:
            return None
        if found.status == "PENDING":
            _try_lock(session, found.id, user_id, now)
            session.refresh(found)
        return _review_item(session, found, user_id, now)


def release_item(sessions: sessionmaker[Session], *, project_id: str, queue_id: str, item_id: str,
                 user_id: str) -> None:
    """Give up the user's lock on an item (skipping it)."""
    with sessions() as session, session.begin():
        session.execute(update(Item).where(Item.project_id == project_id, Item.queue_id == queue_id,
                                           Item.id == item_id, Item.locked_by_user_id == user_id)
                        .values(locked_by_user_id=None, locked_at=None).execution_options(synchronize_session=False))


def complete_item(sessions: sessionmaker[Session], *, project_id: str, queue_id: str, item_id: str,
                  user_id: str) -> None:
    """Mark the item completed by the user; refused while another reviewer holds it."""
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        item = _load(session, project_id, queue_id, item_id)
        if _review_item(session, item, user_id, now).locked_by:
            raise Conflict("Another reviewer is working on this item")
        _set_status(item, "COMPLETED", user_id, now)


def check_not_held(sessions: sessionmaker[Session], *, project_id: str, queue_id: str, item_id: str,
                   user_id: str) -> ReviewItem:
    """The item, or Conflict when another reviewer holds it (before writing scores for it)."""
    item = open_item(sessions, project_id=project_id, queue_id=queue_id, item_id=item_id, user_id=user_id)
    if item.locked_by:
        raise Conflict("Another reviewer is working on this item")
    return item


# ---- progress --------------------------------------------------------------------------------
def queue_counts(sessions: sessionmaker[Session], *, project_id: str) -> dict[str, dict[str, int]]:
    """Per queue of the project: pending and completed item counts."""
    out: dict[str, dict[str, int]] = {}
    with sessions() as session:
        rows = session.execute(select(Item.queue_id, Item.status, func.count()).where(Item.project_id == project_id)
                               .group_by(Item.queue_id, Item.status)).all()
    for queue_id, status, n in rows:
        out.setdefault(queue_id, {"PENDING": 0, "COMPLETED": 0})[status] = n
    return out


def reviewer_counts(sessions: sessionmaker[Session], *, project_id: str, queue_id: str) -> dict[str, dict[str, int]]:
    """Per reviewer of one queue: items completed, and pending items they hold now ("in review")."""
    now = datetime.now(UTC)
    base = [Item.project_id == project_id, Item.queue_id == queue_id]
    with sessions() as session:
        done = session.execute(select(Item.annotator_user_id, func.count()).where(
            *base, Item.status == "COMPLETED", Item.annotator_user_id.is_not(None))
            .group_by(Item.annotator_user_id)).all()
        held = session.execute(select(Item.locked_by_user_id, func.count()).where(
            *base, Item.status == "PENDING", Item.locked_by_user_id.is_not(None),
            Item.locked_at >= now - timedelta(seconds=LOCK_SECONDS)).group_by(Item.locked_by_user_id)).all()
    out: dict[str, dict[str, int]] = {}
    for user_id, n in done:
        out.setdefault(user_id, {"completed": 0, "in_review": 0})["completed"] = n
    for user_id, n in held:
        out.setdefault(user_id, {"completed": 0, "in_review": 0})["in_review"] = n
    return out
