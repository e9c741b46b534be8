"""The web side of ingestion: validate, store the accepted events as ONE blob, enqueue, answer.

Accepted means durable: nothing is acknowledged before its blob is written. A full queue answers
429 and an unreachable blob store 503, both with Retry-After, which the SDKs honour.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson

from owlscope.errors import InvalidRequest, PayloadTooLarge, ServiceUnavailable, TooManyRequests
from owlscope.ingestion.batch import validate_batch
from owlscope.ingestion.errors import InvalidPayload, PayloadLimit
from owlscope.ingestion.limits import depth_at_most
from owlscope.ingestion.otel import decode_otlp, span_count
from owlscope.pipeline import blobs
from owlscope.pipeline.masking import masker_for
from owlscope.storage.blob import BlobUnavailable
from owlscope.telemetry import EVENTS_ACCEPTED, StageTimer

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.ingest")
# Deeper request values are refused: a blob is a JSON list of events (orjson writes at most 254
# levels), and what is stored is capped at ingestion.limits.MAX_JSON_DEPTH anyway.
MAX_REQUEST_DEPTH = 250
INGEST_TASK = "ingest_blob"


@dataclass
class BatchResult:
    successes: list[dict[str, Any]]
    errors: list[dict[str, Any]]


def _check_size(services: Services, body: bytes) -> None:
    if len(body) > services.settings.max_body_bytes:
        raise PayloadTooLarge(
            f"request body is {len(body)} bytes; the limit is {services.settings.max_body_bytes} "
            "(INGEST_MAX_BODY_MB)"
        )


def _check_capacity(services: Services) -> None:
    pending = services.queue.pending() + services.processor.backlog()
    if pending >= services.settings.queue_max_pending:
        raise TooManyRequests(f"ingestion queue is full ({pending} jobs pending); retry shortly", retry_after=2)


def _store_and_enqueue(services: Services, env: blobs.Envelope, decoded: Any = None, items: int = 0) -> str:
    key = blobs.new_key(env.project_id, env.kind)
    try:
        services.blobs.put(key, blobs.encode(env))
    except BlobUnavailable as exc:
        log.error("blob store unavailable: %s", exc)
        raise ServiceUnavailable("event storage is unavailable; retry shortly", retry_after=5) from exc
    if decoded is not None:
        # durable now; a worker in this process takes the decoded payload instead of the blob
        services.processor.handoff.put(key, replace(env, payload=b""), decoded, items)
    if services.processor.submit(key, items):
        return key  # this process's worker takes the job (`owlscope serve`)
    try:
        services.queue.enqueue(INGEST_TASK, key, check_full=False)
    except Exception as exc:  # noqa: BLE001 - the blob is durable; the sweeper enqueues it later
        log.warning("could not enqueue %s (%s); the sweeper will pick it up", key, exc)
    return key


def accept_otlp(
    services: Services, *, project_id: str, body: bytes, content_type: str | None,
    content_encoding: str | None, sdk_version: str | None,
) -> int:
    """Validate an OTLP export and store it; return the number of spans accepted."""
    _check_size(services, body)
    timer = StageTimer()
    try:
        request = decode_otlp(body, content_type or "application/x-protobuf", content_encoding,
                              max_spans=services.settings.otlp_max_spans)
    except PayloadLimit as exc:
        raise PayloadTooLarge(f"{exc.message} (OTLP_MAX_SPANS, INGEST_MAX_BODY_MB)") from exc
    except InvalidPayload as exc:
        raise InvalidRequest(exc.message) from exc
    spans = span_count(request)
    timer.lap("accept_decode", spans)
    if spans == 0:
        return 0
    _check_capacity(services)
    masker = masker_for(services, project_id)
    if masker is not None:
        # masked before anything is stored: the blob holds the masked request, re-encoded
        masker.otlp(request)
        body, content_type, content_encoding = request.SerializeToString(), "application/x-protobuf", None
    _store_and_enqueue(services, blobs.Envelope(
        kind="otel", project_id=project_id, received_at=time.time(), payload=body,
        content_type=content_type, content_encoding=content_encoding, sdk_version=sdk_version,
    ), request, spans)
    timer.lap("accept_store", spans)
    EVENTS_ACCEPTED.labels("otel").inc(spans)
    return spans


def accept_batch(services: Services, *, project_id: str, batch: Any) -> BatchResult:
    """Validate legacy ingestion events one by one; store the valid ones as one blob."""
    if not isinstance(batch, list):
        raise InvalidRequest("body.batch must be a list of events")
    batch, too_deep = _split_too_deep(batch)
    accepted, errors = validate_batch(batch)
    errors.extend(too_deep)
    unknown = unknown_score_configs(services, project_id, accepted)
    if unknown:
        errors.extend({"id": ev["id"], "status": 400, "error": "InvalidRequestError",
                       "message": f"Invalid request data: body.configId {ev['body']['configId']!r} is not a score "
                                  "config of this project"}
                      for ev in accepted if ev["type"] == "score-create" and ev["body"].get("configId") in unknown)
        accepted = [ev for ev in accepted
                    if not (ev["type"] == "score-create" and ev["body"].get("configId") in unknown)]
    if accepted:
        _check_capacity(services)
        _store_and_enqueue(services, blobs.Envelope(
            kind="batch", project_id=project_id, received_at=time.time(),
            payload=orjson.dumps(_masked(services, project_id, accepted)),
        ), items=len(accepted))
        EVENTS_ACCEPTED.labels("batch").inc(len(accepted))
    successes = [{"id": ev["id"], "status": 201} for ev in accepted]
    return BatchResult(successes=successes, errors=errors)


def _masked(services: Services, project_id: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    masker = masker_for(services, project_id)
    return events if masker is None else masker.events(events)


def unknown_score_configs(services: Services, project_id: str, events: list[dict[str, Any]]) -> set[str]:
    """The configIds named by score events that are not score configs of the project."""
    wanted = {ev["body"]["configId"] for ev in events
              if ev.get("type") == "score-create" and isinstance(ev["body"].get("configId"), str)}
    if not wanted:
        return set()
    from sqlalchemy import select

    from owlscope.storage.oltp.models import ScoreConfig

    with services.sessions() as session:
        found = set(session.scalars(select(ScoreConfig.id).where(
            ScoreConfig.project_id == project_id, ScoreConfig.id.in_(wanted))))
    return wanted - found


def check_depth(value: Any, what: str) -> None:
    """InvalidRequest when `value` nests deeper than MAX_REQUEST_DEPTH levels."""
    if not depth_at_most(value, MAX_REQUEST_DEPTH):
        raise InvalidRequest(f"{what} is nested deeper than {MAX_REQUEST_DEPTH} levels")


def _split_too_deep(batch: list) -> tuple[list, list[dict[str, Any]]]:
    """Events nested deeper than MAX_REQUEST_DEPTH become 400 entries of the 207 (one check of
    the whole batch first: the common case costs one serialisation in C)."""
    if depth_at_most(batch, MAX_REQUEST_DEPTH + 1):
        return batch, []
    kept, errors = [], []
    for raw in batch:
        if depth_at_most(raw, MAX_REQUEST_DEPTH):
            kept.append(raw)
            continue
        event_id = raw.get("id") if isinstance(raw, dict) else None
        errors.append({"id": event_id if isinstance(event_id, str) and event_id else "unknown", "status": 400,
                       "message": f"Invalid request data: the event is nested deeper than {MAX_REQUEST_DEPTH} levels",
                       "error": "InvalidRequestError"})
    return kept, errors


def accept_events(services: Services, *, project_id: str, events: list[dict[str, Any]]) -> None:
    """Store already-valid events produced by the server itself (scores API, evaluators)."""
    if not events:
        return
    _check_capacity(services)
    _store_and_enqueue(services, blobs.Envelope(
        kind="batch", project_id=project_id, received_at=time.time(),
        payload=orjson.dumps(_masked(services, project_id, events)),
    ), items=len(events))
    EVENTS_ACCEPTED.labels("internal").inc(len(events))
