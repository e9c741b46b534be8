"""Prompt input validation and the API shape of a prompt version.

Pure: no I/O. Used by the API router and the UI alike, so every message here is written for the
person who sent the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from owlscope.errors import InvalidRequest
from owlscope.wire import iso

LATEST = "latest"
PRODUCTION = "production"
TYPES = ("text", "chat")
MAX_NAME_LENGTH = 255
MAX_LABEL_LENGTH = 36
MAX_TAG_LENGTH = 255

_LABEL_RE = re.compile(r"^[a-z0-9_\-.]+$")
_VARIABLE_RE = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}")
# `|` and `@@@` would break composition tags (@@@langfusePrompt:name=X|label=L@@@).
_NAME_FORBIDDEN = ("|", "@@@")


def validate_name(name: Any) -> str:
    """A prompt name: folders separated by `/`, no leading/trailing slash, no empty segment, not `new`."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequest("Prompt name is required and must be a non-empty string")
    if name != name.strip():
        raise InvalidRequest(f"Prompt name {name!r} must not start or end with whitespace")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidRequest(f"Prompt name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}")
    if name.startswith("/") or name.endswith("/"):
        raise InvalidRequest(f"Prompt name {name!r} must not start or end with '/'")
    if "//" in name:
        raise InvalidRequest(f"Prompt name {name!r} must not contain empty folder segments ('//')")
    if name == "new":
        raise InvalidRequest("Prompt name 'new' is reserved; choose another name")
    for bad in _NAME_FORBIDDEN:
        if bad in name:
            raise InvalidRequest(f"Prompt name {name!r} must not contain {bad!r}")
    if any(ord(c) < 32 for c in name):
        raise InvalidRequest("Prompt name must not contain control characters")
    return name


def validate_label(label: Any, *, allow_latest: bool = False) -> str:
    if not isinstance(label, str) or not label:
        raise InvalidRequest("Labels must be non-empty strings")
    if len(label) > MAX_LABEL_LENGTH:
        raise InvalidRequest(f"Label {label!r} is longer than {MAX_LABEL_LENGTH} characters")
    if not _LABEL_RE.match(label):
        raise InvalidRequest(
            f"Label {label!r} is invalid: use lowercase letters, digits, '_', '-' and '.' only"
        )
    if label == LATEST and not allow_latest:
        raise InvalidRequest("Label 'latest' is always assigned to the newest prompt version; it cannot be set")
    return label


def validate_labels(labels: Any, *, field_name: str = "labels") -> list[str]:
    if labels is None:
        return []
    if not isinstance(labels, list):
        raise InvalidRequest(f"{field_name} must be a list of strings")
    return list(dict.fromkeys(validate_label(label) for label in labels))


def validate_tags(tags: Any) -> list[str] | None:
    """None means "not given" (keep the name's current tags)."""
    if tags is None:
        return None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidRequest("tags must be a list of strings")
    out = []
    for t in tags:
        t = t.strip()
        if not t:
            raise InvalidRequest("tags must not be empty strings")
        if len(t) > MAX_TAG_LENGTH:
            raise InvalidRequest(f"tag {t[:40]!r}... is longer than {MAX_TAG_LENGTH} characters")
        out.append(t)
    return list(dict.fromkeys(out))


def _message(i: int, msg: Any) -> dict[str, Any]:
    if not isinstance(msg, dict):
        raise InvalidRequest(f"prompt[{i}] must be an object with role and content, or a placeholder")
    if msg.get("type") == "placeholder":
        name = msg.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequest(f"prompt[{i}] is a placeholder and needs a non-empty 'name'")
        return {"type": "placeholder", "name": name}
    role, content = msg.get("role"), msg.get("content")
    if not isinstance(role, str) or not role:
        raise InvalidRequest(f"prompt[{i}] needs a 'role' string")
    if not isinstance(content, str):
        raise InvalidRequest(f"prompt[{i}] needs a 'content' string")
    if msg.get("type") not in (None, "chatmessage"):
        raise InvalidRequest(f"prompt[{i}] has unknown type {msg.get('type')!r}: use 'chatmessage' or 'placeholder'")
    out: dict[str, Any] = {"role": role, "content": content}
    if msg.get("type") == "chatmessage":
        out["type"] = "chatmessage"
    return out


def variables(text: str) -> list[str]:
    """`{{name}}` variables in a template, in order of first use."""
    return list(dict.fromkeys(_VARIABLE_RE.findall(text)))


def fill_variables(text: str, values: dict[str, str]) -> str:
    """`text` with each `{{name}}` that `values` has replaced by its value (others are kept)."""
    return _VARIABLE_RE.sub(lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), text)


def validate_content(prompt_type: str, prompt: Any) -> Any:
    """A text prompt is a string; a chat prompt a list of messages and placeholders."""
    if prompt_type == "text":
        if not isinstance(prompt, str):
            if isinstance(prompt, list):
                raise InvalidRequest("prompt is a list of messages: set type to 'chat'")
            raise InvalidRequest("prompt of a text prompt must be a string")
        return prompt
    if not isinstance(prompt, list):
        raise InvalidRequest("prompt of a chat prompt must be a list of messages")
    messages = [_message(i, m) for i, m in enumerate(prompt)]
    placeholders = {m["name"] for m in messages if m.get("type") == "placeholder"}
    used = {v for m in messages if "content" in m for v in variables(m["content"])}
    clash = sorted(placeholders & used)
    if clash:
        raise InvalidRequest(f"variables and placeholders must have different names; both use: {', '.join(clash)}")
    return messages


@dataclass
class PromptInput:
    """A validated request for a new prompt version."""

    name: str
    type: str
    prompt: Any
    config: Any = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    tags: list[str] | None = None
    commit_message: str | None = None


def parse_create(body: Any) -> PromptInput:
    """Validate a CreatePromptRequest (text or chat) body."""
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    prompt_type = body.get("type") or "text"
    if prompt_type not in TYPES:
        raise InvalidRequest(f"type must be 'text' or 'chat', not {prompt_type!r}")
    if "prompt" not in body:
        raise InvalidRequest("prompt is required")
    commit = body.get("commitMessage")
    if commit is not None and not isinstance(commit, str):
        raise InvalidRequest("commitMessage must be a string")
    config = body.get("config")
    return PromptInput(
        name=validate_name(body.get("name")),
        type=prompt_type,
        prompt=validate_content(prompt_type, body.get("prompt")),
        config={} if config is None else config,
        labels=validate_labels(body.get("labels")),
        tags=validate_tags(body.get("tags")),
        commit_message=commit,
    )


def to_api(row: Any, *, prompt: Any = None, resolution_graph: dict | None = None) -> dict[str, Any]:
    """The OpenAPI `Prompt` (TextPrompt | ChatPrompt) for a stored version; `prompt` overrides the
    stored content with its resolved form."""
    return {
        "id": row.id,
        "name": row.name,
        "version": row.version,
        "type": row.type,
        "prompt": row.prompt if prompt is None else prompt,
        "config": row.config if row.config is not None else {},
        "labels": list(row.labels or []),
        "tags": list(row.tags or []),
        "commitMessage": row.commit_message,
        "resolutionGraph": resolution_graph,
        "projectId": row.project_id,
        "createdBy": row.created_by,
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.updated_at),
    }
