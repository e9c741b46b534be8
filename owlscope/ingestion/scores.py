"""Scores: validation/normalization of score bodies (web tier) and mapping to ScoreEvent rows (worker).

Two steps, so that reprocessing a stored blob is deterministic:

1. `normalize_score_body(body)` runs in the web tier before the blob is written: it validates the
   body (the `ScoreBody` / `CreateScoreRequest` contract) and fills what the client left out and
   must not be invented twice: `id` (uuid4), `timestamp` (now) and `dataType` (inferred from the value).
   It raises `InvalidPayload` with a message meant for the client.
2. `score_from_body(body, project_id, event_ts=...)` is pure: the same normalized body always gives
   the same `ScoreEvent`.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from .errors import InvalidPayload
from .jsontext import value_json
from .rows import ScoreEvent
from .timeparse import isoformat_z, parse_timestamp

SCORE_DATA_TYPES = ("NUMERIC", "CATEGORICAL", "BOOLEAN", "TEXT", "CORRECTION")
SCORE_SOURCES = ("API", "EVAL", "ANNOTATION")
TEXT_SCORE_MAX_LEN = 500
ENVIRONMENT_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # as the UI's environment filter accepts


class ScoreBody(BaseModel):
    """`ScoreBody` / `CreateScoreRequest` of the public API (types only; rules are checked below)."""

    model_config = ConfigDict(extra="allow")

    id: StrictStr | None = None
    traceId: StrictStr | None = None
    sessionId: StrictStr | None = None
    observationId: StrictStr | None = None
    datasetRunId: StrictStr | None = None
    name: StrictStr
    value: StrictBool | StrictInt | StrictFloat | StrictStr | None = None
    stringValue: StrictStr | None = None
    comment: StrictStr | None = None
    metadata: Any = None
    environment: StrictStr | None = None
    queueId: StrictStr | None = None
    dataType: StrictStr | None = None
    configId: StrictStr | None = None
    source: StrictStr | None = None
    authorUserId: StrictStr | None = None
    timestamp: StrictStr | StrictInt | StrictFloat | None = None


_UNION_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none", "bytes"})


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One readable clause per field: `body.name: Field required; body.value: ...`.

    Union branches that pydantic reports separately (`value.int`, `value.float`) are folded into one
    clause for the field.
    """
    by_loc: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        parts = [str(p) for p in (prefix, *err.get("loc", ())) if p != ""]
        parts = [p for p in parts if p not in _UNION_TAGS and "[" not in p]
        loc = ".".join(parts)
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        msgs = by_loc.setdefault(loc, [])
        if msg not in msgs:
            msgs.append(msg)
    return "; ".join(f"{loc}: {' or '.join(m)}" if loc else " or ".join(m) for loc, m in by_loc.items())


def normalize_score_body(body: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """Validate a score body and fill id/timestamp/dataType. Returns a new dict with known keys only.

    Rules (Langfuse's): `name` and `value` are required; `dataType` (case-insensitive) is one of
    NUMERIC, CATEGORICAL, BOOLEAN, TEXT, CORRECTION and, when absent, inferred from the value
    (number -> NUMERIC, string -> CATEGORICAL, true/false -> BOOLEAN); NUMERIC needs a finite number;
    BOOLEAN needs 0 or 1 (or true/false); CATEGORICAL takes a string (a number is accepted too; a
    number with `stringValue`, the label of a score config's category, keeps both);
    TEXT and CORRECTION take a string (TEXT: 1-500 characters). A score refers to a trace, a session
    or a dataset run; an observation id needs a trace id.
    """
    if not isinstance(body, Mapping):
        raise InvalidPayload("score body must be a JSON object")
    try:
        m = ScoreBody.model_validate(body)
    except ValidationError as exc:
        raise InvalidPayload(f"Invalid score: {format_validation_error(exc)}") from None

    if not m.name.strip():
        raise InvalidPayload("Invalid score: name must not be empty")
    value = m.value
    if value is None:
        raise InvalidPayload("Invalid score: value is required")

    data_type = m.dataType.upper() if m.dataType else None
    if data_type is not None and data_type not in SCORE_DATA_TYPES:
        raise InvalidPayload(
            f"Invalid score: dataType must be one of {', '.join(SCORE_DATA_TYPES)} (got {m.dataType!r})"
        )
    if data_type is None:
        if isinstance(value, bool):
            data_type = "BOOLEAN"
        elif isinstance(value, str):
            data_type = "CATEGORICAL"
        else:
            data_type = "NUMERIC"

    if data_type == "NUMERIC":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidPayload(f"Invalid score: a NUMERIC score needs a numeric value (got {value!r})")
    elif data_type == "BOOLEAN":
        if isinstance(value, bool):
            value = 1 if value else 0
        elif not isinstance(value, int | float) or value not in (0, 1):
            raise InvalidPayload(f"Invalid score: a BOOLEAN score needs the value 0 or 1 (got {value!r})")
    elif data_type == "CATEGORICAL":
        if isinstance(value, bool):
            raise InvalidPayload("Invalid score: a CATEGORICAL score needs a string value")
    else:  # TEXT, CORRECTION
        if not isinstance(value, str):
            raise InvalidPayload(f"Invalid score: a {data_type} score needs a string value (got {value!r})")
        if data_type == "TEXT" and not (1 <= len(value) <= TEXT_SCORE_MAX_LEN):
            raise InvalidPayload(
                f"Invalid score: a TEXT score value must be 1-{TEXT_SCORE_MAX_LEN} characters (got {len(value)})"
            )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidPayload("Invalid score: value must be a finite number")

    if m.environment is not None and not ENVIRONMENT_RE.match(m.environment):
        raise InvalidPayload(f"Invalid score: environment must be 1-64 letters, digits, '.', '_' or '-' "
                             f"(got {m.environment[:80]!r})")
    if not (m.traceId or m.sessionId or m.datasetRunId):
        raise InvalidPayload("Invalid score: provide traceId, sessionId or datasetRunId")
    if m.observationId and not m.traceId:
        raise InvalidPayload("Invalid score: observationId requires traceId")

    source = None
    if m.source is not None:
        source = m.source.upper()
        if source not in SCORE_SOURCES:
            raise InvalidPayload(f"Invalid score: source must be one of {', '.join(SCORE_SOURCES)}")

    if m.timestamp is None or m.timestamp == "":
        ts = now or datetime.now(UTC)
    else:
        try:
            ts = parse_timestamp(m.timestamp)
        except (ValueError, OverflowError):
            raise InvalidPayload(f"Invalid score: timestamp is not a valid datetime ({m.timestamp!r})") from None

    out: dict[str, Any] = {
        "id": m.id or str(uuid.uuid4()),
        "name": m.name,
        "value": value,
        "dataType": data_type,
        "timestamp": isoformat_z(ts),
        "environment": m.environment or "default",
    }
    for key in ("traceId", "observationId", "sessionId", "datasetRunId", "comment", "configId",
                "queueId", "authorUserId"):
        v = getattr(m, key)
        if v is not None:
            out[key] = v
    if m.metadata is not None:
        out["metadata"] = m.metadata
    if data_type == "CATEGORICAL" and m.stringValue and not isinstance(value, str):
        out["stringValue"] = m.stringValue
    if source is not None:
        out["source"] = source
    return out


def score_from_body(body: Mapping[str, Any], project_id: str, *, event_ts: datetime,
                    source: str = "API") -> ScoreEvent:
    """Map a normalized score body (see `normalize_score_body`) to a ScoreEvent. Pure.

    `source` applies unless the body names one. BOOLEAN scores get string_value "True"/"False";
    CATEGORICAL/TEXT/CORRECTION string values go to string_value (CORRECTION's value is 0).
    """
    data_type = (body.get("dataType") or "NUMERIC").upper()
    raw = body.get("value")
    value: float | None = None
    string_value: str | None = None
    if isinstance(raw, bool):
        value = 1.0 if raw else 0.0
    elif isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        string_value = raw
    if data_type == "BOOLEAN" and value is not None:
        string_value = "True" if value == 1 else "False"
    elif data_type == "CORRECTION":
        value = 0.0
    elif data_type == "CATEGORICAL" and value is not None and isinstance(body.get("stringValue"), str):
        string_value = body["stringValue"]  # a config's category: its value and its label

    ts_raw = body.get("timestamp")
    timestamp = parse_timestamp(ts_raw) if ts_raw not in (None, "") else event_ts

    metadata = body.get("metadata")
    return ScoreEvent(
        project_id=project_id,
        id=str(body["id"]),
        event_ts=event_ts,
        timestamp=timestamp,
        name=body["name"],
        data_type=data_type,
        source=(body.get("source") or source).upper(),
        value=value,
        string_value=string_value,
        trace_id=body.get("traceId"),
        observation_id=body.get("observationId"),
        session_id=body.get("sessionId"),
        dataset_run_id=body.get("datasetRunId"),
        comment=body.get("comment"),
        config_id=body.get("configId"),
        author_user_id=body.get("authorUserId"),
        queue_id=body.get("queueId"),
        environment=body.get("environment") or "default",
        metadata=value_json(metadata),
    )
