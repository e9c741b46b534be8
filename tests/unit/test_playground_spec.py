"""The playground's pure parts: run requests, compiling messages (variables, placeholders), the
editor's state from recorded generations of several instrumentations, and the prompt body saved."""

from __future__ import annotations

import json

import pytest

from owlscope.errors import InvalidRequest
from owlscope.playground.run import _anthropic_events, _anthropic_messages, _sse_events
from owlscope.playground.save import SavePromptRequest, prompt_body
from owlscope.playground.sources import replay_state, tools_from
from owlscope.playground.spec import RunRequest, compile_messages, parse_run

MODEL = {"provider": "p", "model": "m"}


def req(messages: list[dict], **extra) -> RunRequest:
    return parse_run({"messages": messages, "model": MODEL, **extra})


def test_variables_are_filled_and_missing_ones_named() -> None:
    r = req([{"role": "system", "content": "Hi {{ name }}, {{name}}!"}, {"role": "user", "content": "{{q}} {{other}}"}],
            variables={"name": "Ada", "q": "why?", "other": "{{name}}"})
    assert compile_messages(r) == [{"role": "system", "content": "Hi Ada, Ada!"},
                                   {"role": "user", "content": "why? {{name}}"}]  # values are not re-filled
    with pytest.raises(InvalidRequest, match="fill in the variables a, b"):
        compile_messages(req([{"role": "user", "content": "{{a}} {{b}} {{c}}"}], variables={"c": "x"}))


def test_placeholders_take_lists_json_text_or_nothing() -> None:
    msgs = [{"type": "placeholder", "name": "h"}, {"role": "user", "content": "now"}]
    filled = compile_messages(req(msgs, placeholders={"h": [{"role": "assistant", "content": "a"}]}))
    assert filled == [{"role": "assistant", "content": "a"}, {"role": "user", "content": "now"}]
    assert compile_messages(req(msgs, placeholders={"h": '{"role": "user", "content": "b"}'}))[0]["content"] == "b"
    assert compile_messages(req(msgs, placeholders={"h": ""})) == [{"role": "user", "content": "now"}]
    for bad in ("not json", [{"role": "wizard", "content": "x"}], 5):
        with pytest.raises(InvalidRequest, match="placeholder 'h'"):
            compile_messages(req(msgs, placeholders={"h": bad}))
    with pytest.raises(InvalidRequest, match="there is no message"):
        compile_messages(req(msgs[:1], placeholders={"h": []}))


def test_tool_messages_keep_their_ids() -> None:
    calls = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    out = compile_messages(req([{"role": "assistant", "content": "", "tool_calls": calls},
                                {"role": "tool", "content": "42", "tool_call_id": "c1"}]))
    assert out == [{"role": "assistant", "content": None, "tool_calls": calls},
                   {"role": "tool", "content": "42", "tool_call_id": "c1"}]
    system, turns = _anthropic_messages([{"role": "system", "content": "S"}, *out])
    assert system == "S"
    assert turns[0] == {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "f", "input": {}}]}
    assert turns[1]["content"][0] == {"type": "tool_result", "tool_use_id": "c1", "content": "42"}


@pytest.mark.parametrize(("params", "message"), [
    ({"temperature": 3}, "temperature must be between 0 and 2"),
    ({"max_tokens": 1.5}, "max_tokens must be a whole number"),
    ({"top_p": "x"}, "top_p must be a number"),
    ({"n": 2}, "unknown model parameter 'n'"),
    ({"max_tokens": "Infinity"}, "max_tokens must be a number"),  # as the OpenAI integration records "no limit"
    ({"temperature": True}, "temperature must be a number"),
])
def test_parameters_are_checked(params: dict, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_run({"messages": [{"role": "user", "content": "x"}], "model": {**MODEL, "params": params}})


def test_parameters_are_numbers_and_empty_ones_dropped() -> None:
    r = parse_run({"messages": [{"role": "user", "content": "x"}],
                   "model": {**MODEL, "params": {"temperature": "0.5", "max_tokens": 10.0, "top_p": ""}}})
    assert r.model.params == {"temperature": 0.5, "max_tokens": 10}


def test_replay_of_the_langfuse_openai_integration() -> None:
    state = replay_state(
        {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
         "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                                                     "parameters": {"type": "object"}}}]},
        {"temperature": "0.3", "max_completion_tokens": "99", "stream": True, "max_tokens": "Infinity",
         "response_format": json.dumps({"type": "json_schema", "json_schema": {"schema": {"type": "object"}}})},
        None)
    assert state["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    assert state["model"]["params"] == {"temperature": 0.3, "max_tokens": 99}
    assert state["tools"] == [{"name": "f", "description": "d", "parameters": {"type": "object"}}]
    assert state["output_schema"] == {"type": "object"}


def test_replay_of_langchain_otel_and_plain_inputs() -> None:
    lc = replay_state([{"type": "human", "content": "hi"}, {"type": "ai", "content": "yo"}], None, None)
    assert lc["messages"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    otel = replay_state([{"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "image"}]}], {}, None)
    assert otel["messages"] == [{"role": "user", "content": "a\n[image]"}]
    assert replay_state("just text", None, None)["messages"] == [{"role": "user", "content": "just text"}]
    assert replay_state({"question": "q"}, None, None)["messages"] == [{"role": "user", "content": '{"question": "q"}'}]
    calls = [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    tooled = replay_state([{"role": "assistant", "content": None, "tool_calls": calls},
                           {"role": "tool", "content": "r", "tool_call_id": "1"}],
                          None, {"tools": [{"name": "g", "input_schema": {"type": "object"}}]})
    assert tooled["messages"][0] == {"role": "assistant", "content": "", "tool_calls": calls}
    assert tooled["messages"][1]["tool_call_id"] == "1"
    assert tooled["tools"] == [{"name": "g", "description": "", "parameters": {"type": "object"}}]
    assert tools_from("not json") == [] and tools_from([{"type": "function"}]) == []


def test_prompt_body_keeps_templates_and_puts_the_model_in_the_config() -> None:
    body = prompt_body(SavePromptRequest.model_validate({
        "name": "n", "messages": [{"role": "system", "content": "{{x}}"}, {"type": "placeholder", "name": "h"}],
        "model": {"provider": "p", "model": "m", "params": {"temperature": 0.1}},
        "output_schema": {"type": "object"}, "labels": ["production"], "commit_message": "  "}))
    assert body["prompt"] == [{"role": "system", "content": "{{x}}"}, {"type": "placeholder", "name": "h"}]
    assert body["config"] == {"model": "m", "temperature": 0.1, "response_format": {
        "type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}}}
    assert body["commitMessage"] is None and body["labels"] == ["production"]
    text = prompt_body(SavePromptRequest.model_validate({"name": "t", "type": "text",
                                                        "messages": [{"role": "user", "content": "Hi"}]}))
    assert (text["type"], text["prompt"], text["config"]) == ("text", "Hi", {})


def test_anthropic_stream_events() -> None:
    lines = [
        "event: message_start", 'data: {"type": "message_start", "message": {"model": "c", "usage": {"input_tokens": 4}}}',
        "", 'data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}', "",
        'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}', "",
        'data: {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "f"}}',
        "", 'data: {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\\"a\\""}}',
        "", 'data: {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ": 1}"}}',
        "", 'data: {"type": "content_block_stop", "index": 1}', "",
        'data: {"type": "message_delta", "usage": {"output_tokens": 3}}', "",
    ]
    from owlscope.playground.run import Answer

    answer = Answer()
    out = list(_anthropic_events(_sse_events(iter(lines)), req([{"role": "user", "content": "x"}]), answer))
    assert out == [{"event": "delta", "text": "Hi"},
                   {"event": "tool_call", "id": "t", "name": "f", "arguments": '{"a": 1}'}]
    assert answer.usage == {"input": 4, "output": 3, "total": 7} and answer.model == "c"
    with pytest.raises(Exception, match="overloaded"):
        list(_anthropic_events(iter([("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                          "message": "overloaded"}})]),
                               req([{"role": "user", "content": "x"}]), Answer()))
