"""Blobs parked in `events/failed/`: what an admin sees of events that could not be stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from owlscope.pipeline import blobs

if TYPE_CHECKING:
    from owlscope.services import Services


@dataclass(frozen=True)
class FailedBlob:
    key: str
    kind: str
    size: int
    failed_at: datetime
    error: str


def count_failures(services: Services, project_id: str) -> int:
    return sum(1 for _ in services.blobs.list(f"{blobs.FAILED}{project_id}/"))


def list_failures(services: Services, project_id: str, limit: int = 20) -> list[FailedBlob]:
    """The latest `limit` failed blobs of a project, newest first, with the reason each was parked."""
    infos = sorted(services.blobs.list(f"{blobs.FAILED}{project_id}/"), key=lambda i: i.last_modified,
                   reverse=True)[:limit]
    out = []
    for info in infos:
        try:
            header = blobs.failure(services.blobs.get(info.key))
        except FileNotFoundError:
            continue
        out.append(FailedBlob(
            key=info.key, kind=str(header.get("kind") or info.key.rsplit(".", 1)[-1]), size=info.size,
            failed_at=info.last_modified, error=str(header.get("error") or "unknown (parked before reasons were kept)"),
        ))
    return out
