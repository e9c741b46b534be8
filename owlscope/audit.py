"""The audit log: who did what and when in an organization.

The edges (UI views and API routes) call `record` where an action happens, with the `Actor`
they authenticated: a signed-in user, an API key, or the system. Where the action is an OLTP
write the entry goes in the same transaction (`record(session, ...)`); where the action lives
elsewhere (OLAP deletes, the prompt store's own transactions) `record_in(sessions, ...)` writes
it once the action has succeeded.

Append-only: this module offers no way to change or remove an entry, the ORM refuses it
(`AppendOnlyError`) and the database's triggers refuse UPDATE and DELETE (see the model).

Actions are `<resource>.<verb>` (the list below is what the filter offers); `before`/`after`
are small summaries (a role, labels, a name), never secrets or traced content.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from owlscope.storage.oltp.audit_models import AuditLogEntry
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.models import OrganizationMembership, Project

ACTIONS = (
    "auth.sign_in", "auth.sign_in_failed", "auth.sign_out",
    "api_key.created", "api_key.revoked",
    "member.invited", "member.role_changed", "member.removed", "project_member.role_changed",
    "project_member.removed", "org_api_key.created", "org_api_key.revoked",
    "project.created", "project.renamed", "project.updated", "project.deleted",
    "prompt.created", "prompt.labels_changed", "prompt.deleted",
    "evaluator.created", "evaluator.updated", "evaluator.deleted", "eval_template.created", "eval_template.deleted",
    "llm_connection.created", "llm_connection.updated", "llm_connection.deleted",
    "trace.shared", "trace.unshared", "session.shared", "session.unshared",
    "trace.deleted", "score.deleted", "user.erased", "session.erased",
    "dataset.deleted", "dataset_item.deleted", "dataset_run.deleted",
    "masking_rule.created", "masking_rule.deleted", "retention.changed", "retention.applied",
    "audit_log.exported",
)
MAX_TEXT = 512
CSV_COLUMNS = ("created_at", "action", "actor_type", "actor_id", "actor_name", "project_id", "resource_type",
               "resource_id", "before", "after", "ip", "user_agent")


@dataclass(frozen=True)
class Actor:
    """Who acts: `kind` is "user", "api_key", "system" or "anonymous" (a failed sign-in); `name`
    is the email or public key at the time."""

    kind: str
    id: str | None = None
    name: str | None = None
    ip: str | None = None
    user_agent: str | None = None


SYSTEM = Actor("system", name="system")


def user_actor(user_id: str, email: str | None, *, ip: str | None = None, user_agent: str | None = None) -> Actor:
    return Actor("user", user_id, email, ip, user_agent)


def key_actor(key_id: str, public_key: str, *, ip: str | None = None, user_agent: str | None = None) -> Actor:
    return Actor("api_key", key_id, public_key, ip, user_agent)


def anonymous_actor(name: str | None, *, ip: str | None = None, user_agent: str | None = None) -> Actor:
    return Actor("anonymous", None, name or None, ip, user_agent)


def _clip(value: str | None, limit: int = MAX_TEXT) -> str | None:
    return value[:limit] if value else None


def record(
    session: Session, actor: Actor, action: str, *, org_id: str | None, resource_type: str,
    resource_id: str | None = None, project_id: str | None = None, before: Any = None, after: Any = None,
) -> None:
    """Add one entry to the caller's transaction (it is written when that transaction commits)."""
    session.add(AuditLogEntry(
        org_id=org_id, project_id=project_id, actor_type=actor.kind, actor_id=actor.id,
        actor_name=_clip(actor.name, 320), action=action, resource_type=resource_type,
        resource_id=_clip(resource_id), before=before, after=after, ip=_clip(actor.ip, 64),
        user_agent=_clip(actor.user_agent),
    ))


def record_in(
    sessions: sessionmaker[Session], actor: Actor, action: str, *, project_id: str, resource_type: str,
    resource_id: str | None = None, before: Any = None, after: Any = None, org_id: str | None = None,
) -> None:
    """An entry for a project's action that was not an OLTP write of ours, in its own transaction."""
    with write_transaction(sessions) as session:
        if org_id is None:
            org_id = session.scalar(select(Project.org_id).where(Project.id == project_id))
        record(session, actor, action, org_id=org_id, project_id=project_id, resource_type=resource_type,
               resource_id=resource_id, before=before, after=after)


def record_for_user(
    session: Session, actor: Actor, action: str, *, user_id: str | None, after: Any = None,
) -> None:
    """An account event (sign-in, sign-out): one entry in each organization of the user, so each
    organization's owners see it; a user in none (or unknown: a failed sign-in) gets one entry
    without an organization."""
    org_ids = list(session.scalars(select(OrganizationMembership.org_id).where(
        OrganizationMembership.user_id == user_id))) if user_id else []
    for org_id in org_ids or [None]:
        record(session, actor, action, org_id=org_id, resource_type="user", resource_id=user_id, after=after)


def pick(shape: Any, *keys: str) -> dict[str, Any] | None:
    """A summary of a dict (or an object's attributes) for `before`/`after`: only `keys`."""
    if shape is None:
        return None
    get = shape.get if isinstance(shape, dict) else (lambda k: getattr(shape, k, None))
    return {k: get(k) for k in keys}


# ---- reading ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditFilters:
    """`action` is an exact action or a category (`api_key`: every `api_key.*`); `actor` matches
    an actor id or part of an actor's email / public key; times are inclusive bounds."""

    action: str = ""
    actor: str = ""
    project_id: str = ""
    since: datetime | None = None
    until: datetime | None = None


def _query(org_id: str, f: AuditFilters) -> Select[tuple[AuditLogEntry]]:
    q = select(AuditLogEntry).where(AuditLogEntry.org_id == org_id)
    if f.action:
        q = q.where(AuditLogEntry.action == f.action if "." in f.action
                    else AuditLogEntry.action.startswith(f.action + ".", autoescape=True))
    if f.actor:
        q = q.where(or_(AuditLogEntry.actor_id == f.actor,
                        func.lower(AuditLogEntry.actor_name).contains(f.actor.lower(), autoescape=True)))
    if f.project_id:
        q = q.where(AuditLogEntry.project_id == f.project_id)
    if f.since is not None:
        q = q.where(AuditLogEntry.created_at >= f.since)
    if f.until is not None:
        q = q.where(AuditLogEntry.created_at <= f.until)
    return q


def list_entries(
    session: Session, *, org_id: str, filters: AuditFilters, page: int = 1, per_page: int = 50,
) -> tuple[list[AuditLogEntry], int]:
    """One page of an organization's entries, newest first, and how many match in all."""
    q = _query(org_id, filters)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(q.order_by(AuditLogEntry.created_at.desc(), AuditLogEntry.id.desc())
                           .offset((max(page, 1) - 1) * per_page).limit(per_page))
    return list(rows), total


def iter_entries(
    sessions: sessionmaker[Session], *, org_id: str, filters: AuditFilters, batch: int = 2000,
) -> Iterator[Any]:
    """Every matching entry (as a row with the entry's attributes), newest first, read in batches
    by key, each in its own short read (rows, not ORM objects: about twice as fast)."""
    last: tuple[datetime, str] | None = None
    columns = AuditLogEntry.__table__.c
    while True:
        q = _query(org_id, filters).with_only_columns(*columns)
        if last is not None:
            q = q.where(or_(AuditLogEntry.created_at < last[0],
                            and_(AuditLogEntry.created_at == last[0], AuditLogEntry.id < last[1])))
        with sessions() as session:
            rows = list(session.execute(q.order_by(AuditLogEntry.created_at.desc(), AuditLogEntry.id.desc())
                                        .limit(batch)))
        yield from rows
        if len(rows) < batch:
            return
        last = (rows[-1].created_at, rows[-1].id)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    text = str(value)
    # A spreadsheet would run a cell that starts like a formula: ids and names come from users.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(entries: Iterator[Any]) -> Iterator[str]:
    """CSV text, a header and then one line per entry (for a streamed download)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow([_cell(getattr(entry, c)) for c in CSV_COLUMNS])
        if buf.tell() > 32_768:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
