"""Running one playground column: call the model of a project LLM connection, stream its answer,
price it, and trace the call in the project (environment `langfuse-playground`).

`stream_run` yields events, each a dict with an `event` key:
- `delta` {text}: the next piece of the answer, as the provider sends it;
- `tool_call` {id, name, arguments}: a complete tool call (arguments as the model wrote them);
- `done` {output, text, tool_calls, usage, cost, latency_ms, ttft_ms, model, trace_id, observation_id};
- `error` {message, kind, trace_id}: the provider refused or failed (the failed call is traced too).

OpenAI-compatible and Azure connections stream token by token through the `openai` client built
by owlscope.evals.judge; Anthropic connections through its Messages API's own event stream.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from owlscope.errors import InvalidRequest, OwlscopeError
from owlscope.evals.connections import get_connection, judge_model
from owlscope.evals.judge import (
    OPENAI_ADAPTERS,
    JudgeError,
    JudgeModel,
    anthropic_error,
    anthropic_http,
    anthropic_request,
    openai_client,
    openai_error,
)
from owlscope.ingestion.batch import validate_batch
from owlscope.ingestion.pricing import PriceBook, load_default_models
from owlscope.pipeline.accept import accept_events
from owlscope.playground.spec import RunRequest, compile_messages

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.playground")
PLAYGROUND_ENVIRONMENT = "langfuse-playground"
STRUCTURED_TOOL = "structured_output"  # Anthropic: structured output is this forced tool's input
TRACE_NAME = "playground"


@dataclass
class Answer:
    """What the model answered, gathered while streaming."""

    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    model: str = ""
    started: float = 0.0
    first_token: float | None = None
    ended: float = 0.0

    def output(self, structured: bool) -> Any:
        if structured and self.text:
            try:
                return json.loads(self.text)
            except ValueError:
                return self.text
        if self.tool_calls:
            return {"role": "assistant", "content": self.text or None, "tool_calls": self.tool_calls}
        return self.text


def resolve_model(services: Services, project_id: str, req: RunRequest) -> JudgeModel:
    """The decrypted connection named by the request, as a callable model."""
    with services.sessions() as s:
        row = get_connection(s, project_id, provider=req.model.provider)
        if row is None:
            raise InvalidRequest(f"this project has no LLM connection named {req.model.provider!r}")
        return judge_model(services.settings, row, req.model.model, req.model.params)


def price_book(services: Services, project_id: str) -> PriceBook:
    """The project's prices: the ingestion worker's cached book when this process runs one."""
    if services.processor is not None:
        return services.processor.enricher.price_book(project_id)
    from owlscope.tracing_config.project_prices import project_models

    return PriceBook(load_default_models(), project_models=project_models(services.sessions, project_id))


def _openai_tools(req: RunRequest) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.parameters}} for t in req.tools]


def _openai_stream(model: JudgeModel, req: RunRequest, messages: list[dict[str, Any]],
                   answer: Answer) -> Iterator[dict[str, Any]]:
    import openai  # with the first call, not with the server (see owlscope.evals.judge)

    client = openai_client(model)
    kwargs: dict[str, Any] = {"model": model.model, "messages": messages, "stream": True,
                              "stream_options": {"include_usage": True}, **model.params}
    if req.tools:
        kwargs["tools"] = _openai_tools(req)
    if req.output_schema is not None:
        kwargs["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": req.output_schema, "strict": True}}
    try:
        stream = client.chat.completions.create(**kwargs)
    except openai.BadRequestError as exc:
        if "stream_options" not in str(exc):
            raise openai_error(exc) from exc
        kwargs.pop("stream_options")  # an endpoint that does not know it: answer without usage
        try:
            stream = client.chat.completions.create(**kwargs)
        except openai.OpenAIError as exc2:
            raise openai_error(exc2) from exc2
    except openai.OpenAIError as exc:
        raise openai_error(exc) from exc
    calls: dict[int, dict[str, Any]] = {}
    try:
        for chunk in stream:
            if chunk.model:
                answer.model = chunk.model
            if chunk.usage is not None:
                answer.usage = {"input": chunk.usage.prompt_tokens or 0, "output": chunk.usage.completion_tokens or 0,
                                "total": chunk.usage.total_tokens or 0}
            for choice in chunk.choices or []:
                delta = choice.delta
                if delta is None:
                    continue
                if delta.content:
                    if answer.first_token is None:
                        answer.first_token = time.time()
                    answer.text += delta.content
                    yield {"event": "delta", "text": delta.content}
                for tc in delta.tool_calls or []:
                    if answer.first_token is None:
                        answer.first_token = time.time()
                    call = calls.setdefault(tc.index, {"id": "", "type": "function",
                                                       "function": {"name": "", "arguments": ""}})
                    call["id"] = tc.id or call["id"]
                    if tc.function is not None:
                        call["function"]["name"] += tc.function.name or ""
                        call["function"]["arguments"] += tc.function.arguments or ""
    except openai.OpenAIError as exc:
        raise openai_error(exc) from exc
    for index in sorted(calls):
        call = calls[index]
        answer.tool_calls.append(call)
        yield {"event": "tool_call", "id": call["id"], "name": call["function"]["name"],
               "arguments": call["function"]["arguments"]}


def _anthropic_messages(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """System text and Messages API turns (tool calls and results as content blocks)."""
    system = "\n\n".join(m["content"] or "" for m in messages if m["role"] in ("system", "developer"))
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] in ("system", "developer"):
            continue
        if m["role"] == "tool":
            turns.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": m.get("tool_call_id"),
                                                       "content": m["content"] or ""}]})
        elif m.get("tool_calls"):
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m["content"]}] if m.get("content") else []
            for tc in m["tool_calls"]:
                fn = tc.get("function") or {}
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except ValueError:
                    args = {}
                blocks.append({"type": "tool_use", "id": tc.get("id"), "name": fn.get("name"), "input": args})
            turns.append({"role": "assistant", "content": blocks})
        else:
            turns.append({"role": m["role"], "content": m["content"] or ""})
    return system, turns


def _anthropic_call(model: JudgeModel, req: RunRequest, messages: list[dict[str, Any]],
                    answer: Answer) -> Iterator[dict[str, Any]]:
    system, turns = _anthropic_messages(messages)
    params = dict(model.params)
    payload: dict[str, Any] = {"model": model.model, "max_tokens": int(params.pop("max_tokens", 1024)),
                               "messages": turns,
                               **{k: v for k, v in params.items() if k in ("temperature", "top_p")}}
    if system:
        payload["system"] = system
    tools = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in req.tools]
    if req.output_schema is not None:  # structured output = a forced tool whose input is the answer
        tools.append({"name": STRUCTURED_TOOL, "description": "Answer in this structure.",
                      "input_schema": req.output_schema})
        payload["tool_choice"] = {"type": "tool", "name": STRUCTURED_TOOL}
    if tools:
        payload["tools"] = tools
    payload["stream"] = True
    url, headers = anthropic_request(model)
    try:
        with anthropic_http().stream("POST", url, json=payload, headers=headers) as resp:
            if resp.status_code >= 400:
                resp.read()
                raise anthropic_error(resp)
            yield from _anthropic_events(_sse_events(resp.iter_lines()), req, answer)
    except httpx.HTTPError as exc:
        raise JudgeError("transient", f"cannot reach the LLM endpoint: {exc}") from exc


def _sse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON data) of a server-sent event stream."""
    name, data = "message", ""
    for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif not line and data:
            try:
                yield name, json.loads(data)
            except ValueError:
                pass
            name, data = "message", ""
    if data:
        try:
            yield name, json.loads(data)
        except ValueError:
            pass


def _anthropic_events(events: Iterator[tuple[str, dict[str, Any]]], req: RunRequest,
                      answer: Answer) -> Iterator[dict[str, Any]]:
    """Text deltas as they come; tool uses once their input is complete; usage from the start
    and end events. Structured output arrives as the forced tool's input, shown as it streams."""
    blocks: dict[int, dict[str, Any]] = {}
    for name, data in events:
        kind = data.get("type", name)
        if kind == "message_start":
            msg = data.get("message") or {}
            answer.model = str(msg.get("model") or answer.model)
            answer.usage["input"] = int((msg.get("usage") or {}).get("input_tokens") or 0)
        elif kind == "content_block_start":
            block = dict(data.get("content_block") or {})
            block["json"] = ""
            blocks[int(data.get("index", 0))] = block
        elif kind == "content_block_delta":
            block = blocks.setdefault(int(data.get("index", 0)), {"type": "text", "json": ""})
            delta = data.get("delta") or {}
            piece = delta.get("text") if delta.get("type") == "text_delta" else delta.get("partial_json")
            if not piece:
                continue
            if answer.first_token is None:
                answer.first_token = time.time()
            structured = block.get("type") == "tool_use" and block.get("name") == STRUCTURED_TOOL and req.output_schema
            if delta.get("type") == "text_delta" or structured:
                answer.text += piece
                yield {"event": "delta", "text": piece}
            else:
                block["json"] += piece
        elif kind == "content_block_stop":
            block = blocks.get(int(data.get("index", 0))) or {}
            if block.get("type") == "tool_use" and block.get("name") != STRUCTURED_TOOL:
                call = {"id": str(block.get("id") or ""), "type": "function",
                        "function": {"name": str(block.get("name")), "arguments": block["json"] or "{}"}}
                answer.tool_calls.append(call)
                yield {"event": "tool_call", "id": call["id"], "name": call["function"]["name"],
                       "arguments": call["function"]["arguments"]}
        elif kind == "message_delta":
            answer.usage["output"] = int((data.get("usage") or {}).get("output_tokens") or 0)
        elif kind == "error":
            err = data.get("error") or {}
            raise JudgeError("transient" if err.get("type") == "overloaded_error" else "invalid",
                             str(err.get("message") or "the provider ended the answer with an error"))
    if answer.usage:
        answer.usage["total"] = answer.usage.get("input", 0) + answer.usage.get("output", 0)


def stream_run(services: Services, project_id: str, req: RunRequest, *,
               user_id: str | None = None) -> Iterator[dict[str, Any]]:
    """The events of running `req` (see the module doc). Bad input (a missing variable, an unknown
    connection) raises here, before anything is sent; the call starts when the events are read."""
    messages = compile_messages(req)
    model = resolve_model(services, project_id, req)
    return _events(services, project_id, req, model, messages, user_id)


def _events(services: Services, project_id: str, req: RunRequest, model: JudgeModel,
            messages: list[dict[str, Any]], user_id: str | None) -> Iterator[dict[str, Any]]:
    trace_id, observation_id = uuid.uuid4().hex, uuid.uuid4().hex
    answer = Answer(model=model.model, started=time.time())
    error: JudgeError | None = None
    try:
        if model.adapter in OPENAI_ADAPTERS:
            yield from _openai_stream(model, req, messages, answer)
        elif model.adapter == "anthropic":
            yield from _anthropic_call(model, req, messages, answer)
        else:
            raise JudgeError("invalid", f"adapter {model.adapter!r} is not supported in the playground")
    except JudgeError as exc:
        error = exc
    except Exception as exc:  # noqa: BLE001 - a stream cut mid-way ends in an error event, not a broken page
        log.exception("playground call to %s/%s failed", model.provider, model.model)
        error = JudgeError("transient", f"the answer stopped: {type(exc).__name__}: {exc}")
    answer.ended = time.time()
    cost = price_book(services, project_id).price(answer.model, answer.usage or None).cost_details
    traced = True
    try:
        record_call(services, project_id, req, model, messages, answer, error, trace_id=trace_id,
                    observation_id=observation_id, user_id=user_id)
    except OwlscopeError:  # storage is busy: the answer still stands, without its trace
        traced = False
    if error is not None:
        yield {"event": "error", "message": str(error), "kind": error.kind, "trace_id": trace_id if traced else None}
        return
    yield {
        "event": "done", "text": answer.text, "output": answer.output(req.output_schema is not None),
        "tool_calls": answer.tool_calls, "usage": answer.usage, "cost": cost, "model": answer.model,
        "latency_ms": round((answer.ended - answer.started) * 1000),
        "ttft_ms": round((answer.first_token - answer.started) * 1000) if answer.first_token else None,
        "trace_id": trace_id if traced else None, "observation_id": observation_id if traced else None,
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_call(services: Services, project_id: str, req: RunRequest, model: JudgeModel,
                messages: list[dict[str, Any]], answer: Answer, error: JudgeError | None, *, trace_id: str,
                observation_id: str, user_id: str | None) -> None:
    """Trace the call as the evaluators' judge calls are traced: a trace and its generation,
    accepted like any SDK batch, in the playground's own environment."""
    tools = _openai_tools(req)
    call_input: Any = {"messages": messages, "tools": tools} if tools else messages
    output = None if error else answer.output(req.output_schema is not None)
    params: dict[str, Any] = dict(model.params)
    if req.output_schema is not None:
        params["response_format"] = json.dumps({"type": "json_schema", "json_schema": {"schema": req.output_schema}})
    metadata = {"provider": model.provider, "adapter": model.adapter, "source": req.source or None,
                "variables": req.variables or None, "user_id": user_id}
    now = _iso(time.time())
    generation: dict[str, Any] = {
        "id": observation_id, "traceId": trace_id, "name": "playground-generation",
        "environment": PLAYGROUND_ENVIRONMENT, "startTime": _iso(answer.started), "endTime": _iso(answer.ended),
        "model": answer.model or model.model, "modelParameters": params, "input": call_input, "output": output,
        "metadata": {k: v for k, v in metadata.items() if v is not None},
    }
    if answer.usage:
        generation["usageDetails"] = answer.usage
    if answer.first_token:
        generation["completionStartTime"] = _iso(answer.first_token)
    if error is not None:
        generation.update(level="ERROR", statusMessage=str(error)[:2000])
    events = [
        {"id": uuid.uuid4().hex, "type": "trace-create", "timestamp": now, "body": {
            "id": trace_id, "name": TRACE_NAME, "timestamp": _iso(answer.started),
            "environment": PLAYGROUND_ENVIRONMENT, "input": call_input, "output": output,
            "metadata": generation["metadata"]}},
        {"id": uuid.uuid4().hex, "type": "generation-create", "timestamp": now, "body": generation},
    ]
    accepted, errors = validate_batch(events)
    if errors:
        raise InvalidRequest(f"cannot trace the playground call: {errors[0]['message']}")
    accept_events(services, project_id=project_id, events=accepted)
