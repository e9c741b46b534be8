"""Robust timestamp parsing: ISO-8601 strings (Z, offsets, quoted, nanoseconds) and epoch numbers.

Every function returns an aware datetime in UTC. Naive inputs are taken as UTC.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# fromisoformat (3.11) accepts Z, offsets and up to 6 fraction digits everywhere; longer fractions
# (nanoseconds) are accepted too but we trim them explicitly so behaviour never depends on that.
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")
_SPACE_T = re.compile(r"^(\d{4}-\d{2}-\d{2})\s+(\d)")


def from_unix_nanos(ns: int) -> datetime:
    """Epoch nanoseconds (OTLP `*_time_unix_nano`) to an aware UTC datetime (microsecond precision)."""
    return EPOCH + timedelta(microseconds=ns // 1000)


def from_epoch_number(value: float | int) -> datetime:
    """An epoch number in seconds, milliseconds, microseconds or nanoseconds (guessed by magnitude)."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite timestamp: {value!r}")
    a = abs(value)
    if a < 1e11:  # seconds (until year 5138)
        us = value * 1_000_000
    elif a < 1e14:  # milliseconds
        us = value * 1_000
    elif a < 1e17:  # microseconds
        us = value
    else:  # nanoseconds
        us = value / 1_000
    return EPOCH + timedelta(microseconds=int(us))


def parse_timestamp(value: Any) -> datetime:
    """Parse a timestamp into an aware UTC datetime; raise ValueError when it is not one.

    Accepts datetimes, ISO-8601 strings ("2025-01-01T12:00:00Z", "+02:00" offsets, a space instead of
    "T", lowercase "z", up to nanosecond fractions, a date alone), the same wrapped in JSON quotes
    ('"2025-01-01T12:00:00Z"', as the Langfuse SDK sends completion_start_time) and epoch numbers.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return from_epoch_number(value)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    s = value.strip()
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        s = s[1:-1].strip()
    if not s:
        raise ValueError("empty timestamp")
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        t = _LONG_FRACTION.sub(r"\1", s)
        t = _SPACE_T.sub(r"\1T\2", t)
        if t.endswith(("z", "Z")):
            t = t[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(t)
        except ValueError:
            if re.fullmatch(r"-?\d+(\.\d+)?", s):
                return from_epoch_number(float(s) if "." in s else int(s))
            raise ValueError(f"invalid timestamp: {value!r}") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def parse_timestamp_or_none(value: Any) -> datetime | None:
    """Like parse_timestamp, but None for None, "" and anything unparseable."""
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError):
        return None


def isoformat_z(dt: datetime) -> str:
    """UTC ISO-8601 with microseconds and a trailing Z (the form we store in blobs)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
