"""Helpers shared by the dataset modules: paging, timestamps, JSON Schema checks, run ids."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from owlscope.errors import InvalidRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
STATUSES = ("ACTIVE", "ARCHIVED")




def parse_time(value: Any, name: str) -> datetime | None:
    """An ISO-8601 timestamp parameter (naive means UTC); a bad one is a 400 naming the parameter."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise InvalidRequest(
                f"{name} must be an ISO 8601 timestamp such as 2026-01-21T14:35:42Z, not {text!r}"
            ) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def check_length(value: str | None, name: str, limit: int = 255) -> str | None:
    """Ids and names are bounded columns: longer ones are a 400, not a database error."""
    if value is not None and len(value) > limit:
        raise InvalidRequest(f"{name} must be at most {limit} characters")
    return value


def check_status(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.upper() not in STATUSES:
        raise InvalidRequest(f"status must be ACTIVE or ARCHIVED, not {value!r}")
    return value.upper()


def experiment_run_id(project_id: str, dataset_id: str, run_name: str) -> str:
    """The stable id of a dataset run, derived exactly as the SDK (v5) derives its experiment id
    (JSON array, SHA-256, first 16 hex chars), so runs created through the API and runs recorded
    from SDK spans get the same id, and run-level scores (datasetRunId) find them."""
    payload = json.dumps(["langfuse-experiment-v1", project_id, dataset_id, run_name],
                         separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def stable_id(*parts: str) -> str:
    """A deterministic id from its parts (records derived from ingested rows: replay-safe)."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:32]


# ---- JSON Schema ---------------------------------------------------------------------------------

def check_schema(schema: Any, field: str) -> Any:
    """A dataset's inputSchema/expectedOutputSchema must itself be a valid JSON Schema."""
    if schema is None:
        return None
    if not isinstance(schema, dict | bool):
        raise InvalidRequest(f"{field} must be a JSON Schema object")
    from jsonschema import exceptions as js_exceptions
    from jsonschema import validators

    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except js_exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise InvalidRequest(f"{field} is not a valid JSON Schema{f' at {where}' if where else ''}: "
                             f"{exc.message}") from exc
    return schema


def schema_errors(schema: Any, value: Any, field: str, *, limit: int = 3) -> list[str]:
    """Why `value` (an item's `field`, e.g. "input") does not match `schema`; [] when it does.
    Each message names the failing location, e.g. `input.question: 'question' is a required property`."""
    if schema is None or value is None:  # an absent value is not checked (as Langfuse does)
        return []
    from jsonschema import validators  # imported when a schema is first checked, not at startup

    cls = validators.validator_for(schema)
    errors = sorted(cls(schema).iter_errors(value), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    out = []
    for err in errors[:limit]:
        path = field + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        out.append(f"{path}: {err.message}")
    return out


def validate_item_fields(dataset: Any, input_value: Any, expected_output: Any, *, what: str = "item") -> None:
    """Raise a 400 naming the failing field when an item does not match its dataset's schemas."""
    problems = schema_errors(dataset.input_schema, input_value, "input")
    problems += schema_errors(dataset.expected_output_schema, expected_output, "expectedOutput")
    if problems:
        raise InvalidRequest(
            f"{what} does not match the JSON Schema of dataset {dataset.name!r}: " + "; ".join(problems)
        )
