"""How accepted requests are laid out in the blob store.

`events/pending/<project>/<time>-<uuid>.<kind>` until its rows are in the OLAP store, then moved to
`events/processed/...` (raw events are kept for replay); a blob that cannot be mapped at all goes to
`events/failed/...`. A blob is a JSON header line followed by the request payload.
"""

from __future__ import annotations

import gzip
import time
import uuid
from dataclasses import dataclass

import orjson

PENDING = "events/pending/"
PROCESSED = "events/processed/"
FAILED = "events/failed/"


@dataclass(frozen=True)
class Envelope:
    kind: str  # otel | batch
    project_id: str
    received_at: float
    payload: bytes
    content_type: str | None = None
    content_encoding: str | None = None
    sdk_version: str | None = None


def new_key(project_id: str, kind: str) -> str:
    return f"{PENDING}{project_id}/{time.time_ns():020d}-{uuid.uuid4().hex}.{kind}"


def moved(key: str, prefix: str) -> str:
    return prefix + key[len(PENDING) :] if key.startswith(PENDING) else key


def encode(env: Envelope) -> bytes:
    payload, encoding = env.payload, env.content_encoding
    if not encoding and len(payload) > 512:
        payload, encoding = gzip.compress(payload, compresslevel=1), "gzip"
    header = {
        "kind": env.kind, "project_id": env.project_id, "received_at": env.received_at,
        "content_type": env.content_type, "content_encoding": encoding, "sdk_version": env.sdk_version,
    }
    return orjson.dumps(header) + b"\n" + payload


def decode(data: bytes) -> Envelope:
    """Parse a stored blob; ValueError when its header is not what `encode` writes."""
    head, _, payload = data.partition(b"\n")
    h = orjson.loads(head)
    if not isinstance(h, dict):
        raise ValueError("blob header is not an object")
    for name, types in _HEADER_TYPES.items():
        if not isinstance(h.get(name), types) or isinstance(h.get(name), bool):
            raise ValueError(f"blob header field {name!r} has the wrong type: {type(h.get(name)).__name__}")
    return Envelope(
        kind=h["kind"], project_id=h["project_id"], received_at=h["received_at"], payload=payload,
        content_type=h.get("content_type"), content_encoding=h.get("content_encoding"),
        sdk_version=h.get("sdk_version"),
    )


_HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,), "project_id": (str,), "received_at": (int, float),
    "content_type": (str, type(None)), "content_encoding": (str, type(None)), "sdk_version": (str, type(None)),
}


def with_error(data: bytes, reason: str) -> bytes:
    """The blob with `error` (why it was parked in failed/) and `failed_at` added to its header."""
    head, _, payload = data.partition(b"\n")
    try:
        header = orjson.loads(head)
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict):
        header = {"raw_header": head.decode("utf-8", "replace")[:1000]}
    header.update(error=reason[:2000], failed_at=time.time())
    return orjson.dumps(header) + b"\n" + payload


def failure(data: bytes) -> dict:
    """The header of a parked blob: `error`, `failed_at`, `kind`... (empty when unreadable)."""
    try:
        header = orjson.loads(data.partition(b"\n")[0])
    except orjson.JSONDecodeError:
        return {}
    return header if isinstance(header, dict) else {}


def unpack(payload: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(payload)
    if encoding == "deflate":
        import zlib

        return zlib.decompress(payload)
    return payload
