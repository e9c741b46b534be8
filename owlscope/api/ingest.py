"""Write endpoints: OTLP traces, legacy batch ingestion, scores."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from owlscope.api.deps import AuthDep, ScoreAuthDep, ServicesDep
from owlscope.api.schemas import CreateScoreResponse, IngestionResponse, OtelTraceResponse, typed
from owlscope.errors import InvalidRequest, PayloadTooLarge
from owlscope.ingestion.errors import InvalidPayload
from owlscope.ingestion.scores import normalize_score_body
from owlscope.pipeline.accept import (
    accept_batch,
    accept_events,
    accept_otlp,
    check_depth,
    unknown_score_configs,
)
from owlscope.telemetry import add_stage

router = APIRouter()


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit} (INGEST_MAX_BODY_MB)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes (INGEST_MAX_BODY_MB)")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from exc


@router.post("/api/public/otel/v1/traces", **typed(OtelTraceResponse))
async def otel_traces(request: Request, auth: AuthDep, services: ServicesDep) -> Response:
    started = time.perf_counter()
    body = await _body(request, services.settings.max_body_bytes)
    sdk_version = request.headers.get("x-langfuse-sdk-version")
    await run_in_threadpool(
        accept_otlp, services, project_id=auth.project_id, body=body,
        content_type=request.headers.get("content-type"),
        content_encoding=request.headers.get("content-encoding"), sdk_version=sdk_version,
    )
    add_stage("accept", time.perf_counter() - started)
    if (request.headers.get("content-type") or "").startswith("application/json"):
        return JSONResponse({"partialSuccess": {}})
    # An empty ExportTraceServiceResponse: all spans accepted.
    return Response(content=b"", media_type="application/x-protobuf")


@router.post("/api/public/ingestion", status_code=207, **typed(IngestionResponse))
async def ingestion(request: Request, auth: ScoreAuthDep, services: ServicesDep) -> JSONResponse:
    body = _json(await _body(request, services.settings.max_body_bytes))
    if not isinstance(body, dict) or "batch" not in body:
        raise InvalidRequest("body must be an object with a 'batch' list of events")
    batch, refused = body["batch"], []
    if auth.scores_only and isinstance(batch, list):
        # Public-key-only auth may create scores (and send SDK logs), as in Langfuse; nothing else.
        allowed = []
        for e in batch:
            if isinstance(e, dict) and e.get("type") in ("score-create", "sdk-log"):
                allowed.append(e)
            else:
                refused.append({
                    "id": e.get("id") if isinstance(e, dict) else None, "status": 403, "error": "Forbidden",
                    "message": "a public key alone may only create scores: use Basic auth with the secret key"})
        batch = allowed
    result = await run_in_threadpool(accept_batch, services, project_id=auth.project_id, batch=batch)
    return JSONResponse({"successes": result.successes, "errors": result.errors + refused}, status_code=207)


def _score_event(body: object) -> dict:
    if not isinstance(body, dict):
        raise InvalidRequest("each score must be a JSON object")
    check_depth(body, "the score")
    try:
        score = normalize_score_body(body)
    except InvalidPayload as exc:
        raise InvalidRequest(exc.message) from exc
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"id": score["id"], "type": "score-create", "timestamp": now, "body": score}


@router.post("/api/public/scores", **typed(CreateScoreResponse))
async def create_scores(request: Request, auth: ScoreAuthDep, services: ServicesDep) -> JSONResponse:
    """One score object (answered 200 with its id) or a JSON array of them (answered 202)."""
    body = _json(await _body(request, services.settings.max_body_bytes))
    many = isinstance(body, list)
    events = [_score_event(b) for b in (body if many else [body])]  # all valid, or none stored
    unknown = await run_in_threadpool(unknown_score_configs, services, auth.project_id, events)
    if unknown:
        raise InvalidRequest(f"configId {sorted(unknown)[0]!r} is not a score config of this project")
    await run_in_threadpool(accept_events, services, project_id=auth.project_id, events=events)
    if many:
        return JSONResponse({"ids": [e["id"] for e in events]}, status_code=202)
    return JSONResponse({"id": events[0]["id"]}, status_code=200)
