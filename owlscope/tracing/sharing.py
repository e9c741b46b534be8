"""Public sharing of traces and sessions (the OLTP `public_shares` table).

A trace's OLAP `public` flag is aggregated with max(): once an SDK event set it, no later event
can clear it. So the switch lives in OLTP:

- a row with `shared` true: readable by anyone with the link;
- a row with `shared` false: an explicit revoke, which also overrides a trace the SDK marked public;
- no row: a trace is public exactly when the SDK said so; a session never is.

A trace that is part of a shared session is readable through that session's link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from owlscope.errors import InvalidRequest
from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.ui_models import PublicShare, ShareObjectType

KINDS = tuple(k.value for k in ShareObjectType)


@dataclass(frozen=True)
class ShareState:
    public: bool
    source: str | None  # "owlscope" (switched on here), "sdk" (the trace's public flag) or None
    revoked: bool = False  # switched off here although the SDK marked the trace public


def _kind(value: str) -> ShareObjectType:
    try:
        return ShareObjectType(value.upper())
    except ValueError:
        raise InvalidRequest(f"Only {' and '.join(KINDS).lower()}s can be shared, not {value!r}") from None


def share_row(sessions: sessionmaker[Session], *, project_id: str, kind: str, object_id: str) -> bool | None:
    """The stored switch: True (shared), False (explicitly not shared) or None (never switched)."""
    with sessions() as session:
        return session.scalar(select(PublicShare.shared).where(
            PublicShare.project_id == project_id, PublicShare.object_type == _kind(kind),
            PublicShare.object_id == object_id))


def share_state(sessions: sessionmaker[Session], *, project_id: str, kind: str, object_id: str,
                sdk_public: bool = False) -> ShareState:
    """Whether the object is public, and why. `sdk_public`: the trace's OLAP public flag."""
    row = share_row(sessions, project_id=project_id, kind=kind, object_id=object_id)
    if row is True:
        return ShareState(True, "owlscope")
    if row is None and sdk_public and _kind(kind) is ShareObjectType.TRACE:
        return ShareState(True, "sdk")
    return ShareState(False, None, revoked=row is False and sdk_public)


def set_shared(sessions: sessionmaker[Session], *, project_id: str, kind: str, object_id: str, shared: bool,
               user_id: str | None) -> None:
    """Switch sharing on or off (an upsert: takes effect for the very next request)."""
    k = _kind(kind)
    if not object_id or len(object_id) > 255:
        raise InvalidRequest("The id to share must be 1 to 255 characters")
    where = (PublicShare.project_id == project_id, PublicShare.object_type == k, PublicShare.object_id == object_id)
    values: dict[str, Any] = {"shared": shared, "created_by": user_id, "created_at": utcnow()}
    for _ in range(3):
        with sessions() as session, session.begin():
            if session.execute(update(PublicShare).where(*where).values(**values)).rowcount:
                return
            try:
                with session.begin_nested():
                    session.add(PublicShare(project_id=project_id, object_type=k, object_id=object_id, **values))
                return
            except IntegrityError:  # created by a concurrent request: update it on the next round
                continue


def shared_project(sessions: sessionmaker[Session], *, kind: str, object_id: str) -> str | None:
    """The project that shared an object with this id, when exactly one did (links without a project)."""
    with sessions() as session:
        rows = session.scalars(select(PublicShare.project_id).where(
            PublicShare.object_type == _kind(kind), PublicShare.object_id == object_id,
            PublicShare.shared.is_(True)).limit(2)).all()
    return rows[0] if len(rows) == 1 else None
