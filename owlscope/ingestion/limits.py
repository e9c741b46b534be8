"""Bounds every mapped value must satisfy before it is stored. Pure (no I/O).

A single out-of-range value must never make an insert fail (that would hold back every blob
inserted with it) nor make a stored record unreadable. `clamp_rows` is applied to the rows of
every blob after mapping:

- usage counts are capped at `MAX_USAGE` (2^53 - 1, exact in every JSON reader), so a sum of
  counts over many observations stays far below the UInt64 columns' range;
- costs that are not finite are dropped;
- timestamps outside the OLAP DateTime64 range (1900-01-01 .. 2299-12-31) are clamped to it;
- JSON values nested deeper than `MAX_JSON_DEPTH` keep their first levels as JSON and store each
  deeper part as one JSON text string, so every reader (orjson writes at most 254 levels) can
  serialise them with room for its own envelope.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson

from .rows import Rows

MAX_USAGE = 2**53 - 1
MAX_JSON_DEPTH = 100
MIN_TIME = datetime(1900, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2299, 12, 31, 23, 59, 59, tzinfo=UTC)

_ORJSON_MAX_DEPTH = 254
_OBSERVATION_JSON = ("input", "output", "metadata", "model_parameters")
_TRACE_JSON = ("input", "output", "metadata", "root_input", "root_output")
_OBSERVATION_TIMES = ("event_ts", "start_time", "end_time", "completion_start_time")
_TRACE_TIMES = ("event_ts", "timestamp")
_SCORE_TIMES = ("event_ts", "timestamp")


def clamp_rows(rows: Rows) -> Rows:
    """Bring every value of `rows` into the stored ranges (in place); returns `rows`, with
    `text_chars` set to the length of their JSON text fields."""
    chars = 0
    for obs in rows.observations:
        if obs.usage_details:
            obs.usage_details = clamp_usage(obs.usage_details)
        if obs.cost_details:
            obs.cost_details = {k: v for k, v in obs.cost_details.items() if math.isfinite(v)} or None
        _clamp_times(obs, _OBSERVATION_TIMES)
        chars += _cap_json_fields(obs, _OBSERVATION_JSON)
    for trace in rows.traces:
        _clamp_times(trace, _TRACE_TIMES)
        chars += _cap_json_fields(trace, _TRACE_JSON)
    for score in rows.scores:
        _clamp_times(score, _SCORE_TIMES)
        chars += _cap_json_fields(score, ("metadata",))
        if score.value is not None and not math.isfinite(score.value):
            score.value = None
    rows.text_chars = chars
    return rows


def clamp_usage(usage: dict[str, int]) -> dict[str, int]:
    return {k: min(max(int(v), 0), MAX_USAGE) for k, v in usage.items()}


def clamp_time(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return MIN_TIME if value < MIN_TIME else MAX_TIME if value > MAX_TIME else value


def _clamp_times(row: Any, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(row, name)
        # the common case (aware and in range) is two comparisons, without a call or a write
        if value is not None and (value.tzinfo is None or not MIN_TIME <= value <= MAX_TIME):
            setattr(row, name, clamp_time(value))


def _cap_json_fields(row: Any, names: tuple[str, ...]) -> int:
    """Caps the nesting of the row's JSON text fields; returns their length (characters)."""
    chars = 0
    for name in names:
        text = getattr(row, name)
        if text is not None:
            capped = cap_json_depth(text)
            if capped is not text:
                setattr(row, name, capped)
            chars += len(capped)
    return chars


def cap_json_depth(text: str, max_depth: int = MAX_JSON_DEPTH) -> str:
    """JSON text whose nesting is at most `max_depth`; deeper parts become JSON text strings."""
    if text.count("[") + text.count("{") <= max_depth:
        return text  # cannot be that deep: the common case costs two C-level scans
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text  # not JSON (or deeper than any reader parses): readers show it as text
    if depth_at_most(value, max_depth):
        return text
    return orjson.dumps(_cap(value, max_depth)).decode()


def depth_at_most(value: Any, max_depth: int) -> bool:
    """True when `value` nests at most `max_depth` containers (checked by orjson, in C)."""
    wrapped = value
    for _ in range(_ORJSON_MAX_DEPTH - max_depth):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        return "Recursion" not in str(exc)
    return True


def _cap(value: Any, levels: int) -> Any:
    if not isinstance(value, dict | list):
        return value
    if levels == 0:
        return deep_dumps(value)
    if isinstance(value, dict):
        return {k: _cap(v, levels - 1) for k, v in value.items()}
    return [_cap(v, levels - 1) for v in value]


class _Raw(str):
    """Already-serialised JSON text on the writer's stack."""


def deep_dumps(value: Any) -> str:
    """Compact JSON text of a value of any depth (orjson and the stdlib stop near 254 / 1000
    levels): an explicit stack instead of recursion; scalars are written by orjson."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is _Raw:
            out.append(item)
        elif isinstance(item, dict):
            stack.append(_Raw("}"))
            entries = list(item.items())
            for i in range(len(entries) - 1, -1, -1):
                key, v = entries[i]
                stack.append(v)
                key_text = orjson.dumps(key if isinstance(key, str) else str(key)).decode()
                stack.append(_Raw(("," if i else "") + key_text + ":"))
            out.append("{")
        elif isinstance(item, list):
            stack.append(_Raw("]"))
            for i in range(len(item) - 1, -1, -1):
                stack.append(item[i])
                if i:
                    stack.append(_Raw(","))
            out.append("[")
        else:
            out.append(orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS).decode())
    return "".join(out)
