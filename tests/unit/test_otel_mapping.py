from __future__ import annotations

import base64
import gzip
import json
import zlib
from datetime import UTC, datetime

import pytest
from google.protobuf import json_format

from otlp_builders import (
    CAPTURE_V4,
    CAPTURE_V5,
    gzip_body,
    header,
    make_request,
    make_span,
    otlp_requests,
    request_from_spans,
    span_from_capture,
)
from owlscope.ingestion.errors import InvalidPayload
from owlscope.ingestion.otel import (
    ExportTraceServiceRequest,
    decode_otlp,
    experiment_attributes,
    map_otlp,
    sdk_major_version,
)
from owlscope.ingestion.rows import OBSERVATION_TYPES
from owlscope.ingestion.timeparse import from_unix_nanos

PROJECT = "proj-1"


def _map_capture(path, index: int = 0, *, with_header: bool = True):
    request = otlp_requests(path)[index]
    body = gzip_body(request_from_spans(request["otlp_spans"]))
    decoded = decode_otlp(body, header(request, "content-type"), "gzip")
    version = header(request, "x-langfuse-sdk-version") if with_header else None
    rows = map_otlp(decoded, PROJECT, version)
    spans = {s["spanId"]: s for s in request["otlp_spans"]}
    return request, spans, rows


def _by_name(rows):
    out = {}
    for o, t in zip(rows.observations, rows.traces, strict=True):
        out.setdefault(o.name, []).append((o, t))
    return out


def _one(rows, name):
    (pair,) = _by_name(rows)[name]
    return pair


def _user_metadata(text: str | None) -> dict:
    md = json.loads(text)
    md.pop("resourceAttributes", None)
    md.pop("scope", None)
    return md


CAPTURES = pytest.mark.parametrize("path", [CAPTURE_V5, CAPTURE_V4], ids=["v5", "v4"])


# --- the official SDK captures -----------------------------------------------------------------------


@CAPTURES
def test_every_span_yields_one_observation_and_one_trace_event(path):
    request, spans, rows = _map_capture(path)
    assert len(rows.observations) == len(rows.traces) == len(spans) == 26
    for o, t in zip(rows.observations, rows.traces, strict=True):
        s = spans[o.id]
        assert o.project_id == t.project_id == PROJECT
        assert o.trace_id == t.id == s["traceId"]
        assert o.start_time == t.timestamp == from_unix_nanos(int(s["start"]))
        assert o.end_time == from_unix_nanos(int(s["end"]))
        assert o.event_ts == t.event_ts == o.end_time
        assert o.type in OBSERVATION_TYPES
        assert o.environment  # the trace piece carries only an explicit environment
        for text in (o.input, o.output, o.metadata, o.model_parameters, t.metadata, t.input, t.output,
                     t.root_input, t.root_output):
            if text is not None:
                json.loads(text)  # always valid JSON text


@CAPTURES
def test_all_observation_types(path):
    _, _, rows = _map_capture(path)
    types = {name: pairs[0][0].type for name, pairs in _by_name(rows).items()}
    assert {k: types[k] for k in ("gen", "obs-agent", "obs-tool", "obs-chain", "obs-retriever", "obs-evaluator",
                                  "obs-guardrail", "obs-embedding", "an-event", "err-span", "root-span")} == {
        "gen": "GENERATION", "obs-agent": "AGENT", "obs-tool": "TOOL", "obs-chain": "CHAIN",
        "obs-retriever": "RETRIEVER", "obs-evaluator": "EVALUATOR", "obs-guardrail": "GUARDRAIL",
        "obs-embedding": "EMBEDDING", "an-event": "EVENT", "err-span": "SPAN", "root-span": "SPAN",
    }
    assert types["outer-fn"] == "AGENT"
    assert {o.type for o in rows.observations} == set(OBSERVATION_TYPES)


@CAPTURES
def test_generation_fields(path):
    _, spans, rows = _map_capture(path)
    gen, trace = _one(rows, "gen")
    root, _ = _one(rows, "root-span")
    assert gen.parent_observation_id == root.id
    assert gen.model == "gpt-4o"
    assert json.loads(gen.model_parameters) == {"temperature": 0.5, "max_tokens": 100}
    assert json.loads(gen.input) == [{"role": "user", "content": "hi"}]
    assert json.loads(gen.output) == {"role": "assistant", "content": "hello"}
    assert gen.input == '[{"role": "user", "content": "hi"}]'  # kept as sent
    # usage_details keep the keys the SDK sent (Langfuse renames only a complete OpenAI usage object)
    assert gen.usage_details == {"input": 10, "output": 5, "cache_read_input_tokens": 2, "total": 17}
    assert gen.cost_details == {"input": 0.001, "output": 0.002, "total": 0.003}
    assert gen.provided_cost is True
    assert gen.completion_start_time == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert (gen.prompt_name, gen.prompt_version, gen.prompt_id) == ("folder/text-prompt", 1, None)
    assert (gen.level, gen.status_message, gen.version, gen.environment) == ("DEFAULT", None, "pv1", "default")


@CAPTURES
def test_levels_and_status(path):
    _, _, rows = _map_capture(path)
    event, _ = _one(rows, "an-event")
    assert (event.level, event.status_message, event.input, event.output) == ("WARNING", "warn msg", '"ev-in"', None)
    err, _ = _one(rows, "err-span")
    assert (err.level, err.status_message) == ("ERROR", "boom")
    failing, _ = _one(rows, "failing")
    assert (failing.level, failing.status_message) == ("ERROR", "bad thing")
    agent, _ = _one(rows, "obs-agent")
    assert (agent.level, agent.status_message, agent.output) == ("DEFAULT", None, '"agent-out"')


def test_v5_metadata_values_are_json_decoded():
    _, _, rows = _map_capture(CAPTURE_V5)
    root, trace = _one(rows, "root-span")
    assert _user_metadata(root.metadata) == {"s": "str", "n": 123, "nested": {"a": [1, 2]}, "late": True,
                                             "pk": "pv", "num": 5}  # with the propagated trace metadata
    assert _user_metadata(trace.metadata) == {"pk": "pv", "num": 5, "s": "str", "n": 123,
                                              "nested": {"a": [1, 2]}, "late": True}
    child, child_trace = _one(rows, "gen")
    assert _user_metadata(child_trace.metadata) == {"pk": "pv", "num": 5}
    # propagated trace metadata is part of each observation's metadata, as in Langfuse
    assert _user_metadata(child.metadata) == {"pk": "pv", "num": 5}


def test_v4_metadata_values_are_read_as_langfuse_reads_them():
    _, _, rows = _map_capture(CAPTURE_V4)
    root, trace = _one(rows, "root-span")
    # v4 sends strings as-is, ints/bools typed, dicts JSON-serialized; as in Langfuse, a string that is
    # JSON text reads as that JSON ("5" -> 5)
    assert _user_metadata(root.metadata) == {"s": "str", "n": 123, "nested": {"a": [1, 2]}, "late": True,
                                             "pk": "pv", "num": 5}  # with the propagated trace metadata
    assert _user_metadata(trace.metadata) == {"pk": "pv", "num": 5, "s": "str", "n": 123,
                                              "nested": {"a": [1, 2]}, "late": True}


@pytest.mark.parametrize(("path", "expected"), [(CAPTURE_V5, 5), (CAPTURE_V4, 5)], ids=["v5", "v4"])
def test_sdk_version_from_scope_when_no_header(path, expected):
    _, _, rows = _map_capture(path, with_header=False)
    _, trace = _one(rows, "gen")
    assert _user_metadata(trace.metadata)["num"] == expected
    root, _ = _one(rows, "root-span")
    assert _user_metadata(root.metadata)["s"] == "str"


@CAPTURES
def test_resource_and_scope_in_metadata(path):
    _, _, rows = _map_capture(path)
    gen, _ = _one(rows, "gen")
    md = json.loads(gen.metadata)
    assert md["resourceAttributes"]["telemetry.sdk.language"] == "python"
    assert md["resourceAttributes"]["langfuse.release"] == "rel-1"
    assert md["scope"]["name"] == "langfuse-sdk"
    assert md["scope"]["attributes"] == {"public_key": "pk-lf-1234567890"}
    assert "attributes" not in md  # span attributes only for non-Langfuse instrumentation


@CAPTURES
def test_trace_attributes(path):
    _, _, rows = _map_capture(path)
    root, trace = _one(rows, "root-span")
    assert trace.id == root.trace_id
    assert (trace.name, trace.root_name) == ("my-trace", "root-span")
    assert (trace.user_id, trace.session_id, trace.release, trace.version) == ("user-1", "sess-1", "rel-1", "pv1")
    assert trace.tags == ["tag-a", "tag-b"]
    assert trace.public is True
    assert trace.timestamp == root.start_time
    assert (trace.root_input, trace.root_output) == ('{"q": "hi"}', '"done"')
    assert (trace.input, trace.output) == (None, None)
    assert trace.environment is None  # not sent: reads show "default"
    assert trace.bookmarked is None
    # children carry the propagated trace attributes too, but are not the root
    _, child_trace = _one(rows, "obs-tool")
    assert (child_trace.name, child_trace.user_id, child_trace.session_id) == ("my-trace", "user-1", "sess-1")
    assert child_trace.tags == ["tag-a", "tag-b"]
    assert (child_trace.root_name, child_trace.root_input, child_trace.public) == (None, None, None)
    # a span without trace attributes: a shallow piece
    _, shallow = _one(rows, "child-with-media")
    assert (shallow.name, shallow.user_id, shallow.tags, shallow.metadata) == (None, None, [], None)


@CAPTURES
def test_as_root_spans_are_roots(path):
    _, spans, rows = _map_capture(path)
    seeded, seeded_trace = _one(rows, "seeded-root")
    assert spans[seeded.id]["parentSpanId"]  # has a parent on the wire...
    assert seeded.parent_observation_id is None  # ...but langfuse.internal.as_root makes it a root
    assert seeded_trace.root_name == "seeded-root"
    remote, remote_trace = _one(rows, "remote-parent")
    assert remote.parent_observation_id is None and remote_trace.root_name == "remote-parent"
    child, _ = _one(rows, "child-with-media")
    assert child.parent_observation_id == seeded.id
    assert "@@@langfuseMedia:type=image/png|id=B1-OPyL8tZLxwnsIY3XO6q" in json.loads(child.input)["img"]


@CAPTURES
def test_environment(path):
    _, _, rows = _map_capture(path)
    for name in ("inner", "outer-fn"):
        o, t = _one(rows, name)
        assert o.environment == t.environment == "staging-env"
    outer, outer_trace = _one(rows, "outer-fn")
    inner, _ = _one(rows, "inner")
    assert inner.parent_observation_id == outer.id and outer_trace.root_name == "outer-fn"
    for o, t in _by_name(rows)["experiment-item-run"]:
        assert o.environment == t.environment == "sdk-experiment"
    agen, _ = _one(rows, "agen")
    assert agen.environment == "default"


def test_v5_experiment_attributes():
    request, spans, rows = _map_capture(CAPTURE_V5)
    run = next(o for o, _ in _by_name(rows)["experiment-item-run"] if o.trace_id == "1a2febb903b37775353b83894bcfc3a7")
    exp = experiment_attributes(span_from_capture(spans[run.id]), "5.0.4")
    assert exp == {
        "experiment_id": "7983e38207da61e8", "experiment_name": "cap-run", "experiment_description": "desc",
        "dataset_id": "56066aeb-8211-427e-8f07-a828e764f551",
        "dataset_item_id": "af6c7aa5-f3d0-4528-9dea-5b72661e8475",
        "root_observation_id": "4eabc1a370305387", "dataset_item_expected_output": 4,
        "experiment_metadata": {"model": "x"}, "dataset_item_metadata": {"i": 1},
    }
    md = json.loads(run.metadata)
    assert md["experiment"] == exp
    assert md["experiment_name"] == "cap-exp" and md["dataset_item_id"] == "af6c7aa5-f3d0-4528-9dea-5b72661e8475"
    task = next(o for o, _ in _by_name(rows)["experiment-item-task"] if o.id == "4eabc1a370305387")
    assert task.parent_observation_id == run.id and task.output == "4"
    evaluator = next(o for o, _ in _by_name(rows)["ev_fn"] if o.trace_id == run.trace_id)
    assert evaluator.type == "EVALUATOR"
    assert json.loads(evaluator.output) == [{"name": "exact", "value": 1.0, "comment": "cmp"}]
    assert _user_metadata(evaluator.metadata)["evaluator_index"] == 0
    assert experiment_attributes(span_from_capture(next(iter(spans.values())))) == {}


def test_v4_experiment_attributes_flattened_metadata():
    _, spans, rows = _map_capture(CAPTURE_V4)
    run = next(o for o, _ in _by_name(rows)["experiment-item-run"] if o.id == "559c9a6b215aa7ca")
    exp = experiment_attributes(span_from_capture(spans[run.id]), "4.14.3")
    assert exp["experiment_metadata"] == {"model": "x"}
    assert exp["dataset_item_metadata"] == {"i": 1}
    assert exp["dataset_item_id"] == "b16c8e0d-b54c-45cd-92f3-2c9f97786a75"
    assert json.loads(run.metadata)["experiment"] == exp
    # a dict of attributes works too
    assert experiment_attributes({"langfuse.experiment.id": "e1"}) == {"experiment_id": "e1"}


def test_v5_openai_integration_spans():
    _, _, rows = _map_capture(CAPTURE_V5, 2)
    gen, trace = _one(rows, "my-openai-gen")
    assert gen.type == "GENERATION" and gen.model == "gpt-4o-mini-2024-07-18"
    assert gen.usage_details["input"] == 9 and gen.usage_details["output"] == 2 and gen.usage_details["total"] == 11
    assert gen.usage_details["input_cached_tokens"] == 0
    assert gen.usage_details["output_reasoning_tokens"] == 0
    assert sum(v for k, v in gen.usage_details.items() if k != "total") == 11
    assert gen.cost_details is None and gen.provided_cost is None
    assert (gen.prompt_name, gen.prompt_version) == ("chat-prompt", 1)
    assert json.loads(gen.model_parameters)["temperature"] == 0.2
    assert _user_metadata(gen.metadata) == {"someKey": "v"}
    assert (trace.user_id, trace.session_id, trace.tags, trace.root_name) == ("oa-user", "oa-sess", ["oa"],
                                                                              "my-openai-gen")
    stream, _ = _one(rows, "OpenAI-generation")
    assert stream.completion_start_time == datetime(2026, 11, 27, 8, 29, 6, 773114, tzinfo=UTC)
    assert stream.output == '"Hello"'
    assert stream.usage_details == {"input": 9, "output": 2, "total": 11}
    assert _user_metadata(stream.metadata) == {"finish_reason": "stop"}
    embedding, _ = _one(rows, "OpenAI-embedding")
    assert embedding.type == "EMBEDDING" and embedding.model == "text-embedding-3-small"
    assert embedding.usage_details == {"input": 3, "total": 3}
    assert embedding.model_parameters is None  # "{}" says nothing
    assert embedding.input == '"embed me"'


@CAPTURES
def test_mapping_is_deterministic(path):
    _, _, rows1 = _map_capture(path)
    _, _, rows2 = _map_capture(path)
    assert rows1 == rows2


def test_sdk_major_version():
    assert sdk_major_version("5.0.4") == 5
    assert sdk_major_version("v4.14.3") == 4
    assert sdk_major_version("10") == 10
    assert sdk_major_version("") is None
    assert sdk_major_version(None) is None
    assert sdk_major_version("python") is None


# --- decoding ---------------------------------------------------------------------------------------


def _sample_request() -> ExportTraceServiceRequest:
    return request_from_spans(otlp_requests(CAPTURE_V5)[2]["otlp_spans"])


@pytest.mark.parametrize("encoding", [None, "identity", "gzip", "x-gzip", "deflate", "deflate-raw"])
def test_decode_protobuf_encodings(encoding):
    req = _sample_request()
    raw = req.SerializeToString()
    if encoding in ("gzip", "x-gzip"):
        body = gzip.compress(raw)
    elif encoding == "deflate":
        body = zlib.compress(raw)
    elif encoding == "deflate-raw":
        c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = c.compress(raw) + c.flush()
        encoding = "deflate"
    else:
        body = raw
    assert decode_otlp(body, "application/x-protobuf", encoding) == req


def test_decode_gzip_without_content_encoding_header():
    req = _sample_request()
    assert decode_otlp(gzip.compress(req.SerializeToString()), "application/x-protobuf", None) == req


def test_decode_zstd_when_available():
    try:
        from backports import zstd
    except ImportError:
        pytest.skip("no zstd module")
    req = _sample_request()
    body = zstd.compress(req.SerializeToString())
    assert decode_otlp(body, "application/x-protobuf", "zstd") == req


def test_decode_otlp_json_with_hex_ids():
    req = _sample_request()
    doc = json_format.MessageToDict(req)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    body = json.dumps(doc).encode()
    decoded = decode_otlp(body, "application/json; charset=utf-8", None)
    assert decoded == req
    assert map_otlp(decoded, PROJECT, "5.0.4") == map_otlp(req, PROJECT, "5.0.4")
    assert decode_otlp(gzip.compress(body), "application/json", "gzip") == req


def test_decode_otlp_json_with_base64_ids():
    req = _sample_request()
    body = json_format.MessageToJson(req).encode()
    assert decode_otlp(body, "application/json", None) == req


@pytest.mark.parametrize(("body", "ctype", "encoding", "message"), [
    (b"\x0a\xff\xff", "application/x-protobuf", None, "invalid OTLP protobuf"),
    (b"not gzip at all", "application/x-protobuf", "gzip", "invalid gzip"),
    (gzip.compress(b"x" * 100, mtime=0)[:-8], "application/x-protobuf", "gzip", "gzip"),
    (b"{}", "text/plain", None, "unsupported content type"),
    (b"{}", "application/x-protobuf", "br", "unsupported content encoding"),
    (b"{not json", "application/json", None, "invalid JSON"),
    (b"[1, 2]", "application/json", None, "must be an object"),
    (b'{"resourceSpans": 5}', "application/json", None, "invalid OTLP JSON"),
])
def test_decode_rejects_bad_input(body, ctype, encoding, message):
    with pytest.raises(InvalidPayload, match=message):
        decode_otlp(body, ctype, encoding)


def test_decode_caps_decompressed_size():
    body = gzip.compress(b"\x00" * 10_000)
    with pytest.raises(InvalidPayload, match="larger than"):
        decode_otlp(body, "application/x-protobuf", "gzip", max_size=1000)


@pytest.mark.parametrize(("trace_id", "span_id", "message"), [
    (b"\x01" * 8, b"\x02" * 8, "traceId must be 16 bytes"),
    (b"\x00" * 16, b"\x02" * 8, "traceId"),
    (b"\x01" * 16, b"", "spanId must be 8 bytes"),
])
def test_decode_rejects_invalid_ids(trace_id, span_id, message):
    req = make_request([make_span("s")])
    req.resource_spans[0].scope_spans[0].spans[0].trace_id = trace_id
    req.resource_spans[0].scope_spans[0].spans[0].span_id = span_id
    with pytest.raises(InvalidPayload, match=message):
        decode_otlp(req.SerializeToString(), "application/x-protobuf", None)


def test_decode_empty_request():
    assert len(map_otlp(decode_otlp(b"", "application/x-protobuf", None), PROJECT)) == 0


# --- OpenTelemetry GenAI semantic conventions ----------------------------------------------------------


def _map_one(attributes=None, *, resource=None, scope="opentelemetry.instrumentation.openai", version=None,
             **span_kw):
    req = make_request([make_span("op", attributes=attributes, **span_kw)], scope_name=scope, resource=resource)
    rows = map_otlp(decode_otlp(gzip_body(req), "application/x-protobuf", "gzip"), PROJECT, version)
    return rows.observations[0], rows.traces[0]


def test_genai_chat_span():
    o, t = _map_one({
        "gen_ai.operation.name": "chat", "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.request.temperature": 0.7, "gen_ai.request.max_tokens": 200, "gen_ai.request.top_p": 1.0,
        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20,
        "gen_ai.usage.cache_read.input_tokens": 30,
        "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "be brief",
        "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "hi",
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "hello",
        "gen_ai.completion.0.finish_reason": "stop",
        "gen_ai.conversation.id": "conv-1", "user.id": "u-9",
    })
    assert o.type == "GENERATION"
    assert o.model == "gpt-4o-2024-08-06"
    assert json.loads(o.model_parameters) == {"temperature": 0.7, "max_tokens": 200, "top_p": 1.0}
    assert o.usage_details == {"input": 70, "output": 20, "input_cached_tokens": 30, "total": 120}
    assert json.loads(o.input) == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert json.loads(o.output) == [{"role": "assistant", "content": "hello", "finish_reason": "stop"}]
    assert (t.session_id, t.user_id) == ("conv-1", "u-9")
    md = json.loads(o.metadata)
    assert md["attributes"]["gen_ai.system"] == "openai"
    assert md["attributes"]["gen_ai.request.temperature"] == "0.7"
    assert not any(k.startswith(("gen_ai.prompt", "gen_ai.completion")) for k in md["attributes"])
    assert md["scope"]["name"] == "opentelemetry.instrumentation.openai"


def test_genai_older_token_names_and_model_inference():
    o, _ = _map_one({"gen_ai.request.model": "claude-3", "gen_ai.usage.prompt_tokens": 11,
                     "gen_ai.usage.completion_tokens": 4, "gen_ai.usage.total_tokens": 15,
                     "gen_ai.usage.cache_read_input_tokens": 5, "gen_ai.usage.cost": 0.004})
    assert o.type == "GENERATION" and o.model == "claude-3"
    assert o.usage_details == {"input": 6, "output": 4, "total": 15, "input_cached_tokens": 5}
    assert o.cost_details == {"total": 0.004} and o.provided_cost is True


def test_genai_messages_attributes_are_kept_as_json_text():
    msgs_in = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}])
    msgs_out = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "yo"}]}])
    o, _ = _map_one({"gen_ai.operation.name": "chat", "gen_ai.input.messages": msgs_in,
                     "gen_ai.output.messages": msgs_out})
    assert (o.input, o.output) == (msgs_in, msgs_out)


@pytest.mark.parametrize(("attrs", "expected"), [
    ({"gen_ai.operation.name": "embeddings"}, "EMBEDDING"),
    ({"gen_ai.operation.name": "execute_tool"}, "TOOL"),
    ({"gen_ai.operation.name": "invoke_agent"}, "AGENT"),
    ({"gen_ai.operation.name": "text_completion"}, "GENERATION"),
    ({"gen_ai.tool.call.id": "call_1"}, "TOOL"),
    ({"gen_ai.usage.input_tokens": 3}, "GENERATION"),
    ({"llm.model_name": "m"}, "GENERATION"),
    ({"http.method": "GET"}, "SPAN"),
    ({"langfuse.observation.type": "TOOL", "gen_ai.request.model": "m"}, "TOOL"),
    ({"langfuse.observation.type": "nonsense"}, "SPAN"),
])
def test_type_inference(attrs, expected):
    o, _ = _map_one(attrs)
    assert o.type == expected


def test_genai_tool_name_is_the_observation_name():
    o, _ = _map_one({"gen_ai.tool.name": "get_weather", "gen_ai.tool.call.arguments": '{"city": "Paris"}',
                     "gen_ai.tool.call.result": "sunny"})
    assert (o.type, o.name) == ("TOOL", "get_weather")
    assert (o.input, o.output) == ('{"city": "Paris"}', '"sunny"')


def test_genai_message_events():
    o, _ = _map_one({"gen_ai.operation.name": "chat"}, events=[
        ("gen_ai.system.message", {"content": "be brief"}),
        ("gen_ai.user.message", {"content": "hi"}),
        ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": '{"content": "yo"}'}),
    ])
    assert json.loads(o.input) == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert json.loads(o.output) == {"index": 0, "finish_reason": "stop", "message": '{"content": "yo"}'}


# --- OpenInference --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "expected"), [
    ("LLM", "GENERATION"), ("CHAIN", "CHAIN"), ("RETRIEVER", "RETRIEVER"), ("EMBEDDING", "EMBEDDING"),
    ("AGENT", "AGENT"), ("TOOL", "TOOL"), ("GUARDRAIL", "GUARDRAIL"), ("EVALUATOR", "EVALUATOR"),
    ("RERANKER", "SPAN"),
])
def test_openinference_kinds(kind, expected):
    o, _ = _map_one({"openinference.span.kind": kind}, scope="openinference.instrumentation.langchain")
    assert o.type == expected


def test_openinference_llm_span():
    o, t = _map_one({
        "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
        "input.value": '{"messages": [{"role": "user", "content": "hi"}]}', "input.mime_type": "application/json",
        "output.value": "4", "output.mime_type": "text/plain",
        "llm.invocation_parameters": '{"temperature": 0, "max_tokens": 5}',
        "llm.token_count.prompt": 12, "llm.token_count.completion": 3, "llm.token_count.total": 15,
        "llm.token_count.prompt_details.cache_read": 2, "llm.token_count.completion_details.reasoning": 1,
        "session.id": "s-1", "user.id": "u-1", "metadata": '{"team": "search", "n": 2}',
        "tag.tags": ["x", "y"],
        "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "hi",
    }, scope="openinference.instrumentation.openai")
    assert (o.type, o.model) == ("GENERATION", "gpt-4o-mini")
    assert json.loads(o.input) == {"messages": [{"role": "user", "content": "hi"}]}
    assert o.output == '"4"'  # text/plain: a string, not the number 4
    assert json.loads(o.model_parameters) == {"temperature": 0, "max_tokens": 5}
    assert o.usage_details == {"input": 10, "output": 2, "total": 15, "input_cached_tokens": 2,
                               "output_reasoning_tokens": 1}
    assert (t.session_id, t.user_id, t.tags) == ("s-1", "u-1", ["x", "y"])
    md = json.loads(o.metadata)
    assert (md["team"], md["n"]) == ("search", 2)
    assert "input.value" not in md["attributes"] and "llm.input_messages.0.message.role" not in md["attributes"]
    assert md["attributes"]["llm.model_name"] == "gpt-4o-mini"


def test_openinference_input_messages_when_no_input_value():
    o, _ = _map_one({
        "openinference.span.kind": "LLM",
        "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "sys",
        "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": "hi",
        "llm.output_messages.0.message.role": "assistant", "llm.output_messages.0.message.content": "yo",
    })
    assert json.loads(o.input) == [{"message": {"role": "system", "content": "sys"}},
                                   {"message": {"role": "user", "content": "hi"}}]
    assert json.loads(o.output) == [{"message": {"role": "assistant", "content": "yo"}}]


# --- generic OTel -----------------------------------------------------------------------------------------


def test_resource_environment_and_version():
    o, t = _map_one({}, resource={"service.name": "api", "deployment.environment.name": "prod",
                                  "service.version": "1.2.3"})
    assert o.environment == t.environment == "prod"
    assert o.version == t.version == "1.2.3"
    o, t = _map_one({"langfuse.environment": "dev"}, resource={"deployment.environment": "prod"})
    assert o.environment == t.environment == "dev"


def test_status_error_sets_level_and_message():
    o, _ = _map_one({}, status_code=2, status_message="kaput")
    assert (o.level, o.status_message) == ("ERROR", "kaput")
    o, _ = _map_one({}, status_code=2, events=[("exception", {"exception.type": "ValueError",
                                                               "exception.message": "bad value"})])
    assert (o.level, o.status_message) == ("ERROR", "bad value")
    o, _ = _map_one({"langfuse.observation.level": "warning"}, status_code=2, status_message="kaput")
    assert (o.level, o.status_message) == ("WARNING", "kaput")
    o, _ = _map_one({}, status_code=1)
    assert (o.level, o.status_message) == ("DEFAULT", None)


def test_span_without_end_time():
    o, t = _map_one({}, end_ns=None)
    assert o.end_time is None
    assert o.event_ts == o.start_time == t.timestamp == t.event_ts


def test_root_and_parent_ids():
    o, t = _map_one({}, parent_id="00f067aa0ba902b7")
    assert o.parent_observation_id == "00f067aa0ba902b7" and t.root_name is None
    o, t = _map_one({"langfuse.internal.as_root": "true"}, parent_id="00f067aa0ba902b7")
    assert o.parent_observation_id is None and t.root_name == "op"
    assert (o.id, o.trace_id) == ("b7ad6b7169203331", "0af7651916cd43dd8448eb211c80319c")


def test_unknown_sdk_metadata_values_are_decoded_when_json():
    o, t = _map_one({"langfuse.observation.metadata.a": '"quoted"', "langfuse.observation.metadata.b": "plain",
                     "langfuse.observation.metadata.c": "7", "langfuse.observation.metadata.d": 7,
                     "langfuse.trace.metadata.e": '{"x": 1}'})
    md = json.loads(o.metadata)
    assert (md["a"], md["b"], md["c"], md["d"]) == ("quoted", "plain", 7, 7)
    assert json.loads(t.metadata)["e"] == {"x": 1}


def test_metadata_json_text_is_decoded_for_every_sdk_version():
    attrs = {"langfuse.observation.metadata.a": '"quoted"', "langfuse.observation.metadata.b": "[1, 2]",
             "langfuse.observation.metadata.c": "7", "langfuse.observation.metadata.d": "plain text"}
    o, _ = _map_one(attrs, scope="langfuse-sdk", version="4.14.3")
    md = json.loads(o.metadata)
    assert (md["a"], md["b"], md["c"], md["d"]) == ("quoted", [1, 2], 7, "plain text")
    o, _ = _map_one(attrs, scope="langfuse-sdk", version="5.0.4")
    md = json.loads(o.metadata)
    assert (md["a"], md["b"], md["c"]) == ("quoted", [1, 2], 7)


def test_whole_metadata_attribute():
    o, _ = _map_one({"langfuse.observation.metadata": '{"a": 1, "b": "x"}', "langfuse.observation.metadata.c": '"z"'},
                    scope="langfuse-sdk", version="5.0.4")
    assert _user_metadata(o.metadata) == {"a": 1, "b": "x", "c": "z"}
    o, _ = _map_one({"langfuse.observation.metadata": '"just text"'}, scope="langfuse-sdk", version="5.0.4")
    assert _user_metadata(o.metadata) == {"metadata": "just text"}


def test_trace_level_langfuse_attributes():
    o, t = _map_one({"langfuse.trace.input": '{"question": "why"}', "langfuse.trace.output": "because",
                     "langfuse.trace.name": "tn", "langfuse.user.id": "lu", "langfuse.session.id": "ls",
                     "langfuse.trace.tags": '["a", "b"]', "langfuse.trace.public": "true",
                     "langfuse.release": "r9"}, parent_id="00f067aa0ba902b7")
    assert (t.input, t.output) == ('{"question": "why"}', '"because"')
    assert (t.name, t.user_id, t.session_id, t.tags, t.public, t.release) == ("tn", "lu", "ls", ["a", "b"], True, "r9")
    assert (t.root_input, t.root_output, t.root_name) == (None, None, None)


def test_tags_as_comma_separated_string():
    _, t = _map_one({"langfuse.trace.tags": "a, b,c"})
    assert t.tags == ["a", "b", "c"]


def test_completion_start_time_plain_and_quoted():
    o, _ = _map_one({"langfuse.observation.completion_start_time": "2025-01-01T12:00:00.123456789Z"})
    assert o.completion_start_time == datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    o, _ = _map_one({"langfuse.observation.completion_start_time": "not a time"})
    assert o.completion_start_time is None


def test_prompt_version_as_string():
    o, _ = _map_one({"langfuse.observation.prompt.name": "p", "langfuse.observation.prompt.version": "12"})
    assert (o.prompt_name, o.prompt_version) == ("p", 12)


def test_invalid_json_strings_are_stored_as_json_strings():
    o, _ = _map_one({"langfuse.observation.input": "{'python': 'repr'}", "langfuse.observation.output": "[1, 2"})
    assert json.loads(o.input) == "{'python': 'repr'}"
    assert json.loads(o.output) == "[1, 2"


def test_multiple_resources_and_scopes():
    req = make_request([make_span("a")], scope_name="langfuse-sdk", scope_version="5.0.4",
                       resource={"service.name": "one", "langfuse.environment": "e1"})
    other = make_request([make_span("b", span_id="b7ad6b7169203332")], scope_name="x",
                         resource={"service.name": "two"})
    req.resource_spans.extend(other.resource_spans)
    rows = map_otlp(req, PROJECT)
    assert [(o.name, o.environment) for o in rows.observations] == [("a", "e1"), ("b", "default")]
    assert "attributes" not in json.loads(rows.observations[0].metadata)
    assert json.loads(rows.observations[1].metadata)["attributes"] == {}


def test_all_zero_parent_id_means_root():
    o, t = _map_one({}, parent_id="0000000000000000")
    assert o.parent_observation_id is None and t.root_name == "op"


def test_prompt_version_out_of_range_is_dropped():
    o, _ = _map_one({"langfuse.observation.prompt.version": -1})
    assert o.prompt_version is None


@CAPTURES
def test_rows_convert_to_arrow_tables(path):
    from owlscope.ingestion.rows import observations_table, traces_table

    for index in range(len(otlp_requests(path))):
        _, _, rows = _map_capture(path, index)
        assert observations_table(rows.observations).num_rows == len(rows.observations)
        assert traces_table(rows.traces).num_rows == len(rows.traces)
