"""Build real OTLP protobuf requests from the decoded spans in the SDK wire captures.

The captures (tests/fixtures/sdk-wire/*.jsonl) hold one HTTP request per line; OTLP requests carry
`otlp_spans`: each span flattened with its `scope` and `resource`, attributes as
`{key: {"stringValue"|"intValue"|"boolValue"|"doubleValue"|"arrayValue": ...}}`.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sdk-wire"
CAPTURE_V5 = FIXTURES / "capture.jsonl"
CAPTURE_V4 = FIXTURES / "capture414.jsonl"


def load_capture(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def otlp_requests(path: Path) -> list[dict[str, Any]]:
    """The captured OTLP export requests (dicts with headers and otlp_spans)."""
    return [r for r in load_capture(path) if r.get("otlp_spans")]


def header(request: Mapping[str, Any], name: str) -> str | None:
    for k, v in request.get("headers", {}).items():
        if k.lower() == name.lower():
            return v
    return None


def any_value(v: Any) -> AnyValue:
    """A Python value or a capture-style {"stringValue": ...} dict -> AnyValue."""
    if isinstance(v, AnyValue):
        return v
    if isinstance(v, dict) and len(v) == 1:
        (kind, val), = v.items()
        if kind == "stringValue":
            return AnyValue(string_value=val)
        if kind == "intValue":
            return AnyValue(int_value=int(val))
        if kind == "boolValue":
            return AnyValue(bool_value=bool(val))
        if kind == "doubleValue":
            return AnyValue(double_value=float(val))
        if kind == "arrayValue":
            items = val["values"] if isinstance(val, dict) else val
            out = AnyValue()
            out.array_value.values.extend(any_value(x) for x in items)
            return out
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, str):
        return AnyValue(string_value=v)
    if isinstance(v, list | tuple):
        out = AnyValue()
        out.array_value.values.extend(any_value(x) for x in v)
        return out
    if isinstance(v, dict):
        out = AnyValue()
        out.kvlist_value.values.extend(KeyValue(key=k, value=any_value(x)) for k, x in v.items())
        return out
    raise TypeError(f"cannot encode {v!r}")


def key_values(attrs: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> list[KeyValue]:
    items = attrs.items() if isinstance(attrs, Mapping) else attrs
    return [KeyValue(key=k, value=any_value(v)) for k, v in items]


def span_from_capture(s: Mapping[str, Any]) -> Span:
    span = Span(
        trace_id=bytes.fromhex(s["traceId"]),
        span_id=bytes.fromhex(s["spanId"]),
        name=s["name"],
        kind=Span.SpanKind.Value(s.get("kind") or "SPAN_KIND_INTERNAL"),
        start_time_unix_nano=int(s["start"]),
        end_time_unix_nano=int(s["end"]),
    )
    if s.get("parentSpanId"):
        span.parent_span_id = bytes.fromhex(s["parentSpanId"])
    status = s.get("status") or {}
    if status:
        span.status.CopyFrom(Status(code=Status.StatusCode.Value(status.get("code", "STATUS_CODE_UNSET")),
                                    message=status.get("message", "")))
    span.attributes.extend(key_values(s.get("attributes") or {}))
    for ev in s.get("events") or []:
        e = span.events.add()
        e.name = ev["name"]
        e.time_unix_nano = int(ev.get("time", 0))
        e.attributes.extend(key_values(ev.get("attributes") or {}))
    return span


def request_from_spans(spans: Iterable[Mapping[str, Any]]) -> ExportTraceServiceRequest:
    """Group capture spans by resource and scope into one ExportTraceServiceRequest."""
    req = ExportTraceServiceRequest()
    resources: dict[str, Any] = {}
    scopes: dict[tuple[str, str], Any] = {}
    for s in spans:
        rkey = json.dumps(s.get("resource") or {}, sort_keys=True)
        rs = resources.get(rkey)
        if rs is None:
            rs = req.resource_spans.add()
            rs.resource.attributes.extend(key_values(s.get("resource") or {}))
            resources[rkey] = rs
        scope = s.get("scope") or {}
        skey = (rkey, json.dumps(scope, sort_keys=True))
        ss = scopes.get(skey)
        if ss is None:
            ss = rs.scope_spans.add()
            ss.scope.name = scope.get("name", "")
            ss.scope.version = scope.get("version", "")
            ss.scope.attributes.extend(
                KeyValue(key=a["key"], value=any_value(a["value"])) for a in scope.get("attributes") or []
            )
            scopes[skey] = ss
        ss.spans.append(span_from_capture(s))
    return req


def gzip_body(req: ExportTraceServiceRequest) -> bytes:
    return gzip.compress(req.SerializeToString())


def make_span(name: str, *, trace_id: str = "0af7651916cd43dd8448eb211c80319c", span_id: str = "b7ad6b7169203331",
              parent_id: str | None = None, start_ns: int = 1_700_000_000_000_000_000,
              end_ns: int | None = 1_700_000_001_000_000_000, attributes: Mapping[str, Any] | None = None,
              status_code: int = 0, status_message: str = "",
              events: list[tuple[str, Mapping[str, Any]]] | None = None) -> Span:
    span = Span(trace_id=bytes.fromhex(trace_id), span_id=bytes.fromhex(span_id), name=name,
                kind=Span.SpanKind.SPAN_KIND_INTERNAL, start_time_unix_nano=start_ns,
                end_time_unix_nano=end_ns or 0)
    if parent_id:
        span.parent_span_id = bytes.fromhex(parent_id)
    if status_code or status_message:
        span.status.code = status_code
        span.status.message = status_message
    span.attributes.extend(key_values(attributes or {}))
    for ev_name, ev_attrs in events or []:
        e = span.events.add()
        e.name = ev_name
        e.attributes.extend(key_values(ev_attrs))
    return span


def make_request(spans: Iterable[Span], *, scope_name: str = "my-instrumentation", scope_version: str = "1.0.0",
                 resource: Mapping[str, Any] | None = None) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(key_values(resource or {"service.name": "svc"}))
    ss = rs.scope_spans.add()
    ss.scope.name = scope_name
    ss.scope.version = scope_version
    ss.spans.extend(spans)
    return req
