"""Deleting a project: at once it disappears (marked deleted, its API keys revoked); a background
job then removes everything it owned, store by store, recording its progress in
`project_deletions`:

1. blobs: raw events (pending, processed, failed), media bytes, dataset uploads, job status files:
   every key with the project id as a path segment;
2. OLAP rows: every table with a project_id column (traces, observations, scores, rollups);
3. media rows and references;
4. OLTP rows: the project row, whose foreign keys cascade to every project-owned table.

Each step is idempotent, so a job interrupted anywhere is simply run again: the worker's
retention loop re-enqueues every deletion not finished (`resume_project_deletions`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from owlscope import audit
from owlscope.accounts.orgs import delete_project
from owlscope.errors import NotFound
from owlscope.storage.oltp.admin_models import ProjectDeletion
from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.media_models import Media, MediaReference
from owlscope.storage.oltp.models import Project
from owlscope.tracing.traces import delete_project_rows

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.project_deletion")
DELETE_PROJECT_TASK = "delete_project"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


def request_project_deletion(services: Services, *, org_id: str, project_id: str,
                             actor: audit.Actor | None = None) -> ProjectDeletion:
    """Mark a live project of the organization deleted, revoke its keys and queue the job that
    removes its data; NotFound for a missing, deleted or other organization's project."""
    with write_transaction(services.sessions) as session:
        project = session.get(Project, project_id)
        if project is None or project.org_id != org_id or project.deleted_at is not None:
            raise NotFound("Project not found")
        key_ids = delete_project(session, project=project, confirm_name=project.name)
        deletion = ProjectDeletion(project_id=project.id, org_id=org_id, project_name=project.name,
                                   status=QUEUED, steps_total=len(STEPS))
        session.add(deletion)
        if actor is not None:
            audit.record(session, actor, "project.deleted", org_id=org_id, project_id=project.id,
                         resource_type="project", resource_id=project.id,
                         before={"name": project.name, "api_keys_revoked": len(key_ids)})
    for key_id in key_ids:
        services.keys.invalidate(key_id=key_id)
    services.keys.invalidate(project_id=project_id)
    _enqueue(services, deletion.id)
    return deletion


def _enqueue(services: Services, deletion_id: str) -> None:
    try:
        services.queue.enqueue(DELETE_PROJECT_TASK, deletion_id, check_full=False)
    except Exception:  # noqa: BLE001 - the row is durable: the resume sweep enqueues it again
        log.exception("cannot enqueue project deletion %s; it is retried later", deletion_id)


def _delete_blobs(services: Services, project_id: str) -> None:
    for info in list(services.blobs.list("")):
        if project_id in info.key.split("/"):
            try:
                services.blobs.delete(info.key)
            except FileNotFoundError:
                pass


def _delete_olap(services: Services, project_id: str) -> None:
    delete_project_rows(services.olap, project_id)


def _delete_media(services: Services, project_id: str) -> None:
    # The rows only: their bytes (media/<project>/...) went with the blobs step. The same as
    # owlscope.media.forget_project, which this module cannot import (the media package needs
    # the services, whose worker registers this job).
    with write_transaction(services.sessions) as session:
        session.execute(delete(MediaReference).where(MediaReference.project_id == project_id))
        session.execute(delete(Media).where(Media.project_id == project_id))


def _delete_oltp(services: Services, project_id: str) -> None:
    with write_transaction(services.sessions) as session:
        session.execute(delete(Project).where(Project.id == project_id, Project.deleted_at.is_not(None)))
    services.read_caches.environments.pop(project_id)


STEPS: tuple[tuple[str, Callable[[Services, str], None]], ...] = (
    ("blobs", _delete_blobs),
    ("analytics rows", _delete_olap),
    ("media", _delete_media),
    ("database rows", _delete_oltp),
)


def _progress(services: Services, deletion_id: str, **values: object) -> None:
    with write_transaction(services.sessions) as session:
        row = session.get(ProjectDeletion, deletion_id)
        if row is not None:
            for name, value in values.items():
                setattr(row, name, value)


def run_project_deletion(services: Services, deletion_id: str) -> str:
    """Run (or resume) one deletion; returns its final status."""
    with services.sessions() as session:
        row = session.get(ProjectDeletion, deletion_id)
        if row is None or row.status == DONE:
            return DONE if row is not None else FAILED
        project_id = row.project_id
    for done, (name, step) in enumerate(STEPS):
        _progress(services, deletion_id, status=RUNNING, step=name, steps_done=done, error=None)
        try:
            step(services, project_id)
        except Exception as exc:  # noqa: BLE001 - recorded, shown, and retried by the resume sweep
            log.exception("deleting project %s failed at %s", project_id, name)
            _progress(services, deletion_id, status=FAILED, error=f"{name}: {exc}"[:2000])
            return FAILED
    _progress(services, deletion_id, status=DONE, step=None, steps_done=len(STEPS), finished_at=utcnow())
    log.info("project %s deleted with all its data", project_id)
    return DONE


def resume_project_deletions(services: Services, *, idle_for: timedelta = timedelta(0)) -> int:
    """Queue every deletion that has not finished (after a crash, or one that failed) and has made
    no progress for `idle_for` (so a deletion running now is not started twice)."""
    with services.sessions() as session:
        ids = list(session.scalars(select(ProjectDeletion.id).where(
            ProjectDeletion.status != DONE, ProjectDeletion.updated_at <= utcnow() - idle_for)))
    for deletion_id in ids:
        _enqueue(services, deletion_id)
    return len(ids)


def org_deletions(services: Services, org_id: str, limit: int = 20) -> list[ProjectDeletion]:
    """The organization's latest project deletions, newest first (their progress, for the UI)."""
    with services.sessions() as session:
        return list(session.scalars(
            select(ProjectDeletion).where(ProjectDeletion.org_id == org_id)
            .order_by(ProjectDeletion.requested_at.desc()).limit(limit)))


def register(services: Services) -> None:
    def delete_project_job(deletion_id: str) -> None:
        run_project_deletion(services, deletion_id)

    services.queue.register(DELETE_PROJECT_TASK, delete_project_job)
