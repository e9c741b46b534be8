"""Deleting media with what refers to it: a trace's media goes when no other trace or dataset item
of the project refers to the same bytes; a deleted project's media goes entirely."""

from __future__ import annotations

import logging

from sqlalchemy import delete, func, select

from owlscope.media.content import project_prefix
from owlscope.services import Services
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.media_models import Media, MediaReference

log = logging.getLogger(__name__)


def _drop(services: Services, keys: list[str]) -> None:
    for key in keys:
        try:
            services.blobs.delete(key)
        except FileNotFoundError:
            pass


def forget_traces(services: Services, project_id: str, trace_ids: list[str]) -> int:
    """Remove the traces' media references and the media nothing refers to any more; returns the
    number of media deleted. Rows go first: a blob left by a crash in between is unreachable, and
    the same bytes uploaded again simply overwrite it."""
    trace_ids = [t for t in dict.fromkeys(trace_ids) if t]
    if not trace_ids:
        return 0
    with write_transaction(services.sessions) as session:
        media_ids = set(session.scalars(select(MediaReference.media_id).where(
            MediaReference.project_id == project_id, MediaReference.trace_id.in_(trace_ids))))
        if not media_ids:
            return 0
        session.execute(delete(MediaReference).where(
            MediaReference.project_id == project_id, MediaReference.trace_id.in_(trace_ids)))
        still_used = set(session.scalars(select(MediaReference.media_id).where(
            MediaReference.project_id == project_id, MediaReference.media_id.in_(media_ids)).distinct()))
        orphans = list(session.scalars(select(Media).where(
            Media.project_id == project_id, Media.id.in_(media_ids - still_used))))
        keys = [m.blob_key for m in orphans]
        for media in orphans:
            session.delete(media)
    _drop(services, keys)
    return len(keys)


def forget_project(services: Services, project_id: str) -> int:
    """Delete every media of a project (rows and bytes, staged uploads included)."""
    with write_transaction(services.sessions) as session:
        count = session.scalar(select(func.count()).select_from(Media).where(Media.project_id == project_id)) or 0
        session.execute(delete(MediaReference).where(MediaReference.project_id == project_id))
        session.execute(delete(Media).where(Media.project_id == project_id))
    _drop(services, [info.key for info in services.blobs.list(project_prefix(project_id))])
    return int(count)
