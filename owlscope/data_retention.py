"""Data retention per project: traces older than the project's `retention_days` are deleted with
their observations, scores and media, and the project's raw event blobs older than that go too.

Scheduled deletes, not a ClickHouse TTL: a TTL is one expression per table, while the retention is
a per-project setting that changes at runtime; and traces must go together with what lives
outside ClickHouse (media in OLTP and the blob store, raw blobs). Each worker process runs
`apply_retention` every RETENTION_INTERVAL_SECONDS (deletes are idempotent, so several workers
doing it is harmless); a trace's age is its timestamp (its earliest event).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from owlscope import audit, media
from owlscope.errors import InvalidRequest, NotFound
from owlscope.pipeline import blobs
from owlscope.pipeline.retention import blob_time, delete_raw_events, forget_raw_events
from owlscope.project_deletion import resume_project_deletions
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.models import Project
from owlscope.tracing.traces import delete_traces, delete_untraced_before, trace_ids_before, trace_ids_of

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.retention")
MAX_RETENTION_DAYS = 36_500
BATCH = 1_000
MAX_TRACES_PER_DELETE = 1_000
RETENTION_INTERVAL_SECONDS = 600.0


def start_retention_loop(services: Services) -> threading.Event:
    """A daemon thread applying retention periodically; set the returned event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(RETENTION_INTERVAL_SECONDS):
            apply_retention(services)
            try:
                resume_project_deletions(services, idle_for=timedelta(seconds=RETENTION_INTERVAL_SECONDS))
            except Exception:  # noqa: BLE001 - retried on the next round
                log.exception("cannot resume project deletions")

    threading.Thread(target=loop, name="owlscope-retention", daemon=True).start()
    return stop


def set_retention(services: Services, project_id: str, days: int | None) -> int | None:
    """Set a project's retention in days (None or 0: keep everything); returns the stored value."""
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)
                             or not 0 <= days <= MAX_RETENTION_DAYS):
        raise InvalidRequest(f"retention must be a whole number of days between 0 and {MAX_RETENTION_DAYS}")
    with write_transaction(services.sessions) as session:
        project = session.get(Project, project_id)
        if project is None or project.deleted_at is not None:
            raise NotFound("Project not found")
        project.retention_days = days or None
        return project.retention_days


def retention_days(services: Services, project_id: str) -> int | None:
    """A project's retention in days (None: keep everything)."""
    with services.sessions() as session:
        return session.scalar(select(Project.retention_days).where(Project.id == project_id))


def apply_retention(services: Services, now: float | None = None) -> dict[str, int]:
    """Delete what is past each project's retention; returns {project id: traces deleted}."""
    now = time.time() if now is None else now
    with services.sessions() as session:
        projects = session.execute(select(Project.id, Project.retention_days).where(
            Project.retention_days > 0, Project.deleted_at.is_(None))).all()
    done: dict[str, int] = {}
    for project_id, days in projects:
        try:
            done[project_id] = expire_project(services, project_id, now - days * 86400)
            if done[project_id]:
                audit.record_in(services.sessions, audit.SYSTEM, "retention.applied", project_id=project_id,
                                resource_type="project", resource_id=project_id,
                                after={"retention_days": days, "deleted_traces": done[project_id]})
        except Exception:  # noqa: BLE001 - one project's failure must not stop the others
            log.exception("retention of project %s failed", project_id)
    return done


def expire_project(services: Services, project_id: str, cutoff: float) -> int:
    """Delete a project's traces (with observations, scores and media), its scores and raw blobs
    from before `cutoff` (epoch seconds); returns how many traces."""
    at = datetime.fromtimestamp(cutoff, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    ids = trace_ids_before(services.olap, project_id, at)
    for i in range(0, len(ids), BATCH):
        chunk = ids[i : i + BATCH]
        delete_traces(services.olap, project_id, chunk)
        media.forget_traces(services, project_id, chunk)
        delete_raw_events(services, project_id, chunk)
    delete_untraced_before(services.olap, project_id, at)
    for prefix in (blobs.PROCESSED, blobs.FAILED):
        for info in services.blobs.list(f"{prefix}{project_id}/"):
            accepted = blob_time(info.key)
            if accepted is not None and accepted < cutoff:
                try:
                    services.blobs.delete(info.key)
                except FileNotFoundError:
                    pass
    if ids:
        log.info("retention: deleted %d traces of project %s", len(ids), project_id)
    return len(ids)


def delete_trace_data(services: Services, project_id: str, trace_ids: list[str]) -> None:
    """Delete traces on request (the API's DELETE /traces, the UI's "Delete selected"): their
    observations, scores and media now, their raw event blobs in the background."""
    if not trace_ids or not all(isinstance(i, str) and i for i in trace_ids):
        raise InvalidRequest("give at least one trace id")
    if len(trace_ids) > MAX_TRACES_PER_DELETE:
        raise InvalidRequest(f"At most {MAX_TRACES_PER_DELETE} trace ids per request")
    delete_traces(services.olap, project_id, trace_ids)
    media.forget_traces(services, project_id, trace_ids)
    forget_raw_events(services, project_id, trace_ids)


def erase(services: Services, project_id: str, *, user_id: str | None = None, session_id: str | None = None) -> int:
    """Delete every trace of a user or of a session (erasure requests) with their observations,
    scores, media and raw blobs, and the session's own scores; returns how many traces."""
    if bool(user_id) == bool(session_id):
        raise InvalidRequest("give either a userId or a sessionId")
    column, value = ("user_id", user_id) if user_id else ("session_id", session_id)
    params = {"p": project_id, "v": value}
    ids = trace_ids_of(services.olap, project_id, user_id=user_id, session_id=session_id)
    for i in range(0, len(ids), BATCH):
        chunk = ids[i : i + BATCH]
        delete_traces(services.olap, project_id, chunk)
        media.forget_traces(services, project_id, chunk)
        delete_raw_events(services, project_id, chunk)
    if session_id:
        services.olap.command("DELETE FROM {db}.scores WHERE project_id = {p:String} AND session_id = {v:String}",
                              params)
        delete_raw_events(services, project_id, [session_id])
    log.info("erased %d traces of %s %s in project %s", len(ids), column, value, project_id)
    return len(ids)
