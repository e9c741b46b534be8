"""Server-side revocation of browser sessions.

Sessions live in a signed cookie. Each carries a random id; signing out records the id, and a
cookie whose id is recorded (or that has none) no longer signs anyone in, even if it was copied
before the sign-out. Records older than the longest cookie lifetime are dropped.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.ui_models import RevokedSession


def new_session_id() -> str:
    return secrets.token_urlsafe(24)


def is_revoked(session: Session, session_id: str | None) -> bool:
    return not session_id or session.get(RevokedSession, session_id) is not None


def revoke(sessions: sessionmaker[Session], session_id: str | None, *, max_age_seconds: int) -> None:
    if not session_id:
        return
    with sessions() as session, session.begin():
        session.execute(delete(RevokedSession).where(
            RevokedSession.revoked_at < utcnow() - timedelta(seconds=max_age_seconds)))
        session.add(RevokedSession(id=session_id))
        try:
            session.flush()
        except IntegrityError:
            session.rollback()  # signed out twice with the same cookie
