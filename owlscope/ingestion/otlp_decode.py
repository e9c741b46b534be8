"""OTLP/HTTP trace request decoding: protobuf or OTLP/JSON bodies, gzip/deflate/zstd. Pure (no I/O).

`decode_otlp` turns the HTTP body into an `ExportTraceServiceRequest` and rejects malformed input
(bad compression, bad protobuf/JSON, invalid trace/span ids) with `InvalidPayload`, whose message
is meant for the client. Mapping to rows lives in `otel.py`.
"""

from __future__ import annotations

import base64
import zlib

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .errors import InvalidPayload, PayloadLimit

__all__ = ["DEFAULT_MAX_DECOMPRESSED", "DEFAULT_MAX_SPANS", "ExportTraceServiceRequest", "decode_otlp"]

DEFAULT_MAX_DECOMPRESSED = 64 * 1024 * 1024
# Spans (plus resource and scope entries) per request. The OTel batch processors export 512 spans
# at a time; a protobuf body of empty entries decodes to millions of objects (2 bytes each).
DEFAULT_MAX_SPANS = 50_000

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def decode_otlp(body: bytes, content_type: str | None, content_encoding: str | None, *,
                max_size: int = DEFAULT_MAX_DECOMPRESSED,
                max_spans: int = DEFAULT_MAX_SPANS) -> ExportTraceServiceRequest:
    """Decode an OTLP/HTTP trace export body. Raises InvalidPayload with a client-facing message.

    `content_type`: `application/x-protobuf` (also `application/protobuf`, empty) or
    `application/json` (OTLP/JSON: hex trace/span ids, as the spec and the JS exporters send).
    `content_encoding`: none/identity, gzip, deflate or zstd (a gzip body without the header is
    recognised by its magic bytes). The decompressed size is capped at `max_size` and the number
    of resource, scope and span entries at `max_spans`, both checked before anything is decoded
    into objects (PayloadLimit, an HTTP 413).
    """
    data = _decompress(bytes(body), content_encoding, max_size)
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    if ct == "application/json" or ct.endswith("+json"):
        req = _parse_otlp_json(data, max_spans)
    elif ct in ("", "application/x-protobuf", "application/protobuf", "application/octet-stream",
                "application/vnd.google.protobuf"):
        _check_wire_entries(data, max_spans)
        req = ExportTraceServiceRequest()
        try:
            req.ParseFromString(data)
        except (DecodeError, ValueError, RuntimeError) as exc:
            raise InvalidPayload(f"invalid OTLP protobuf body: {exc}") from None
    else:
        raise InvalidPayload(
            f"unsupported content type {content_type!r}: send application/x-protobuf or application/json"
        )
    _validate_ids(req)
    return req


def _decompress(data: bytes, content_encoding: str | None, max_size: int) -> bytes:
    encodings = [e.strip().lower() for e in (content_encoding or "").split(",") if e.strip()]
    if not encodings and data[:2] == b"\x1f\x8b":
        encodings = ["gzip"]
    for enc in reversed(encodings):  # applied in the listed order, so undone in reverse
        if enc == "identity":
            continue
        if enc in ("gzip", "x-gzip"):
            data = _inflate(data, 16 + zlib.MAX_WBITS, max_size, "gzip")
        elif enc == "deflate":
            try:
                data = _inflate(data, zlib.MAX_WBITS, max_size, "deflate")
            except InvalidPayload:
                data = _inflate(data, -zlib.MAX_WBITS, max_size, "deflate")  # raw deflate
        elif enc == "zstd":
            data = _unzstd(data, max_size)
        else:
            raise InvalidPayload(f"unsupported content encoding {enc!r}: use gzip, deflate or zstd")
    if len(data) > max_size:
        raise PayloadLimit(f"decompressed body larger than the limit of {max_size} bytes")
    return data


def _inflate(data: bytes, wbits: int, max_size: int, name: str) -> bytes:
    out = bytearray()
    while True:
        d = zlib.decompressobj(wbits)
        try:
            out += d.decompress(data, max_size + 1 - len(out))
        except zlib.error as exc:
            raise InvalidPayload(f"invalid {name} body: {exc}") from None
        if len(out) > max_size or d.unconsumed_tail:
            raise PayloadLimit(f"decompressed body larger than the limit of {max_size} bytes")
        if not d.eof:
            raise InvalidPayload(f"invalid {name} body: truncated")
        data = d.unused_data
        if not data or wbits < 16 or data[:2] != b"\x1f\x8b":  # only gzip may have more members
            return bytes(out)


def _unzstd(data: bytes, max_size: int) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+
    except ImportError:
        try:
            from backports import zstd  # type: ignore[import-not-found,no-redef]
        except ImportError:
            raise InvalidPayload("unsupported content encoding 'zstd': use gzip or deflate") from None
    try:
        out = zstd.ZstdDecompressor().decompress(data, max_length=max_size + 1)
    except Exception as exc:  # noqa: BLE001 - the library's error type differs between versions
        raise InvalidPayload(f"invalid zstd body: {exc}") from None
    if len(out) > max_size:
        raise PayloadLimit(f"decompressed body larger than the limit of {max_size} bytes")
    return out


def _parse_otlp_json(data: bytes, max_spans: int) -> ExportTraceServiceRequest:
    try:
        obj = _loads(data)
    except _JSONDecodeError as exc:
        raise InvalidPayload(f"invalid JSON body: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidPayload("OTLP JSON body must be an object with resourceSpans")
    entries = 0
    for rs in _list(obj, "resourceSpans", "resource_spans"):
        entries += 1
        for ss in _list(rs, "scopeSpans", "scope_spans") if isinstance(rs, dict) else ():
            entries += 1 + (len(_list(ss, "spans")) if isinstance(ss, dict) else 0)
    if entries > max_spans:
        raise _too_many(max_spans)
    _hex_ids_to_base64(obj)
    req = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(obj, req, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise InvalidPayload(f"invalid OTLP JSON body: {exc}") from None
    return req


def _hex_ids_to_base64(obj: dict) -> None:
    """OTLP/JSON encodes trace/span ids as hex; protobuf's JSON mapping expects base64 for bytes."""
    for rs in _list(obj, "resourceSpans", "resource_spans"):
        if not isinstance(rs, dict):
            continue
        for ss in _list(rs, "scopeSpans", "scope_spans"):
            if not isinstance(ss, dict):
                continue
            for span in _list(ss, "spans"):
                if not isinstance(span, dict):
                    continue
                _fix_id(span, 16, "traceId", "trace_id")
                _fix_id(span, 8, "spanId", "span_id")
                _fix_id(span, 8, "parentSpanId", "parent_span_id")
                for link in _list(span, "links"):
                    if isinstance(link, dict):
                        _fix_id(link, 16, "traceId", "trace_id")
                        _fix_id(link, 8, "spanId", "span_id")


def _list(d: dict, *keys: str) -> list:
    for k in keys:
        v = d.get(k)
        if isinstance(v, list):
            return v
    return []


def _fix_id(d: dict, nbytes: int, *keys: str) -> None:
    for k in keys:
        v = d.get(k)
        if isinstance(v, str) and len(v) == 2 * nbytes:
            try:
                d[k] = base64.b64encode(bytes.fromhex(v)).decode()
            except ValueError:
                pass  # not hex: leave it for the base64 decoder (some exporters send base64)


def _validate_ids(req: ExportTraceServiceRequest) -> None:
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                if len(span.trace_id) != 16 or not any(span.trace_id):
                    raise InvalidPayload(f"span {span.name!r}: traceId must be 16 bytes and not all zero")
                if len(span.span_id) != 8 or not any(span.span_id):
                    raise InvalidPayload(f"span {span.name!r}: spanId must be 8 bytes and not all zero")
                if span.parent_span_id and len(span.parent_span_id) != 8:
                    raise InvalidPayload(f"span {span.name!r}: parentSpanId must be 8 bytes")


def _too_many(max_spans: int) -> PayloadLimit:
    return PayloadLimit(f"too many spans in one request: the limit is {max_spans} spans (with their resource "
                        "and scope entries); export in smaller batches")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise InvalidPayload("invalid OTLP protobuf body: truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _entries(data: bytes, start: int, end: int, field: int) -> list[tuple[int, int]]:
    """(start, end) of each length-delimited `field` in data[start:end]; other fields skipped."""
    out, pos = [], start
    while pos < end:
        key, pos = _varint(data, pos)
        wire = key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            n, pos = _varint(data, pos)
            if key >> 3 == field:
                out.append((pos, pos + n))
            pos += n
        else:
            raise InvalidPayload(f"invalid OTLP protobuf body: unexpected wire type {wire}")
    if pos != end:
        raise InvalidPayload("invalid OTLP protobuf body: truncated message")
    return out


def _check_wire_entries(data: bytes, max_spans: int) -> None:
    """Count resource, scope and span entries on the wire, stopping at the limit: a bomb of empty
    entries is refused in milliseconds, before protobuf builds an object for each."""
    count = 0
    pos, end = 0, len(data)
    while pos < end:  # top level, one ResourceSpans (field 1) at a time
        key, pos = _varint(data, pos)
        if key & 7 != 2:
            return  # not the shape of an export request: the protobuf parser reports it
        n, pos = _varint(data, pos)
        if key >> 3 == 1:
            count += 1
            for ss_start, ss_end in _entries(data, pos, min(pos + n, end), 2):  # ScopeSpans
                count += 1 + len(_entries(data, ss_start, ss_end, 2))  # Span
                if count > max_spans:
                    raise _too_many(max_spans)
            if count > max_spans:
                raise _too_many(max_spans)
        pos += n
