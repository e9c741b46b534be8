"""Raw event blobs do not outlive their purpose: processed blobs are deleted after
RAW_EVENTS_RETENTION_DAYS (they are kept that long for replay), and deleting traces deletes the
raw blobs that carry them, processed or failed. A blob holds a whole request, so one that also
carries other traces goes with them: their rows are stored, only the replay copy is lost."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from owlscope.pipeline import blobs

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.retention")
PURGE_TASK = "purge_raw_events"


def blob_time(key: str) -> float | None:
    """When a blob was accepted, from its name (`<time_ns>-<uuid>.<kind>`); None if not ours."""
    stamp = key.rsplit("/", 1)[-1].split("-", 1)[0]
    return int(stamp) / 1e9 if stamp.isdigit() else None


def purge_processed(services: Services, now: float | None = None) -> int:
    """Delete processed blobs older than the retention; returns how many."""
    cutoff = (now or time.time()) - services.settings.raw_events_retention_days * 86400
    count = 0
    for info in services.blobs.list(blobs.PROCESSED):
        accepted = blob_time(info.key)
        if accepted is not None and accepted < cutoff:
            _delete(services, info.key)
            count += 1
    if count:
        log.info("deleted %d processed raw event blobs past the retention", count)
    return count


def delete_raw_events(services: Services, project_id: str, trace_ids: Iterable[str]) -> int:
    """Delete the processed and failed raw blobs of a project that mention any of `trace_ids`."""
    needles = _needles(trace_ids)
    if not needles:
        return 0
    count = 0
    for prefix in (blobs.PROCESSED, blobs.FAILED):
        for info in services.blobs.list(f"{prefix}{project_id}/"):
            try:
                env = blobs.decode(services.blobs.get(info.key))
                payload = blobs.unpack(env.payload, env.content_encoding)
            except FileNotFoundError:
                continue
            except Exception:  # noqa: BLE001 - unreadable: search the bytes as stored
                payload = services.blobs.get(info.key)
            if any(n in payload for n in needles):
                _delete(services, info.key)
                count += 1
    return count


def _needles(trace_ids: Iterable[str]) -> list[bytes]:
    """A trace id as batch JSON carries it, and as OTLP protobuf does (16 raw bytes of hex ids)."""
    out: list[bytes] = []
    for tid in trace_ids:
        if not tid:
            continue
        out.append(f'"{tid}"'.encode())
        hex_id = tid.replace("-", "")
        if len(hex_id) == 32:
            try:
                out.append(bytes.fromhex(hex_id))
            except ValueError:
                pass
    return out


def _delete(services: Services, key: str) -> None:
    try:
        services.blobs.delete(key)
    except FileNotFoundError:
        pass


def forget_raw_events(services: Services, project_id: str, trace_ids: list[str]) -> None:
    """After traces are deleted: delete their raw blobs in the background (a scan of the
    project's retained blobs)."""
    try:
        services.queue.enqueue(PURGE_TASK, project_id, list(trace_ids), check_full=False)
    except Exception:  # noqa: BLE001 - the traces are deleted; the retention purge catches up
        log.exception("cannot enqueue the deletion of raw events of %d traces", len(trace_ids))


def register(services: Services) -> None:
    def purge_raw_events(project_id: str, trace_ids: list[str]) -> None:
        delete_raw_events(services, project_id, trace_ids)

    services.queue.register(PURGE_TASK, purge_raw_events)
