"""OTLP/HTTP traces: decode requests and map spans to trace/observation event rows.

Pure: no I/O. `decode_otlp` turns the HTTP body into an `ExportTraceServiceRequest` (protobuf or
OTLP/JSON, gzip/deflate/zstd) and rejects malformed input with `InvalidPayload`; `map_otlp` maps
every span to one `ObservationEvent` and one `TraceEvent` (the trace-level attributes that span
carries; the engine merges the pieces of a trace).

Attribute conventions understood, in order of precedence:

- the Langfuse SDKs (Python v4/v5, JS): `langfuse.observation.*`, `langfuse.trace.*`,
  `langfuse.environment`, `langfuse.release`, `langfuse.version`, `user.id`, `session.id`,
  `langfuse.experiment.*`, `langfuse.internal.as_root`;
- OpenInference: `openinference.span.kind`, `input.value`/`output.value`, `llm.model_name`,
  `llm.invocation_parameters`, `llm.token_count.*`, `llm.input_messages.*`, `metadata`, `tag.tags`;
- OpenTelemetry GenAI semantic conventions: `gen_ai.operation.name`, `gen_ai.request.*`,
  `gen_ai.response.model`, `gen_ai.usage.*`, `gen_ai.prompt.*`/`gen_ai.completion.*`,
  `gen_ai.input.messages`/`gen_ai.output.messages`, `gen_ai.tool.*`, `gen_ai.*.message` events;
- a few others Langfuse reads (traceloop.entity.*, mlflow.span*), resource
  `deployment.environment(.name)` and `service.version`.

Metadata values: the v5 Python SDK JSON-encodes every `langfuse.*.metadata.<key>` value (`"str"`
arrives as `"\\"str\\""`), v4 sends raw values (strings as-is, other types JSON or typed). The SDK
major version comes from the `x-langfuse-sdk-version` header (`sdk_version`), else from the
instrumentation scope `langfuse-sdk`'s version; without either, values are JSON-decoded when they
parse and kept as strings otherwise.

Observation metadata also carries `resourceAttributes` and `scope` (as Langfuse does), and, for
spans not produced by a Langfuse SDK, `attributes`: the span attributes other than input/output.
"""

from __future__ import annotations

import base64
import gzip
import zlib
from collections.abc import Mapping
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .errors import InvalidPayload
from .jsontext import dumps, json_text, loads_or_none
from .rows import LEVELS, OBSERVATION_TYPES, ObservationEvent, Rows, TraceEvent
from .timeparse import EPOCH, from_unix_nanos, parse_timestamp_or_none
from .usage import normalize_cost, normalize_usage, to_amount

__all__ = [
    "ExportTraceServiceRequest",
    "decode_otlp",
    "experiment_attributes",
    "map_otlp",
    "sdk_major_version",
]

DEFAULT_MAX_DECOMPRESSED = 64 * 1024 * 1024
STATUS_CODE_ERROR = 2
LANGFUSE_SCOPE_PREFIX = "langfuse-sdk"
INCLUDE_RESOURCE_IN_METADATA = True  # Langfuse shows resourceAttributes/scope in observation metadata

# metadata value encodings
META_JSON = 1  # SDK v5+: every value JSON-encoded
META_RAW = 2  # SDK v4: raw values
META_GUESS = 3  # unknown: JSON-decode when it parses

# --- attribute names -------------------------------------------------------------------------
A_OBS_TYPE = "langfuse.observation.type"
A_OBS_INPUT = "langfuse.observation.input"
A_OBS_OUTPUT = "langfuse.observation.output"
A_OBS_LEVEL = "langfuse.observation.level"
A_OBS_STATUS = "langfuse.observation.status_message"
A_OBS_MODEL = "langfuse.observation.model.name"
A_OBS_MODEL_PARAMS = "langfuse.observation.model.parameters"
A_OBS_USAGE = "langfuse.observation.usage_details"
A_OBS_COST = "langfuse.observation.cost_details"
A_OBS_CST = "langfuse.observation.completion_start_time"
A_OBS_PROMPT_NAME = "langfuse.observation.prompt.name"
A_OBS_PROMPT_VERSION = "langfuse.observation.prompt.version"
A_OBS_METADATA = "langfuse.observation.metadata"
A_TRACE_NAME = "langfuse.trace.name"
A_TRACE_TAGS = "langfuse.trace.tags"
A_TRACE_PUBLIC = "langfuse.trace.public"
A_TRACE_METADATA = "langfuse.trace.metadata"
A_TRACE_INPUT = "langfuse.trace.input"
A_TRACE_OUTPUT = "langfuse.trace.output"
A_ENVIRONMENT = "langfuse.environment"
A_RELEASE = "langfuse.release"
A_VERSION = "langfuse.version"
A_AS_ROOT = "langfuse.internal.as_root"
A_EXPERIMENT = "langfuse.experiment."

_USER_ID_KEYS = ("langfuse.user.id", "user.id", A_OBS_METADATA + ".langfuse_user_id",
                 A_TRACE_METADATA + ".langfuse_user_id")
_SESSION_ID_KEYS = ("langfuse.session.id", "session.id", "gen_ai.conversation.id",
                    A_OBS_METADATA + ".langfuse_session_id", A_TRACE_METADATA + ".langfuse_session_id")
_TAG_KEYS = (A_TRACE_TAGS, "langfuse.tags", A_OBS_METADATA + ".langfuse_tags",
             A_TRACE_METADATA + ".langfuse_tags", "tag.tags")
_ENV_KEYS = (A_ENVIRONMENT, "deployment.environment.name", "deployment.environment")
_MODEL_KEYS = (A_OBS_MODEL, "gen_ai.response.model", "gen_ai.request.model", "llm.response.model",
               "llm.model_name", "embedding.model_name", "model")

_TYPE_BY_NAME = {t.lower(): t for t in OBSERVATION_TYPES}
_OPENINFERENCE_KINDS = {
    "LLM": "GENERATION", "CHAIN": "CHAIN", "RETRIEVER": "RETRIEVER", "EMBEDDING": "EMBEDDING",
    "AGENT": "AGENT", "TOOL": "TOOL", "GUARDRAIL": "GUARDRAIL", "EVALUATOR": "EVALUATOR",
}
_GENAI_OPERATIONS = {
    "chat": "GENERATION", "completion": "GENERATION", "text_completion": "GENERATION",
    "generate_content": "GENERATION", "generate": "GENERATION", "embeddings": "EMBEDDING",
    "invoke_agent": "AGENT", "create_agent": "AGENT", "execute_tool": "TOOL",
}

# (input key, output key) pairs tried in order when the Langfuse attributes are absent.
_IO_PAIRS = (
    ("input.value", "output.value"),  # OpenInference
    ("gen_ai.input.messages", "gen_ai.output.messages"),  # GenAI semconv (JSON string)
    ("gen_ai.prompt", "gen_ai.completion"),  # GenAI semconv, older: one JSON attribute
    ("gen_ai.tool.call.arguments", "gen_ai.tool.call.result"),
    ("traceloop.entity.input", "traceloop.entity.output"),
    ("mlflow.spanInputs", "mlflow.spanOutputs"),
)
_IO_KEYS = frozenset(
    {A_OBS_INPUT, A_OBS_OUTPUT, A_TRACE_INPUT, A_TRACE_OUTPUT}
    | {k for pair in _IO_PAIRS for k in pair}
)
_IO_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.", "llm.input_messages.", "llm.output_messages.")
_GENAI_INPUT_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                       "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}

# Keys that need a look in the per-key pass (str.startswith takes a tuple: one C call per key).
# Frequent exact keys are skipped first with a set lookup, which is cheaper than startswith.
_SCAN_SKIP = frozenset({
    A_OBS_TYPE, A_OBS_INPUT, A_OBS_OUTPUT, A_OBS_LEVEL, A_OBS_STATUS, A_OBS_MODEL, A_OBS_MODEL_PARAMS,
    A_OBS_USAGE, A_OBS_COST, A_OBS_CST, A_OBS_PROMPT_NAME, A_OBS_PROMPT_VERSION, A_OBS_METADATA,
    A_TRACE_NAME, A_TRACE_TAGS, A_TRACE_PUBLIC, A_TRACE_METADATA, A_TRACE_INPUT, A_TRACE_OUTPUT,
    A_ENVIRONMENT, A_RELEASE, A_VERSION, A_AS_ROOT, "langfuse.internal.is_app_root", "user.id",
    "session.id", "gen_ai.request.model", "gen_ai.response.model", "gen_ai.system", "gen_ai.operation.name",
})
_SCAN_PREFIXES = ("langfuse.observation.metadata.", "langfuse.trace.metadata.", "langfuse.metadata.",
                  A_EXPERIMENT, "gen_ai.", "llm.")

# gen_ai.usage.* / llm.token_count.* suffix -> where it goes in an OpenAI-shaped usage object.
_USAGE_TOTALS = {
    "input_tokens": "input", "prompt_tokens": "input", "prompt": "input",
    "output_tokens": "output", "completion_tokens": "output", "completion": "output",
    "total_tokens": "total", "total": "total",
}
_USAGE_INPUT_DETAILS = {
    "cache_read_input_tokens": "cached_tokens", "cache_read.input_tokens": "cached_tokens",
    "cache_read_tokens": "cached_tokens", "prompt_details.cache_read": "cached_tokens",
    "cache_creation_input_tokens": "cache_creation", "cache_creation.input_tokens": "cache_creation",
    "cache_write_tokens": "cache_creation", "prompt_details.cache_write": "cache_creation",
    "prompt_details.audio": "audio_tokens",
}
_USAGE_OUTPUT_DETAILS = {
    "reasoning_tokens": "reasoning_tokens", "completion_details.reasoning": "reasoning_tokens",
    "reasoning.output_tokens": "reasoning_tokens", "completion_details.audio": "audio_tokens",
}

_EXPERIMENT_FIELDS = (
    ("langfuse.experiment.id", "experiment_id"),
    ("langfuse.experiment.name", "experiment_name"),
    ("langfuse.experiment.description", "experiment_description"),
    ("langfuse.experiment.dataset.id", "dataset_id"),
    ("langfuse.experiment.item.id", "dataset_item_id"),
    ("langfuse.experiment.item.version", "dataset_item_version"),
    ("langfuse.experiment.item.root_observation_id", "root_observation_id"),
)

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


# --- decoding ------------------------------------------------------------------------------------


def decode_otlp(body: bytes, content_type: str | None, content_encoding: str | None, *,
                max_size: int = DEFAULT_MAX_DECOMPRESSED) -> ExportTraceServiceRequest:
    """Decode an OTLP/HTTP trace export body. Raises InvalidPayload with a client-facing message.

    `content_type`: `application/x-protobuf` (also `application/protobuf`, empty) or
    `application/json` (OTLP/JSON: hex trace/span ids, as the spec and the JS exporters send).
    `content_encoding`: none/identity, gzip, deflate or zstd (a gzip body without the header is
    recognised by its magic bytes). The decompressed size is capped at `max_size`.
    """
    data = _decompress(bytes(body), content_encoding, max_size)
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    if ct == "application/json" or ct.endswith("+json"):
        req = _parse_otlp_json(data)
    elif ct in ("", "application/x-protobuf", "application/protobuf", "application/octet-stream",
                "application/vnd.google.protobuf"):
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
        raise InvalidPayload(f"request body larger than {max_size} bytes")
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
            raise InvalidPayload(f"decompressed body larger than {max_size} bytes")
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
        raise InvalidPayload(f"decompressed body larger than {max_size} bytes")
    return out


def _parse_otlp_json(data: bytes) -> ExportTraceServiceRequest:
    try:
        obj = _loads(data)
    except _JSONDecodeError as exc:
        raise InvalidPayload(f"invalid JSON body: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidPayload("OTLP JSON body must be an object with resourceSpans")
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


# --- attribute values ----------------------------------------------------------------------------


def _any_value(v: Any) -> Any:
    w = v.WhichOneof("value")
    if w == "string_value":
        return v.string_value
    if w == "int_value":
        return v.int_value
    if w == "bool_value":
        return v.bool_value
    if w == "double_value":
        return v.double_value
    if w == "array_value":
        return [_any_value(x) for x in v.array_value.values]
    if w == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in v.kvlist_value.values}
    if w == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return None


def _attributes(kvs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in kvs:
        v = kv.value
        s = v.string_value  # most attributes are strings: skip WhichOneof for them
        if s:
            out[kv.key] = s
        else:
            w = v.WhichOneof("value")
            if w == "string_value":
                out[kv.key] = s
            elif w is not None:
                out[kv.key] = _any_value(v)
    return out


def sdk_major_version(version: str | None) -> int | None:
    """Major version of "5.0.4", "v4.14.3", "5" ...; None when it does not start with a number."""
    if not version:
        return None
    s = version.strip().lstrip("vV")
    digits = ""
    for ch in s:
        if ch.isdigit():
            digits += ch
        else:
            break
    return int(digits) if digits else None


def _metadata_mode(major: int | None) -> int:
    if major is None:
        return META_GUESS
    return META_JSON if major >= 5 else META_RAW


def _decode_meta(value: Any, mode: int) -> Any:
    if type(value) is not str:
        return value
    if mode == META_RAW:
        # v4 sends strings raw and JSON-encodes dicts/lists: decode only objects and arrays
        s = value.lstrip()
        if not s or s[0] not in "{[":
            return value
    try:
        return _loads(value)
    except _JSONDecodeError:
        return value


def _merge_whole(md: dict, value: Any, mode: int) -> None:
    """`*.metadata` set as a whole: an object merges key by key, anything else goes under "metadata"."""
    v = _decode_meta(value, mode)
    if isinstance(v, dict):
        md.update(v)
    elif v is not None:
        md["metadata"] = v


def _str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if type(value) is str else dumps(value)


def _truthy(value: Any) -> bool:
    return value is True or (type(value) is str and value.lower() == "true")


def _to_int(value: Any) -> int | None:
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    if type(value) is str:
        try:
            return int(value.strip().strip('"'))
        except ValueError:
            return None
    return None


def _number(value: Any) -> Any:
    """A numeric attribute that may arrive as a string ("12")."""
    if type(value) is str:
        try:
            f = float(value)
        except ValueError:
            return None
        return int(f) if f.is_integer() else f
    return value


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [t if type(t) is str else dumps(t) for t in value if t is not None and t != ""]
    if type(value) is str:
        s = value.strip()
        if s.startswith("["):
            parsed = loads_or_none(s)
            if isinstance(parsed, list):
                return [t if type(t) is str else dumps(t) for t in parsed if t is not None and t != ""]
        if "," in s:
            return [t.strip() for t in s.split(",") if t.strip()]
        return [s] if s else []
    return [dumps(value)]


def _unflatten(items: list[tuple[str, Any]]) -> Any:
    """[("0.role", "user"), ("0.content", "hi")] -> [{"role": "user", "content": "hi"}]."""
    root: dict = {}
    for path, value in items:
        parts = path.split(".")
        node = root
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = {}
                node[p] = nxt
            node = nxt
        node[parts[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v) for k, v in node.items()}


# --- mapping -------------------------------------------------------------------------------------


class _ResourceInfo:
    __slots__ = ("attributes", "environment", "release", "version", "trace_metadata")

    def __init__(self, attributes: dict[str, Any]) -> None:
        self.attributes = attributes
        self.environment = next((_str(attributes[k]) for k in _ENV_KEYS if attributes.get(k)), None)
        self.release = _str(attributes.get(A_RELEASE))
        self.version = _str(attributes.get(A_VERSION)) or _str(attributes.get("service.version"))
        md: dict[str, Any] = {}
        if A_TRACE_METADATA in attributes:
            _merge_whole(md, attributes[A_TRACE_METADATA], META_GUESS)
        n = len(A_TRACE_METADATA) + 1
        for k, v in attributes.items():
            if k.startswith("langfuse.trace.metadata."):
                md[k[n:]] = _decode_meta(v, META_GUESS)
        self.trace_metadata = md


def map_otlp(req: ExportTraceServiceRequest, project_id: str, sdk_version: str | None = None) -> Rows:
    """Map every span of an export request to an ObservationEvent and a TraceEvent. Pure.

    `sdk_version`: the `x-langfuse-sdk-version` header, used to decode metadata values (v5 JSON-encodes
    them). Deterministic: the same request always gives the same rows (event_ts = span end time).
    """
    rows = Rows()
    header_major = sdk_major_version(sdk_version)
    for rs in req.resource_spans:
        resource = _ResourceInfo(_attributes(rs.resource.attributes))
        for ss in rs.scope_spans:
            scope = ss.scope
            is_langfuse = scope.name.startswith(LANGFUSE_SCOPE_PREFIX)
            major = header_major
            if major is None and is_langfuse:
                major = sdk_major_version(scope.version)
            mode = _metadata_mode(major)
            scope_info: dict[str, Any] = {"name": scope.name, "version": scope.version,
                                          "attributes": _attributes(scope.attributes)}
            for span in ss.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    continue  # decode_otlp rejects these; be defensive for requests built elsewhere
                _map_span(span, project_id, resource, scope_info, is_langfuse, mode, rows)
    return rows


def _map_span(span: Span, project_id: str, resource: _ResourceInfo, scope_info: dict[str, Any],
              is_langfuse: bool, mode: int, rows: Rows) -> None:
    attrs = _attributes(span.attributes)
    get = attrs.get

    trace_id = span.trace_id.hex()
    span_id = span.span_id.hex()
    parent_id = span.parent_span_id.hex() if span.parent_span_id else None
    is_root = parent_id is None or _truthy(get(A_AS_ROOT))
    if is_root:
        parent_id = None

    start_ns = span.start_time_unix_nano
    end_ns = span.end_time_unix_nano
    start = from_unix_nanos(start_ns) if start_ns else None
    end = from_unix_nanos(end_ns) if end_ns else None
    if start is None:
        start = end
    event_ts = end or start or EPOCH

    # --- one pass over the keys that need prefix handling ---------------------------------------
    obs_md_items: list[tuple[str, Any]] | None = None
    trace_md_items: list[tuple[str, Any]] | None = None
    request_params: dict[str, Any] | None = None
    usage_items: list[tuple[str, Any]] | None = None
    io_items: dict[str, list[tuple[str, Any]]] | None = None
    has_experiment = False
    for k in attrs:
        if k in _SCAN_SKIP or not k.startswith(_SCAN_PREFIXES):
            continue
        c = k[0]
        if c == "l":
            if k.startswith("langfuse.observation.metadata."):
                (obs_md_items := obs_md_items or []).append((k[30:], attrs[k]))
            elif k.startswith("langfuse.trace.metadata."):
                (trace_md_items := trace_md_items or []).append((k[24:], attrs[k]))
            elif k.startswith("langfuse.metadata."):
                (obs_md_items := obs_md_items or []).append((k[18:], attrs[k]))
            elif k.startswith(A_EXPERIMENT):
                has_experiment = True
            elif k.startswith("llm.token_count."):
                (usage_items := usage_items or []).append((k[16:], attrs[k]))
            elif k.startswith(("llm.input_messages.", "llm.output_messages.")):
                io_items = io_items or {}
                kind, _, rest = k.partition(".")[2].partition(".")
                io_items.setdefault(kind, []).append((rest, attrs[k]))
        elif k.startswith("gen_ai.request."):
            if k != "gen_ai.request.model":
                (request_params := request_params or {})[k[15:]] = attrs[k]
        elif k.startswith("gen_ai.usage."):
            (usage_items := usage_items or []).append((k[13:], attrs[k]))
        elif k.startswith(("gen_ai.prompt.", "gen_ai.completion.")):
            io_items = io_items or {}
            kind, _, rest = k.partition(".")[2].partition(".")
            io_items.setdefault(kind, []).append((rest, attrs[k]))

    # --- observation ------------------------------------------------------------------------------
    otype = None
    t = get(A_OBS_TYPE)
    if type(t) is str:
        otype = _TYPE_BY_NAME.get(t.lower())
    if otype is None:
        otype = _infer_type(attrs, usage_items is not None)

    name = span.name
    tool_name = get("gen_ai.tool.name")
    if tool_name:
        name = _str(tool_name) or name

    level = None
    lv = get(A_OBS_LEVEL)
    if type(lv) is str:
        level = lv.upper()
        if level not in LEVELS:
            level = None
    status_code = span.status.code
    if level is None:
        level = "ERROR" if status_code == STATUS_CODE_ERROR else "DEFAULT"
    status_message = _str(get(A_OBS_STATUS)) or span.status.message or None
    if status_message is None and status_code == STATUS_CODE_ERROR:
        status_message = _exception_message(span)

    environment = None
    for k in _ENV_KEYS:
        v = get(k)
        if v:
            environment = _str(v)
            break
    environment = environment or resource.environment or "default"
    version = _str(get(A_VERSION)) or resource.version
    release = _str(get(A_RELEASE)) or resource.release

    inp = get(A_OBS_INPUT)
    out = get(A_OBS_OUTPUT)
    if inp is None and out is None:
        inp, out = _fallback_io(attrs, io_items, span)
    input_text = json_text(inp)
    output_text = json_text(out)

    model = None
    for k in _MODEL_KEYS:
        v = get(k)
        if v:
            model = _str(v)
            break

    model_parameters = _json_object_text(get(A_OBS_MODEL_PARAMS))
    if model_parameters is None:
        model_parameters = _json_object_text(get("llm.invocation_parameters"))
    if model_parameters is None and request_params:
        model_parameters = dumps(request_params)

    usage = None
    raw_usage = get(A_OBS_USAGE)
    if raw_usage is not None:
        parsed = loads_or_none(raw_usage) if type(raw_usage) is str else raw_usage
        if isinstance(parsed, Mapping):
            usage = normalize_usage(parsed)
    if usage is None and usage_items:
        usage = normalize_usage(_otel_usage(usage_items))

    cost = None
    raw_cost = get(A_OBS_COST)
    if raw_cost is not None:
        parsed = loads_or_none(raw_cost) if type(raw_cost) is str else raw_cost
        if isinstance(parsed, Mapping):
            cost = normalize_cost(parsed)
    if cost is None:
        c = to_amount(_number(get("gen_ai.usage.cost")))
        if c is not None:
            cost = {"total": c}

    prompt_name = _str(get(A_OBS_PROMPT_NAME) or get("langfuse.prompt.name"))
    pv = get(A_OBS_PROMPT_VERSION)
    prompt_version = _to_int(pv if pv is not None else get("langfuse.prompt.version"))

    # metadata
    user_md: dict[str, Any] = {}
    whole = get(A_OBS_METADATA)
    if whole is None:
        whole = get("langfuse.metadata")
    if whole is not None:
        _merge_whole(user_md, whole, mode)
    if obs_md_items:
        for key, v in obs_md_items:
            user_md[key] = _decode_meta(v, mode)
    oi_md = get("metadata")  # OpenInference: one JSON object attribute
    if oi_md is not None and not is_langfuse:
        parsed = _decode_meta(oi_md, META_GUESS)
        if isinstance(parsed, dict):
            for key, v in parsed.items():
                user_md.setdefault(key, v)
        else:
            user_md.setdefault("metadata", parsed)
    obs_md = dict(user_md)
    if has_experiment:
        exp = _experiment_from_attrs(attrs, mode)
        if exp:
            obs_md.setdefault("experiment", exp)
    filtered = None
    if not is_langfuse:
        filtered = {k: (v if type(v) is str else dumps(v)) for k, v in attrs.items()
                    if k not in _IO_KEYS and not k.startswith(_IO_PREFIXES)}
        obs_md["attributes"] = filtered
    if INCLUDE_RESOURCE_IN_METADATA:
        if resource.attributes:
            obs_md["resourceAttributes"] = resource.attributes
        obs_md["scope"] = scope_info

    rows.observations.append(ObservationEvent(
        project_id=project_id,
        id=span_id,
        trace_id=trace_id,
        event_ts=event_ts,
        type=otype,
        name=name,
        parent_observation_id=parent_id,
        start_time=start,
        end_time=end,
        completion_start_time=parse_timestamp_or_none(get(A_OBS_CST)),
        level=level,
        status_message=status_message,
        version=version,
        environment=environment,
        input=input_text,
        output=output_text,
        metadata=dumps(obs_md) if obs_md else None,
        model=model,
        model_parameters=model_parameters,
        usage_details=usage,
        cost_details=cost,
        provided_cost=True if cost else None,
        prompt_id=None,
        prompt_name=prompt_name,
        prompt_version=prompt_version,
    ))

    # --- trace piece ------------------------------------------------------------------------------
    user_id = None
    for k in _USER_ID_KEYS:
        v = get(k)
        if v:
            user_id = _str(_decode_meta(v, mode) if "metadata" in k else v)
            break
    session_id = None
    for k in _SESSION_ID_KEYS:
        v = get(k)
        if v:
            session_id = _str(_decode_meta(v, mode) if "metadata" in k else v)
            break
    tags: list[str] = []
    for k in _TAG_KEYS:
        v = get(k)
        if v:
            tags = _tags(_decode_meta(v, mode) if "metadata" in k else v)
            break
    pub = get(A_TRACE_PUBLIC)
    if pub is None:
        pub = get("langfuse.public")
    public = None if pub is None else _truthy(pub)

    trace_metadata = None
    if is_root or trace_md_items or A_TRACE_METADATA in attrs or resource.trace_metadata:
        tmd: dict[str, Any] = dict(resource.trace_metadata)
        if A_TRACE_METADATA in attrs:
            _merge_whole(tmd, attrs[A_TRACE_METADATA], mode)
        if trace_md_items:
            for key, v in trace_md_items:
                tmd[key] = _decode_meta(v, mode)
        if is_root:
            for key, v in user_md.items():
                tmd.setdefault(key, v)
            if filtered is not None:
                tmd["attributes"] = filtered
        if INCLUDE_RESOURCE_IN_METADATA:
            if resource.attributes:
                tmd["resourceAttributes"] = resource.attributes
            tmd["scope"] = scope_info
        trace_metadata = dumps(tmd)

    rows.traces.append(TraceEvent(
        project_id=project_id,
        id=trace_id,
        event_ts=event_ts,
        timestamp=start,
        name=_str(get(A_TRACE_NAME)),
        root_name=span.name if is_root else None,
        user_id=user_id,
        session_id=session_id,
        release=release,
        version=version,
        environment=environment,
        public=public,
        bookmarked=None,
        tags=tags,
        metadata=trace_metadata,
        input=json_text(get(A_TRACE_INPUT)),
        output=json_text(get(A_TRACE_OUTPUT)),
        root_input=input_text if is_root else None,
        root_output=output_text if is_root else None,
    ))


def _infer_type(attrs: dict[str, Any], has_usage: bool) -> str:
    kind = attrs.get("openinference.span.kind")
    if type(kind) is str:
        t = _OPENINFERENCE_KINDS.get(kind.upper())
        if t:
            return t
    op = attrs.get("gen_ai.operation.name")
    if type(op) is str:
        t = _GENAI_OPERATIONS.get(op.lower())
        if t:
            return t
    if attrs.get("gen_ai.tool.name") or attrs.get("gen_ai.tool.call.id"):
        return "TOOL"
    for k in _MODEL_KEYS:
        if attrs.get(k):
            return "GENERATION"
    if has_usage:
        return "GENERATION"
    return "SPAN"


def _json_object_text(value: Any) -> str | None:
    """JSON object text for model parameters given as a JSON string or a kvlist; None if empty/invalid."""
    if value is None:
        return None
    if type(value) is str:
        parsed = loads_or_none(value)
        if isinstance(parsed, dict) and parsed:
            return value
        return None
    if isinstance(value, dict) and value:
        return dumps(value)
    return None


def _otel_usage(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """gen_ai.usage.* / llm.token_count.* suffixes -> an OpenAI-shaped usage object for normalize_usage.

    Cache and audio counts are breakdowns of the input tokens (GenAI semconv, OpenInference), the
    reasoning count of the output tokens, so they go into *_tokens_details and are subtracted.
    """
    raw: dict[str, Any] = {}
    in_details: dict[str, Any] = {}
    out_details: dict[str, Any] = {}
    for suffix, value in items:
        if suffix == "cost":
            continue
        v = _number(value)
        if v is None:
            continue
        target = _USAGE_TOTALS.get(suffix)
        if target is not None:
            raw.setdefault(target, v)
        elif suffix in _USAGE_INPUT_DETAILS:
            in_details[_USAGE_INPUT_DETAILS[suffix]] = v
        elif suffix in _USAGE_OUTPUT_DETAILS:
            out_details[_USAGE_OUTPUT_DETAILS[suffix]] = v
        elif "." not in suffix:
            raw.setdefault(suffix, v)
        # other dotted keys (e.g. pydantic-ai's gen_ai.usage.details.*) repeat the counts above
    if in_details:
        raw["prompt_tokens_details"] = in_details
    if out_details:
        raw["completion_tokens_details"] = out_details
    return raw


def _fallback_io(attrs: dict[str, Any], io_items: dict[str, list[tuple[str, Any]]] | None,
                 span: Span) -> tuple[Any, Any]:
    get = attrs.get
    for ik, ok in _IO_PAIRS:
        i, o = get(ik), get(ok)
        if i is not None or o is not None:
            if ik == "input.value":
                if type(i) is str and get("input.mime_type") == "text/plain":
                    i = dumps(i)
                if type(o) is str and get("output.mime_type") == "text/plain":
                    o = dumps(o)
            return i, o
    if io_items:
        for ik, ok in (("prompt", "completion"), ("input_messages", "output_messages")):
            if ik in io_items or ok in io_items:
                i = _unflatten(io_items[ik]) if ik in io_items else None
                o = _unflatten(io_items[ok]) if ok in io_items else None
                return i, o
    if span.events:
        return _event_io(span)
    return None, None


def _event_io(span: Span) -> tuple[Any, Any]:
    inputs = []
    outputs = []
    for ev in span.events:
        role = _GENAI_INPUT_EVENTS.get(ev.name)
        if role is not None:
            inputs.append({"role": role, **_attributes(ev.attributes)})
        elif ev.name == "gen_ai.choice":
            outputs.append(_attributes(ev.attributes))
    if not inputs and not outputs:
        return None, None
    out: Any = outputs[0] if len(outputs) == 1 else (outputs or None)
    return inputs or None, out


def _exception_message(span: Span) -> str | None:
    for ev in span.events:
        if ev.name == "exception":
            a = _attributes(ev.attributes)
            msg = a.get("exception.message") or a.get("exception.type")
            if msg:
                return _str(msg)
    return None


def _experiment_from_attrs(attrs: Mapping[str, Any], mode: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name in _EXPERIMENT_FIELDS:
        v = attrs.get(key)
        if v is not None and v != "":
            out[name] = v if type(v) is str else dumps(v)
    expected = attrs.get("langfuse.experiment.item.expected_output")
    if expected is not None:
        out["dataset_item_expected_output"] = _decode_meta(expected, META_GUESS)
    for whole_key, name in (("langfuse.experiment.metadata", "experiment_metadata"),
                            ("langfuse.experiment.item.metadata", "dataset_item_metadata")):
        md: dict[str, Any] = {}
        if whole_key in attrs:
            _merge_whole(md, attrs[whole_key], META_GUESS)
        prefix = whole_key + "."
        n = len(prefix)
        for k, v in attrs.items():
            if k.startswith(prefix):
                md[k[n:]] = _decode_meta(v, mode)
        if md:
            out[name] = md
    return out


def experiment_attributes(span: Span | Mapping[str, Any], sdk_version: str | None = None) -> dict[str, Any]:
    """The experiment/dataset-run fields a span carries (`langfuse.experiment.*`), {} when none.

    Keys (present only when sent): experiment_id, experiment_name, experiment_description,
    experiment_metadata (dict), dataset_id, dataset_item_id, dataset_item_version,
    dataset_item_expected_output (decoded JSON), dataset_item_metadata (dict), root_observation_id.
    `span` is an OTLP Span or its attributes as a dict. For recording dataset run items later.
    """
    attrs = span if isinstance(span, Mapping) else _attributes(span.attributes)
    if not any(k.startswith(A_EXPERIMENT) for k in attrs):
        return {}
    return _experiment_from_attrs(attrs, _metadata_mode(sdk_major_version(sdk_version)))


def iter_spans(req: ExportTraceServiceRequest):
    """(resource, scope, span) for every span of a request."""
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                yield rs.resource, ss.scope, span


def span_count(req: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


def gzip_request(req: ExportTraceServiceRequest) -> bytes:
    """Serialize and gzip a request (tests, benchmarks, re-export)."""
    return gzip.compress(req.SerializeToString())
