"""What one playground run asks for, validated, and the messages it sends once compiled.

A run is the editor's messages (system, user, assistant, tool messages and named placeholders),
the values of their `{{variables}}`, the messages that fill each placeholder, optional tools
(JSON schema of their arguments) and an optional JSON schema for structured output, and one model:
a project LLM connection (by provider name), a model name and its parameters. Side by side is the
same request sent once per column with another model.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from owlscope.errors import InvalidRequest
from owlscope.prompts.model import fill_variables, variables
from owlscope.tracing_config.common import parse_input

ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_MESSAGES = 200
MAX_TOOLS = 32
MAX_COLUMNS = 4
# Parameter name -> (type, minimum, maximum); anything else is refused, not silently dropped.
PARAMS: dict[str, tuple[type, float, float]] = {
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "max_tokens": (int, 1, 1_000_000),
    "frequency_penalty": (float, -2.0, 2.0),
    "presence_penalty": (float, -2.0, 2.0),
    "seed": (int, -(2**63), 2**63 - 1),
}


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["chatmessage", "placeholder"] | None = None
    role: str | None = None
    content: str | None = ""
    name: str | None = None  # the placeholder's name
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    @property
    def is_placeholder(self) -> bool:
        return self.type == "placeholder"


class Tool(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ModelChoice(BaseModel):
    model_config = ConfigDict(extra="ignore")

    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_params(value)


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    variables: dict[str, str] = Field(default_factory=dict)
    placeholders: dict[str, Any] = Field(default_factory=dict)
    tools: list[Tool] = Field(default_factory=list, max_length=MAX_TOOLS)
    output_schema: dict[str, Any] | None = None
    model: ModelChoice
    source: dict[str, Any] | None = None  # where the messages came from (prompt or observation), for the trace


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """Known model parameters as numbers in range; empty values dropped."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None or value == "":
            continue
        if key not in PARAMS:
            raise ValueError(f"unknown model parameter {key!r}; known: {', '.join(PARAMS)}")
        kind, low, high = PARAMS[key]
        try:
            as_float = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key} must be a number") from None
        if isinstance(value, bool) or not math.isfinite(as_float):
            raise ValueError(f"{key} must be a number")
        number = int(as_float) if kind is int else as_float
        if kind is int and as_float != number:
            raise ValueError(f"{key} must be a whole number")
        if not low <= number <= high:
            raise ValueError(f"{key} must be between {low:g} and {high:g}")
        out[key] = number
    return out


def parse_run(body: Any) -> RunRequest:
    """A run request from a JSON body; InvalidRequest (400) when it does not fit."""
    req = parse_input(RunRequest, body)
    for i, m in enumerate(req.messages):
        if m.is_placeholder:
            if not (m.name or "").strip():
                raise InvalidRequest(f"messages[{i}] is a placeholder and needs a name")
        elif m.role not in ROLES:
            raise InvalidRequest(f"messages[{i}].role must be one of {', '.join(ROLES)}")
    if len({t.name for t in req.tools}) != len(req.tools):
        raise InvalidRequest("tool names must be unique")
    for t in req.tools:
        if t.parameters.get("type") != "object":
            raise InvalidRequest(f"the parameters of tool {t.name!r} must be a JSON schema of type object")
    if req.output_schema is not None and req.output_schema.get("type") != "object":
        raise InvalidRequest("the structured output schema must be a JSON schema of type object")
    return req


def template_variables(messages: list[Message]) -> list[str]:
    """The `{{variables}}` the messages use, in order of first use."""
    return list(dict.fromkeys(v for m in messages if not m.is_placeholder for v in variables(m.content or "")))


def _placeholder_messages(name: str, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidRequest(f"placeholder {name!r} must be a JSON list of messages") from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidRequest(f"placeholder {name!r} must be a JSON list of messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content", ""), str):
            raise InvalidRequest(f"placeholder {name!r} message {i} needs a role ({', '.join(ROLES)}) "
                                 "and a string content")
        out.append(m)
    return out


def compile_messages(req: RunRequest) -> list[dict[str, Any]]:
    """The messages to send: variables filled in, placeholders replaced by their messages.

    A variable without a value or a placeholder without messages is a 400 that names them."""
    missing = [v for v in template_variables(req.messages) if v not in req.variables]
    if missing:
        raise InvalidRequest(f"fill in the variable{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    out: list[dict[str, Any]] = []
    for m in req.messages:
        if m.is_placeholder:
            name = (m.name or "").strip()
            if name not in req.placeholders:
                raise InvalidRequest(f"fill in the placeholder {name} (a JSON list of messages)")
            out.extend(_placeholder_messages(name, req.placeholders[name]))
            continue
        msg: dict[str, Any] = {"role": m.role, "content": fill_variables(m.content or "", req.variables)}
        if m.role == "assistant" and m.tool_calls:
            msg["tool_calls"] = m.tool_calls
            msg["content"] = msg["content"] or None
        if m.role == "tool":
            msg["tool_call_id"] = m.tool_call_id or ""
        out.append(msg)
    if not out:
        raise InvalidRequest("there is no message to send")
    return out
