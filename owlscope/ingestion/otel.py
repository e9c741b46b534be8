"""OTLP/HTTP traces: decode requests and map spans to trace/observation event rows.

Pure: no I/O. `decode_otlp` (in `otlp_decode.py`, re-exported here) turns the HTTP body into an
`ExportTraceServiceRequest` and rejects malformed input with `InvalidPayload`; `map_otlp` maps
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
arrives as `"\\"str\\""`), v4 sends raw values (strings as-is, other types JSON or typed). As in
Langfuse, a value that parses as JSON is read as that JSON (v4's `"0"` is the number 0) and any
other string is kept as sent.

Observation metadata also carries `resourceAttributes` and `scope` (as Langfuse does), and, for
spans not produced by a Langfuse SDK, `attributes`: the span attributes other than input/output.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .jsontext import dumps, json_text, loads_or_none
from .otlp_decode import decode_otlp
from .rows import LEVELS, OBSERVATION_TYPES, ObservationEvent, Rows, TraceEvent
from .timeparse import EPOCH, from_unix_nanos, parse_timestamp_or_none
from .usage import normalize_cost, normalize_usage, sdk_usage_details, to_amount

__all__ = [
    "ExportTraceServiceRequest",
    "decode_otlp",
    "experiment_attributes",
    "map_otlp",
    "sdk_major_version",
]

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
# Set by the SDK on a span whose parent is not exported (a foreign parent): the application's root.
A_IS_APP_ROOT = "langfuse.internal.is_app_root"
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
    A_ENVIRONMENT, A_RELEASE, A_VERSION, A_AS_ROOT, A_IS_APP_ROOT, "user.id",
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

_ZERO_SPAN_ID = bytes(8)
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


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
    # v5 JSON-encodes every value; v4 sends strings raw and other values as JSON text. Either way a
    # value that parses as JSON is read as that JSON ("0" -> 0, "{...}" -> object), as Langfuse does.
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


def _prompt_version(value: Any) -> int | None:
    """A prompt version (UInt32 column): an int, or a string/float holding one."""
    if type(value) is str:
        try:
            value = int(value.strip().strip('"'))
        except ValueError:
            return None
    elif type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is int and 0 <= value < 2**32:
        return value
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
    parent = span.parent_span_id
    parent_id = parent.hex() if parent and parent != _ZERO_SPAN_ID else None  # some exporters send zeros
    # A span under a foreign (not exported) parent is the application's root: Langfuse reports it
    # as a root observation.
    is_root = parent_id is None or _truthy(get(A_AS_ROOT)) or _truthy(get(A_IS_APP_ROOT))
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
    status = span.status
    status_code = status.code
    if level is None:
        level = "ERROR" if status_code == STATUS_CODE_ERROR else "DEFAULT"
    status_message = get(A_OBS_STATUS)
    if status_message is not None and type(status_message) is not str:
        status_message = _str(status_message)
    status_message = status_message or status.message or None
    if status_message is None and status_code == STATUS_CODE_ERROR:
        status_message = _exception_message(span)

    environment = None
    for k in _ENV_KEYS:
        v = get(k)
        if v:
            environment = _str(v)
            break
    # The trace takes only an explicit environment: a span without one must not overwrite the
    # trace's real environment with the default (reads treat a missing one as "default").
    trace_environment = environment or resource.environment
    environment = trace_environment or "default"
    version = _str(get(A_VERSION)) or resource.version
    release = _str(get(A_RELEASE)) or resource.release

    # An empty string (e.g. the output of an empty generator under @observe) is no value.
    inp = get(A_OBS_INPUT) or None
    out = get(A_OBS_OUTPUT) or None
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

    model_parameters = None
    mp = get(A_OBS_MODEL_PARAMS)
    if mp is not None:
        model_parameters = _sdk_model_parameters(mp)
    if model_parameters is None and "llm.invocation_parameters" in attrs:
        model_parameters = _json_object_text(attrs["llm.invocation_parameters"])
    if model_parameters is None and request_params:
        model_parameters = dumps(request_params)

    usage = None
    raw_usage = get(A_OBS_USAGE)
    if raw_usage is not None:
        parsed = loads_or_none(raw_usage) if type(raw_usage) is str else raw_usage
        if type(parsed) is dict:
            usage = sdk_usage_details(parsed)
    if usage is None and usage_items:
        usage = normalize_usage(_otel_usage(usage_items))

    cost = None
    raw_cost = get(A_OBS_COST)
    if raw_cost is not None:
        parsed = loads_or_none(raw_cost) if type(raw_cost) is str else raw_cost
        if type(parsed) is dict:
            cost = normalize_cost(parsed)
    if cost is None and usage_items:
        c = to_amount(_number(get("gen_ai.usage.cost")))
        if c is not None:
            cost = {"total": c}

    prompt_name = get(A_OBS_PROMPT_NAME) or get("langfuse.prompt.name")
    prompt_version = None
    if prompt_name is not None:
        prompt_name = _str(prompt_name)
        pv = get(A_OBS_PROMPT_VERSION)
        prompt_version = _prompt_version(pv if pv is not None else get("langfuse.prompt.version"))

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
    if is_langfuse and (trace_md_items or A_TRACE_METADATA in attrs):
        # Trace metadata set with propagate_attributes arrives on every span: Langfuse applies it to
        # each observation's metadata too (trace keys win).
        if A_TRACE_METADATA in attrs:
            _merge_whole(obs_md, attrs[A_TRACE_METADATA], mode)
        if trace_md_items:
            for key, v in trace_md_items:
                obs_md[key] = _decode_meta(v, mode)
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
        environment=trace_environment,
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
        if type(parsed) is dict and parsed:
            return value
        return None
    if type(value) is dict and value:
        return dumps(value)
    return None


def _sdk_model_parameters(value: Any) -> str | None:
    """Model parameters set through a Langfuse SDK, as Langfuse keeps them: strings and numbers as
    sent, any other value (bool, list, object, null) as its JSON text ("stop": '["a"]')."""
    params = loads_or_none(value) if type(value) is str else value
    if type(params) is not dict or not params:
        return None
    return dumps({k: v if type(v) in (str, int, float) else dumps(v) for k, v in params.items()})


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




def span_count(req: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
