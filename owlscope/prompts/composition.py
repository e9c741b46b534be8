"""Prompt composition: `@@@langfusePrompt:name=X|version=N@@@` and
`@@@langfusePrompt:name=X|label=L@@@` inside a text prompt (or a chat message's content) are
replaced by the referenced text prompt, itself resolved, up to MAX_DEPTH levels deep.

Pure: the caller passes a `lookup` that finds a referenced version (from the database, or from
a dict in tests). Errors are `InvalidRequest` (400) with a message that names the culprit.

Rules:
- only text prompts can be referenced; a chat prompt's message contents may reference them;
- a tag whose first parameter is not `name=` or that has neither `version=` nor `label=` is not
  a reference and stays as it is;
- a prompt name may appear only once on a chain from the root (a reference back to any version of
  a prompt already being resolved is a cycle);
- the root is level 0; references may nest to level MAX_DEPTH.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from owlscope.errors import InvalidRequest

MAX_DEPTH = 5
TAG_RE = re.compile(r"@@@langfusePrompt:(.*?)@@@")


class CompositionError(InvalidRequest):
    """A prompt's references cannot be resolved (missing, cyclic, too deep, not a text prompt)."""


@dataclass(frozen=True)
class DependencyTag:
    name: str
    version: int | None = None
    label: str | None = None

    def describe(self) -> str:
        return f"'{self.name}' " + (f"version {self.version}" if self.version is not None else f"label '{self.label}'")


@dataclass(frozen=True)
class PromptNode:
    """What composition needs of a stored version."""

    id: str
    name: str
    version: int
    type: str
    prompt: Any
    labels: tuple[str, ...] = ()

    def ref(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "version": self.version}


Lookup = Callable[[DependencyTag], "PromptNode | None"]


def parse_tag(inner: str) -> DependencyTag | None:
    """The parameters between `@@@langfusePrompt:` and `@@@`, or None if this is not a reference."""
    parts = inner.split("|")
    if not parts[0].startswith("name="):
        return None
    params: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if sep:
            params[key.strip()] = value
    name = params.get("name", "")
    if not name:
        return None
    if "version" in params:
        try:
            version = int(params["version"])
        except ValueError:
            return None
        return DependencyTag(name=name, version=version) if version > 0 else None
    label = params.get("label")
    return DependencyTag(name=name, label=label) if label else None


def parse_tags(text: str) -> list[DependencyTag]:
    """The distinct references in a string, in order of first appearance."""
    found: dict[DependencyTag, None] = {}
    for m in TAG_RE.finditer(text):
        tag = parse_tag(m.group(1))
        if tag is not None:
            found.setdefault(tag)
    return list(found)


def _texts(prompt_type: str, prompt: Any) -> list[str]:
    if prompt_type == "text":
        return [prompt] if isinstance(prompt, str) else []
    return [m["content"] for m in prompt or [] if isinstance(m, dict) and isinstance(m.get("content"), str)]


def dependency_tags(prompt_type: str, prompt: Any) -> list[DependencyTag]:
    """Every reference in a text prompt or in a chat prompt's message contents."""
    found: dict[DependencyTag, None] = {}
    for text in _texts(prompt_type, prompt):
        for tag in parse_tags(text):
            found.setdefault(tag)
    return list(found)


def has_tags(prompt_type: str, prompt: Any) -> bool:
    return any("@@@langfusePrompt:" in t for t in _texts(prompt_type, prompt))


class _Resolver:
    def __init__(self, root: PromptNode, lookup: Lookup, max_depth: int):
        self.root = root
        self.lookup = lookup
        self.max_depth = max_depth
        self.dependencies: dict[str, list[dict[str, Any]]] = {}

    def text(self, text: str, node: PromptNode, chain: tuple[PromptNode, ...]) -> str:
        tags = parse_tags(text)
        if not tags:
            return text
        level = len(chain)  # the level the references of `node` sit at
        if level > self.max_depth:
            path = " -> ".join(f"{n.name} v{n.version}" for n in chain)
            raise CompositionError(
                f"Prompt references are nested deeper than {self.max_depth} levels: {path} -> ..."
            )
        resolved: dict[DependencyTag, str] = {}
        for tag in tags:
            child = self.lookup(tag)
            if child is None:
                raise CompositionError(
                    f"Prompt '{node.name}' version {node.version} references prompt {tag.describe()}, "
                    "which does not exist"
                )
            if child.type != "text":
                raise CompositionError(
                    f"Prompt '{node.name}' version {node.version} references {tag.describe()}, which is a "
                    f"{child.type} prompt; only text prompts can be referenced"
                )
            if any(child.id == n.id or child.name == n.name for n in chain):
                path = " -> ".join(f"{n.name} v{n.version}" for n in chain)
                raise CompositionError(
                    f"Circular prompt reference: {path} -> {child.name} v{child.version}"
                )
            refs = self.dependencies.setdefault(node.id, [])
            if child.ref() not in refs:
                refs.append(child.ref())
            resolved[tag] = self.text(child.prompt, child, (*chain, child))

        def substitute(m: re.Match[str]) -> str:
            tag = parse_tag(m.group(1))
            return resolved[tag] if tag in resolved else m.group(0)

        return TAG_RE.sub(substitute, text)


def resolve(root: PromptNode, lookup: Lookup, *, max_depth: int = MAX_DEPTH) -> tuple[Any, dict[str, Any] | None]:
    """The root's content with every reference replaced, and the resolution graph
    (`{"root": {id, name, version}, "dependencies": {parent id: [refs]}}`, None without references)."""
    if not has_tags(root.type, root.prompt):
        return root.prompt, None
    r = _Resolver(root, lookup, max_depth)
    chain = (root,)
    if root.type == "text":
        content: Any = r.text(root.prompt, root, chain)
    else:
        content = []
        for msg in root.prompt:
            if isinstance(msg, dict) and isinstance(msg.get("content"), str):
                msg = {**msg, "content": r.text(msg["content"], root, chain)}
            content.append(msg)
    if not r.dependencies:
        return content, None
    return content, {"root": root.ref(), "dependencies": r.dependencies}
