"""Where a playground session starts: empty, a prompt version (text or chat), or a traced
generation (span replay: its messages, model, parameters and tools).

Each returns the editor's state as a plain dict: `messages` (the editor's shape: role and content,
placeholders as `{"type": "placeholder", "name"}`, tool calls kept), `model` (`{"model", "params"}`),
`tools` (`[{"name", "description", "parameters"}]`), `output_schema` and `source` (what it came from).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from owlscope.errors import NotFound
from owlscope.playground.spec import PARAMS, ROLES, check_params
from owlscope.prompts import prompt_store
from owlscope.tracing import get_observation

if TYPE_CHECKING:
    from owlscope.services import Services

ROLE_ALIASES = {"human": "user", "ai": "assistant", "model": "assistant", "bot": "assistant", "function": "tool"}


def empty_state() -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                         {"role": "user", "content": ""}],
            "model": {"model": "", "params": {}}, "tools": [], "output_schema": None, "source": None}


# ---- prompts -----------------------------------------------------------------------------------
def from_prompt(services: Services, project_id: str, name: str, *, version: int | None = None,
                label: str | None = None) -> dict[str, Any]:
    """A prompt version in the editor: a text prompt as one user message, a chat prompt's messages
    and placeholders as they are; model, parameters, tools and output schema from its config."""
    prompt = prompt_store(services).get(project_id, name, version=version, label=label)
    if prompt["type"] == "text":
        messages: list[dict[str, Any]] = [{"role": "user", "content": str(prompt["prompt"])}]
    else:
        messages = [{"type": "placeholder", "name": m["name"]} if m.get("type") == "placeholder"
                    else {"role": m["role"], "content": m["content"]} for m in prompt["prompt"]]
    config = prompt.get("config") if isinstance(prompt.get("config"), dict) else {}
    return {
        "messages": messages, "model": {"model": str(config.get("model") or ""), "params": _params(config)},
        "tools": tools_from(config.get("tools")), "output_schema": output_schema_from(config),
        "source": {"type": "prompt", "name": prompt["name"], "version": prompt["version"],
                   "promptType": prompt["type"]},
    }


# ---- traced generations ------------------------------------------------------------------------
def from_observation(services: Services, project_id: str, observation_id: str) -> dict[str, Any]:
    """A traced generation in the editor (a 404 when the project has no such observation)."""
    obs = get_observation(services.olap, project_id, observation_id)
    if obs is None:
        raise NotFound("Observation not found. It may not have arrived yet, or it belongs to another project.")
    state = replay_state(obs.get("input"), obs.get("modelParameters"), obs.get("metadata"))
    state["model"]["model"] = obs.get("model") or ""
    state["source"] = {"type": "observation", "id": obs["id"], "traceId": obs["traceId"],
                       "name": obs.get("name")}
    return state


def replay_state(call_input: Any, model_parameters: Any, metadata: Any) -> dict[str, Any]:
    """Messages, parameters, tools and output schema from what an instrumentation recorded.

    Input shapes: a list of chat messages (OpenAI, LangChain, OpenTelemetry GenAI `parts`), an
    object with `messages` (and `tools`: the Langfuse OpenAI integration), or anything else as one
    user message."""
    tools: list[dict[str, Any]] = []
    if isinstance(call_input, dict) and isinstance(call_input.get("messages"), list):
        tools = tools_from(call_input.get("tools") or call_input.get("functions"))
        raw = call_input["messages"]
    elif isinstance(call_input, list) and call_input and all(isinstance(m, dict) for m in call_input):
        raw = call_input
    else:
        text = call_input if isinstance(call_input, str) else json.dumps(call_input, ensure_ascii=False)
        raw = [{"role": "user", "content": "" if call_input is None else text}]
    messages = [m for m in (_message(m) for m in raw) if m is not None]
    params = model_parameters if isinstance(model_parameters, dict) else {}
    if not tools and isinstance(metadata, dict):
        tools = tools_from(metadata.get("tools"))
    return {"messages": messages or empty_state()["messages"], "model": {"model": "", "params": _params(params)},
            "tools": tools, "output_schema": output_schema_from(params), "source": None}


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text, name what is not text
        out = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict):
                text = part.get("text") if part.get("text") is not None else part.get("content")
                out.append(str(text) if isinstance(text, str) else f"[{part.get('type', 'part')}]")
        return "\n".join(out)
    return json.dumps(content, ensure_ascii=False)


def _message(raw: dict[str, Any]) -> dict[str, Any] | None:
    role = str(raw.get("role") or raw.get("type") or "user").lower()
    role = ROLE_ALIASES.get(role, role)
    if role not in ROLES:
        return None
    content = raw["content"] if "content" in raw else raw.get("parts")
    msg: dict[str, Any] = {"role": role, "content": _text(content)}
    calls = raw.get("tool_calls")
    if role == "assistant" and isinstance(calls, list) and calls:
        msg["tool_calls"] = [c for c in calls if isinstance(c, dict)]
    if role == "tool":
        msg["tool_call_id"] = str(raw.get("tool_call_id") or "")
    return msg


def tools_from(value: Any) -> list[dict[str, Any]]:
    """Tools in OpenAI's shape (`{"type": "function", "function": {...}}`), as functions, or
    Anthropic's (`input_schema`), as the editor's `{name, description, parameters}`."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    out = []
    for t in value if isinstance(value, list) else []:
        if not isinstance(t, dict):
            continue
        fn = t.get("function") if isinstance(t.get("function"), dict) else t
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            continue
        params = fn.get("parameters") or fn.get("input_schema") or {"type": "object", "properties": {}}
        out.append({"name": name, "description": str(fn.get("description") or ""),
                    "parameters": params if isinstance(params, dict) else {"type": "object", "properties": {}}})
    return out


def output_schema_from(params: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema of a `response_format` (object or JSON text) of type json_schema."""
    fmt = params.get("response_format")
    if isinstance(fmt, str):
        try:
            fmt = json.loads(fmt)
        except ValueError:
            return None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        inner = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else {}
        schema = inner.get("schema")
        return schema if isinstance(schema, dict) else None
    return None


def _params(values: dict[str, Any]) -> dict[str, Any]:
    """The known parameters that hold valid values (recorded parameters are often text)."""
    out = {}
    for key in PARAMS:
        if key in values:
            try:
                out.update(check_params({key: values[key]}))
            except ValueError:
                continue
    if "max_tokens" not in out and "max_completion_tokens" in values:
        try:
            out.update(check_params({"max_tokens": values["max_completion_tokens"]}))
        except ValueError:
            pass
    return out
