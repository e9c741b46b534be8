"""Rows (dicts) to CSV, JSON or JSONL bytes, streamed: a generator that holds one chunk at a time,
optionally gzip-compressed. Used by the scheduled exports and the UI's downloads."""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson

FORMATS = ("CSV", "JSON", "JSONL")
EXTENSIONS = {"CSV": "csv", "JSON": "json", "JSONL": "jsonl"}
MEDIA_TYPES = {"CSV": "text/csv", "JSON": "application/json", "JSONL": "application/x-ndjson"}
CHUNK = 256 * 1024


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value, default=str).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _csv(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    buf = io.StringIO()
    writer: csv.DictWriter | None = None
    for row in rows:
        if writer is None:
            # The columns are the first row's keys (every row of a table has the same shape).
            writer = csv.DictWriter(buf, fieldnames=list(row), extrasaction="ignore")
            writer.writeheader()
        writer.writerow({k: _cell(v) for k, v in row.items()})
        if buf.tell() >= CHUNK:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()


def _jsonl(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for row in rows:
        yield orjson.dumps(row, default=str) + b"\n"


def _json(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    yield b"["
    first = True
    for row in rows:
        yield (b"" if first else b",") + orjson.dumps(row, default=str)
        first = False
    yield b"]"


def _batched(parts: Iterable[bytes]) -> Iterator[bytes]:
    out = bytearray()
    for part in parts:
        out += part
        if len(out) >= CHUNK:
            yield bytes(out)
            out.clear()
    if out:
        yield bytes(out)


def _gzip(parts: Iterable[bytes]) -> Iterator[bytes]:
    z = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: the gzip container
    for part in parts:
        data = z.compress(part)
        if data:
            yield data
    yield z.flush()


def encode(rows: Iterable[dict[str, Any]], fmt: str, *, gzip: bool = False) -> Iterator[bytes]:
    """The rows in `fmt` (CSV, JSON, JSONL) as chunks of about CHUNK bytes."""
    parts = {"CSV": _csv, "JSON": _json, "JSONL": _jsonl}[fmt](rows)
    out = _batched(parts)
    return _gzip(out) if gzip else out


def file_name(stem: str, fmt: str, *, gzip: bool = False) -> str:
    return f"{stem}.{EXTENSIONS[fmt]}" + (".gz" if gzip else "")
