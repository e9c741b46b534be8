"""Legacy batch ingestion (`POST /api/public/ingestion`): validation and mapping to event rows.

Two steps, so that reprocessing a stored blob gives the same rows:

1. `validate_batch(batch)` (web tier, before the blob is written): checks every event envelope and
   body against the public API contract (`IngestionEvent` and its bodies) and returns
   `(accepted, errors)`. Accepted events are normalized: ids the client left out (trace and
   observation `body.id`, score `id`) are generated here, once; score bodies are normalized by
   `scores.normalize_score_body`. Errors are `{"id", "status": 400, "message", "error"}` items
   for the 207 response.
2. `map_batch_events(events, project_id)` (worker) maps accepted events to rows. Pure. Each event
   becomes one row carrying only the fields it sets; `event_ts` is the envelope `timestamp`, so the
   engine's latest-non-null merge makes the result independent of arrival order.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from .errors import InvalidPayload
from .jsontext import value_json
from .rows import LEVELS, OBSERVATION_TYPES, ObservationEvent, Rows, TraceEvent
from .scores import format_validation_error, normalize_score_body, score_from_body
from .timeparse import parse_timestamp, parse_timestamp_or_none
from .usage import normalize_cost, normalize_usage

__all__ = [
    "EVENT_TYPES",
    "map_batch_events",
    "parse_ingestion_request",
    "validate_batch",
]

# event type -> observation type (None: taken from body.type)
OBSERVATION_CREATE_TYPES: dict[str, str | None] = {
    "span-create": "SPAN",
    "generation-create": "GENERATION",
    "event-create": "EVENT",
    "agent-create": "AGENT",
    "tool-create": "TOOL",
    "chain-create": "CHAIN",
    "retriever-create": "RETRIEVER",
    "evaluator-create": "EVALUATOR",
    "embedding-create": "EMBEDDING",
    "guardrail-create": "GUARDRAIL",
    "observation-create": None,
}
OBSERVATION_UPDATE_TYPES = ("span-update", "generation-update", "observation-update")
EVENT_TYPES = ("trace-create", "score-create", "sdk-log", *OBSERVATION_CREATE_TYPES, *OBSERVATION_UPDATE_TYPES)

# uuid5 namespace for ids derived from an event id when a body id is missing at mapping time
_ID_NAMESPACE = uuid.UUID("6f2b8f3e-1d0c-4c55-9a7e-0f4f3b0d9c21")

Number = StrictInt | StrictFloat


# --- request bodies (OpenAPI: TraceBody, CreateSpanBody, UpdateGenerationBody, ...) ------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


def _check_datetime(v: Any) -> Any:
    if v is None:
        return v
    try:
        parse_timestamp(v)
    except (ValueError, OverflowError):
        raise ValueError(f"invalid datetime {v!r} (expected ISO 8601, e.g. 2025-01-01T12:00:00.000Z)") from None
    return v


DateTimeStr = StrictStr | Number


class TraceBody(_Body):
    id: StrictStr | None = None
    timestamp: DateTimeStr | None = None
    name: StrictStr | None = None
    userId: StrictStr | None = None
    input: Any = None
    output: Any = None
    sessionId: StrictStr | None = None
    release: StrictStr | None = None
    version: StrictStr | None = None
    metadata: Any = None
    tags: list[StrictStr] | None = None
    environment: StrictStr | None = None
    public: StrictBool | None = None

    check_timestamp = field_validator("timestamp")(_check_datetime)


class OptionalObservationBody(_Body):
    traceId: StrictStr | None = None
    name: StrictStr | None = None
    startTime: DateTimeStr | None = None
    metadata: Any = None
    input: Any = None
    output: Any = None
    level: StrictStr | None = None
    statusMessage: StrictStr | None = None
    parentObservationId: StrictStr | None = None
    version: StrictStr | None = None
    environment: StrictStr | None = None

    check_timestamp = field_validator("startTime")(_check_datetime)

    @field_validator("level")
    @classmethod
    def _level(cls, v: str | None) -> str | None:
        if v is not None and v.upper() not in LEVELS:
            raise ValueError(f"must be one of {', '.join(LEVELS)}")
        return v


class CreateEventBody(OptionalObservationBody):
    id: StrictStr | None = None


class UpdateEventBody(OptionalObservationBody):
    id: StrictStr


class _EndTime(_Body):
    endTime: DateTimeStr | None = None

    check_end_time = field_validator("endTime")(_check_datetime)


class CreateSpanBody(CreateEventBody, _EndTime):
    pass


class UpdateSpanBody(UpdateEventBody, _EndTime):
    pass


class Usage(_Body):
    """Legacy usage (`Usage` or `OpenAIUsage`): all fields optional, as the SDKs send them."""

    input: Number | None = None
    output: Number | None = None
    total: Number | None = None
    unit: StrictStr | None = None
    inputCost: Number | None = None
    outputCost: Number | None = None
    totalCost: Number | None = None
    promptTokens: Number | None = None
    completionTokens: Number | None = None
    totalTokens: Number | None = None


class _GenerationFields(_Body):
    completionStartTime: DateTimeStr | None = None
    model: StrictStr | None = None
    modelParameters: dict[str, Any] | None = None
    usage: Usage | None = None
    usageDetails: dict[str, Any] | None = None
    costDetails: dict[str, Number | None] | None = None
    promptName: StrictStr | None = None
    promptVersion: StrictInt | None = None

    check_completion_start_time = field_validator("completionStartTime")(_check_datetime)


class CreateGenerationBody(CreateSpanBody, _GenerationFields):
    pass


class UpdateGenerationBody(UpdateSpanBody, _GenerationFields):
    pass


class ObservationBody(CreateSpanBody, _GenerationFields):
    """Legacy observation-create / observation-update body: the type is in the body."""

    type: Literal[OBSERVATION_TYPES]  # type: ignore[valid-type]

    @field_validator("type", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v


class SDKLogBody(_Body):
    log: Any


class BaseEvent(_Body):
    id: StrictStr
    timestamp: DateTimeStr
    type: StrictStr
    body: dict[str, Any]
    metadata: Any = None

    check_timestamp = field_validator("timestamp")(_check_datetime)

    @field_validator("id")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        return v


BODY_MODELS: dict[str, type[BaseModel]] = {
    "trace-create": TraceBody,
    "span-create": CreateSpanBody,
    "span-update": UpdateSpanBody,
    "generation-create": CreateGenerationBody,
    "generation-update": UpdateGenerationBody,
    "event-create": CreateEventBody,
    "agent-create": CreateGenerationBody,
    "tool-create": CreateGenerationBody,
    "chain-create": CreateGenerationBody,
    "retriever-create": CreateGenerationBody,
    "evaluator-create": CreateGenerationBody,
    "embedding-create": CreateGenerationBody,
    "guardrail-create": CreateGenerationBody,
    "observation-create": ObservationBody,
    "observation-update": ObservationBody,
    "sdk-log": SDKLogBody,
}


# --- validation (web tier) -----------------------------------------------------------------------


def parse_ingestion_request(payload: Any) -> tuple[list[Any], Any]:
    """Check the request envelope `{"batch": [...], "metadata"?}`; return (batch, metadata)."""
    if not isinstance(payload, Mapping):
        raise InvalidPayload("request body must be a JSON object with a 'batch' array")
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise InvalidPayload("'batch' must be an array of ingestion events")
    return batch, payload.get("metadata")


def _error(event_id: Any, message: str) -> dict[str, Any]:
    return {"id": event_id if isinstance(event_id, str) and event_id else "unknown",
            "status": 400, "message": message, "error": "InvalidRequestError"}


def validate_batch(batch: list) -> tuple[list[dict], list[dict]]:
    """Validate batch events. Returns (accepted events, normalized; per-event 400 errors).

    Accepted events keep the envelope (`id`, `type`, `timestamp`, `body`, `metadata`); missing
    trace/observation/score ids are generated here so the stored blob maps deterministically.
    """
    accepted: list[dict] = []
    errors: list[dict] = []
    for index, raw in enumerate(batch):
        event_id = raw.get("id") if isinstance(raw, Mapping) else None
        try:
            accepted.append(_validate_event(raw, index))
        except InvalidPayload as exc:
            errors.append(_error(event_id, exc.message))
    return accepted, errors


def _validate_event(raw: Any, index: int) -> dict:
    if not isinstance(raw, Mapping):
        raise InvalidPayload(f"Invalid request data: batch[{index}] must be an object")
    etype = raw.get("type")
    if not isinstance(etype, str) or (etype not in BODY_MODELS and etype != "score-create"):
        known = ", ".join(EVENT_TYPES)
        raise InvalidPayload(f"Invalid request data: unknown event type {etype!r} (expected one of: {known})")
    try:
        envelope = BaseEvent.model_validate(raw)
    except ValidationError as exc:
        raise InvalidPayload(f"Invalid request data: {format_validation_error(exc)}") from None

    body = dict(envelope.body)
    if etype == "score-create":
        try:
            body = normalize_score_body(body, now=parse_timestamp(envelope.timestamp))
        except InvalidPayload as exc:
            raise InvalidPayload(f"Invalid request data: body: {exc.message}") from None
    else:
        model = BODY_MODELS[etype]
        try:
            model.model_validate(body)
        except ValidationError as exc:
            raise InvalidPayload(f"Invalid request data: {format_validation_error(exc, 'body')}") from None
        if etype in OBSERVATION_CREATE_TYPES or etype in OBSERVATION_UPDATE_TYPES:
            if not body.get("traceId"):
                raise InvalidPayload(
                    f"Invalid request data: body.traceId is required: every {etype} event must name "
                    "the trace it belongs to"
                )
            if not body.get("id"):
                if etype in OBSERVATION_UPDATE_TYPES:
                    raise InvalidPayload(f"Invalid request data: body.id is required for {etype}")
                body["id"] = str(uuid.uuid4())
        elif etype == "trace-create" and not body.get("id"):
            body["id"] = str(uuid.uuid4())

    event = {"id": envelope.id, "type": etype, "timestamp": envelope.timestamp, "body": body}
    if envelope.metadata is not None:
        event["metadata"] = envelope.metadata
    return event


# --- mapping (worker) ----------------------------------------------------------------------------


def map_batch_events(events: list[dict], project_id: str) -> Rows:
    """Map accepted (validated) batch events to rows. Pure and deterministic.

    trace-create -> TraceEvent; *-create / *-update -> ObservationEvent with only the fields the event
    carries; score-create -> ScoreEvent; sdk-log -> nothing. Events that cannot be mapped (which
    validate_batch would have rejected) are skipped.
    """
    rows = Rows()
    for event in events:
        if not isinstance(event, Mapping):
            continue
        etype = event.get("type")
        body = event.get("body")
        if not isinstance(body, Mapping) or etype == "sdk-log":
            continue
        event_ts = parse_timestamp_or_none(event.get("timestamp"))
        if event_ts is None:
            continue
        if etype == "trace-create":
            rows.traces.append(_trace_row(body, project_id, event_ts, str(event.get("id", ""))))
        elif etype == "score-create":
            try:
                rows.scores.append(score_from_body(_score_body(body, event), project_id, event_ts=event_ts))
            except (KeyError, ValueError, TypeError, InvalidPayload):
                continue
        elif etype in OBSERVATION_CREATE_TYPES or etype in OBSERVATION_UPDATE_TYPES:
            row = _observation_row(etype, body, project_id, event_ts, str(event.get("id", "")))
            if row is not None:
                rows.observations.append(row)
    return rows


def _derived_id(event_id: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, event_id))


def _score_body(body: Mapping[str, Any], event: Mapping[str, Any]) -> Mapping[str, Any]:
    if body.get("id") and body.get("dataType") and body.get("timestamp"):
        return body  # normalized by validate_batch
    b = dict(body)
    b.setdefault("id", _derived_id(str(event.get("id", ""))))
    b.setdefault("timestamp", event.get("timestamp"))
    return b


def _str_or_none(v: Any) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else str(v)


def _metadata_text(v: Any) -> str | None:
    """Metadata as JSON object text; a non-object value is kept under "metadata"."""
    if v is None:
        return None
    if not isinstance(v, Mapping):
        v = {"metadata": v}
    return value_json(v)


def _trace_row(body: Mapping[str, Any], project_id: str, event_ts: datetime, event_id: str) -> TraceEvent:
    tags = body.get("tags")
    public = body.get("public")
    return TraceEvent(
        project_id=project_id,
        id=_str_or_none(body.get("id")) or _derived_id(event_id),
        event_ts=event_ts,
        timestamp=parse_timestamp_or_none(body.get("timestamp")) or event_ts,
        name=_str_or_none(body.get("name")),
        user_id=_str_or_none(body.get("userId")),
        session_id=_str_or_none(body.get("sessionId")),
        release=_str_or_none(body.get("release")),
        version=_str_or_none(body.get("version")),
        # trace-create doubles as "update trace" in the legacy SDKs: no default here, or a later
        # update without environment would override the real one (read as "default" when unset)
        environment=_str_or_none(body.get("environment")),
        public=public if isinstance(public, bool) else None,
        tags=[t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
        metadata=_metadata_text(body.get("metadata")),
        input=value_json(body.get("input")),
        output=value_json(body.get("output")),
    )


def _observation_row(etype: str, body: Mapping[str, Any], project_id: str, event_ts: datetime,
                     event_id: str) -> ObservationEvent | None:
    trace_id = _str_or_none(body.get("traceId"))
    if not trace_id:
        return None
    is_create = etype.endswith("-create")
    if etype in ("observation-create", "observation-update"):
        otype = body.get("type")
        otype = otype.upper() if isinstance(otype, str) and otype.upper() in OBSERVATION_TYPES else None
    else:
        # updates leave the type alone: a span-update may update any span-like observation
        otype = OBSERVATION_CREATE_TYPES.get(etype) if is_create else None

    level = body.get("level")
    level = level.upper() if isinstance(level, str) and level.upper() in LEVELS else None

    start_time = parse_timestamp_or_none(body.get("startTime"))
    if start_time is None and is_create:
        start_time = event_ts

    usage, cost = _usage_and_cost(body)
    model_parameters = body.get("modelParameters")
    prompt_version = body.get("promptVersion")

    return ObservationEvent(
        project_id=project_id,
        id=_str_or_none(body.get("id")) or _derived_id(event_id),
        trace_id=trace_id,
        event_ts=event_ts,
        type=otype,
        name=_str_or_none(body.get("name")),
        parent_observation_id=_str_or_none(body.get("parentObservationId")),
        start_time=start_time,
        end_time=parse_timestamp_or_none(body.get("endTime")),
        completion_start_time=parse_timestamp_or_none(body.get("completionStartTime")),
        level=level,
        status_message=_str_or_none(body.get("statusMessage")),
        version=_str_or_none(body.get("version")),
        environment=_str_or_none(body.get("environment")) or ("default" if is_create else None),
        input=value_json(body.get("input")),
        output=value_json(body.get("output")),
        metadata=_metadata_text(body.get("metadata")),
        model=_str_or_none(body.get("model")),
        model_parameters=value_json(model_parameters) if isinstance(model_parameters, Mapping) and model_parameters else None,
        usage_details=usage,
        cost_details=cost,
        provided_cost=True if cost else None,
        prompt_id=None,
        prompt_name=_str_or_none(body.get("promptName")),
        prompt_version=prompt_version if type(prompt_version) is int and 0 <= prompt_version < 2**32 else None,
    )


def _usage_and_cost(body: Mapping[str, Any]) -> tuple[dict[str, int] | None, dict[str, float] | None]:
    """usageDetails/costDetails win over the legacy `usage` object (input/output/total + *Cost)."""
    usage = None
    details = body.get("usageDetails")
    if isinstance(details, Mapping):
        usage = normalize_usage(details)
    legacy = body.get("usage")
    if usage is None and isinstance(legacy, Mapping):
        usage = normalize_usage({k: v for k, v in legacy.items()
                                 if k not in ("unit", "inputCost", "outputCost", "totalCost")})
    cost = None
    cost_details = body.get("costDetails")
    if isinstance(cost_details, Mapping):
        cost = normalize_cost(cost_details)
    if cost is None and isinstance(legacy, Mapping):
        cost = normalize_cost({k: legacy[k] for k in ("inputCost", "outputCost", "totalCost") if k in legacy})
    return usage, cost
