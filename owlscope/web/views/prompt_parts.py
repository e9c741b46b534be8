"""What the prompt pages show, computed without I/O: the folder view of prompt names, a version
as text, a line diff of two versions, `{{variables}}` highlighted, SDK snippets, and the form's
input turned into a `CreatePromptRequest` body. (The linked generations are read by
`owlscope.tracing.prompt_usage`.)
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from owlscope.errors import InvalidRequest

_VAR = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}")
_SPLIT = re.compile(r"[\s,]+")
CHAT_ROLES = ("system", "user", "assistant", "developer", "placeholder")


# ---- folders ------------------------------------------------------------------------------------
@dataclass
class Folder:
    name: str  # the last segment
    path: str  # the full folder path, e.g. "team/qa"
    count: int = 0  # prompts below it, at any depth
    updated: str = ""  # the newest lastUpdatedAt below it


@dataclass
class FolderView:
    folders: list[Folder] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    crumbs: list[tuple[str, str]] = field(default_factory=list)  # (segment, folder path)


def folder_view(prompts: Iterable[dict[str, Any]], folder: str = "") -> FolderView:
    """The entries of one folder (names split on `/`): its sub-folders first, then its prompts."""
    folder = folder.strip("/")
    prefix = f"{folder}/" if folder else ""
    view = FolderView()
    subs: dict[str, Folder] = {}
    for p in prompts:
        name = p["name"]
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix):]
        if "/" in rest:
            seg = rest.split("/", 1)[0]
            sub = subs.setdefault(seg, Folder(seg, prefix + seg))
            sub.count += 1
            sub.updated = max(sub.updated, p.get("lastUpdatedAt") or "")
        else:
            view.prompts.append(p)
    view.folders = sorted(subs.values(), key=lambda f: f.name.lower())
    view.prompts.sort(key=lambda p: p["name"].lower())
    parts = folder.split("/") if folder else []
    view.crumbs = [(seg, "/".join(parts[: i + 1])) for i, seg in enumerate(parts)]
    return view


def search_prompts(prompts: Iterable[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """Prompts whose full name or one of whose tags contains `query` (case-insensitive)."""
    q = query.strip().lower()
    return sorted(
        (p for p in prompts if q in p["name"].lower() or any(q in t.lower() for t in p.get("tags") or [])),
        key=lambda p: p["name"].lower(),
    )


# ---- a version as text, variables, diff -------------------------------------------------------------
def version_text(version: dict[str, Any]) -> str:
    """A version's content as plain lines: the text, or each chat message under its role."""
    if version["type"] == "text":
        return str(version["prompt"])
    blocks = []
    for m in version["prompt"]:
        if m.get("type") == "placeholder":
            blocks.append(f"[placeholder: {m['name']}]")
        else:
            blocks.append(f"[{m['role']}]\n{m.get('content') or ''}")
    return "\n\n".join(blocks)


def config_text(config: Any) -> str:
    return json.dumps(config if config is not None else {}, indent=2, ensure_ascii=False, sort_keys=True)


def prompt_variables(version: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(variables, placeholders) of a version, in order of first use."""
    if version["type"] == "text":
        return list(dict.fromkeys(_VAR.findall(str(version["prompt"])))), []
    names: list[str] = []
    holders: list[str] = []
    for m in version["prompt"]:
        if m.get("type") == "placeholder":
            holders.append(m["name"])
        else:
            names += _VAR.findall(m.get("content") or "")
    return list(dict.fromkeys(names)), list(dict.fromkeys(holders))


def highlight_variables(text: str) -> Markup:
    """The text, HTML-escaped, with each `{{variable}}` wrapped in <span class="pr-var">."""
    escaped = str(escape(text))
    return Markup(_VAR.sub(lambda m: f'<span class="pr-var">{m.group(0)}</span>', escaped))


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "equal" | "add" | "del"
    old: int | None  # line number in the old text
    new: int | None
    text: str
    # (piece, changed) for a changed line paired with its counterpart: the words that differ
    segments: tuple[tuple[str, bool], ...] = ()


_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def word_segments(a: str, b: str) -> tuple[tuple[tuple[str, bool], ...], tuple[tuple[str, bool], ...]]:
    """Word-level differences of two paired lines: each line as (piece, changed) runs."""
    ta, tb = _TOKEN.findall(a), _TOKEN.findall(b)
    left: list[tuple[str, bool]] = []
    right: list[tuple[str, bool]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ta, tb, autojunk=False).get_opcodes():
        if i2 > i1:
            left.append(("".join(ta[i1:i2]), tag != "equal"))
        if j2 > j1:
            right.append(("".join(tb[j1:j2]), tag != "equal"))
    return tuple(left), tuple(right)


def line_diff(old: str, new: str) -> list[DiffLine]:
    """A line diff of two texts (difflib): every line once, marked equal, added or deleted; a
    changed line paired with its replacement also says which words changed."""
    a, b = old.splitlines(), new.splitlines()
    out: list[DiffLine] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            out += [DiffLine("equal", i1 + k + 1, j1 + k + 1, a[i1 + k]) for k in range(i2 - i1)]
            continue
        pairs = {k: word_segments(a[i1 + k], b[j1 + k]) for k in range(min(i2 - i1, j2 - j1))} \
            if tag == "replace" else {}
        out += [DiffLine("del", i + 1, None, a[i], pairs[i - i1][0] if i - i1 in pairs else ())
                for i in range(i1, i2)]
        out += [DiffLine("add", None, j + 1, b[j], pairs[j - j1][1] if j - j1 in pairs else ())
                for j in range(j1, j2)]
    return out


def diff_stats(lines: Sequence[DiffLine]) -> dict[str, int]:
    return {"added": sum(ln.kind == "add" for ln in lines), "deleted": sum(ln.kind == "del" for ln in lines)}


# ---- SDK snippets -------------------------------------------------------------------------------------
def _py_args(variables: list[str], placeholders: list[str]) -> str:
    args = [f'{v}="..."' for v in variables] + [f'{p}=[{{"role": "user", "content": "..."}}]' for p in placeholders]
    return ", ".join(args)


def sdk_snippets(version: dict[str, Any], labels: list[str]) -> dict[str, str]:
    """Copyable code that fetches this version with the SDKs (by label when it has one, else by
    version number) and links the generation to it through the OpenAI wrapper."""
    name = json.dumps(version["name"], ensure_ascii=False)
    own = [lb for lb in version.get("labels") or [] if lb != "latest"]
    label = "production" if "production" in own else (own[0] if own else None)
    py_sel = f'label="{label}"' if label else f"version={version['version']}"
    chat = version["type"] == "chat"
    variables, placeholders = prompt_variables(version)
    args = _py_args(variables, placeholders)
    type_arg = ', type="chat"' if chat else ""
    js_opts = [f'label: "{label}"' if label else f"version: {version['version']}"] + (['type: "chat"'] if chat else [])
    js_args = ", ".join(f'{v}: "..."' for v in variables)
    messages = "messages" if chat else '[{"role": "user", "content": text}]'
    compiled = "messages" if chat else "text"
    python = (
        "from langfuse import get_client\n\n"
        "langfuse = get_client()\n"
        f"prompt = langfuse.get_prompt({name}, {py_sel}{type_arg})\n"
        f"{compiled} = prompt.compile({args})\n"
        "config = prompt.config"
    )
    openai = (
        "from langfuse import get_client\n"
        "from langfuse.openai import OpenAI  # traces the call\n\n"
        f"prompt = get_client().get_prompt({name}, {py_sel}{type_arg})\n"
        f"{compiled} = prompt.compile({args})\n"
        "reply = OpenAI().chat.completions.create(\n"
        '    model="gpt-4o-mini",\n'
        f"    messages={messages},\n"
        "    langfuse_prompt=prompt,  # links the generation to this prompt version\n"
        ")"
    )
    js = (
        'import { LangfuseClient } from "@langfuse/client";\n\n'
        "const langfuse = new LangfuseClient();\n"
        f"const prompt = await langfuse.prompt.get({name}, {{ {', '.join(js_opts)} }});\n"
        f"const {compiled} = prompt.compile({{ {js_args} }});"
    )
    return {"python": python, "openai": openai, "js": js}


# ---- the new-version form -------------------------------------------------------------------------------
def split_words(text: str) -> list[str]:
    """Labels or tags typed as a comma- or space-separated list."""
    return [w for w in _SPLIT.split(text or "") if w]


def parse_config(text: str) -> Any:
    """The config field: empty means {}; otherwise a JSON object, or a 400 saying where it breaks."""
    if not (text or "").strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"Config is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(value, dict):
        raise InvalidRequest("Config must be a JSON object, e.g. {\"model\": \"gpt-4o\", \"temperature\": 0.2}")
    return value


def chat_messages(roles: Sequence[str], contents: Sequence[str]) -> list[dict[str, Any]]:
    """The chat editor's rows as messages; a row with role `placeholder` names a placeholder, and
    rows with no content are left out."""
    out: list[dict[str, Any]] = []
    for i, content in enumerate(contents):
        role = (roles[i] if i < len(roles) else "user").strip() or "user"
        if role not in CHAT_ROLES:
            raise InvalidRequest(f"Message {i + 1}: role must be one of {', '.join(CHAT_ROLES)}")
        if role == "placeholder":
            if content.strip():
                out.append({"type": "placeholder", "name": content.strip()})
        elif content.strip():
            out.append({"role": role, "content": content.replace("\r\n", "\n")})
    return out


def create_body(form: dict[str, Any]) -> dict[str, Any]:
    """The form (as `form_values` keeps it) as a `CreatePromptRequest` body for `parse_create`."""
    kind = form["type"]
    if kind == "chat":
        prompt: Any = chat_messages([m["role"] for m in form["messages"]], [m["content"] for m in form["messages"]])
        if not prompt:
            raise InvalidRequest("Add at least one message to the chat prompt")
    else:
        prompt = form["text"].replace("\r\n", "\n")
        if not prompt.strip():
            raise InvalidRequest("The prompt text is empty")
    labels = [lb for lb in split_words(form["labels"]) if lb != "latest"]
    return {
        "name": form["name"].strip(), "type": kind, "prompt": prompt, "config": parse_config(form["config"]),
        "labels": labels, "tags": split_words(form["tags"]), "commitMessage": form["commit_message"].strip() or None,
    }


def form_from_version(version: dict[str, Any] | None, name: str = "") -> dict[str, Any]:
    """The form's values: a copy of `version` (for its next version), or empty for a new prompt."""
    if version is None:
        return {"name": name, "type": "text", "text": "", "config": "{}", "labels": "", "tags": "",
                "commit_message": "",
                "messages": [{"role": "system", "content": ""}, {"role": "user", "content": ""}]}
    chat = version["type"] == "chat"
    messages = [
        {"role": "placeholder", "content": m["name"]} if m.get("type") == "placeholder"
        else {"role": m["role"], "content": m.get("content") or ""}
        for m in (version["prompt"] if chat else [])
    ] or [{"role": "system", "content": ""}, {"role": "user", "content": ""}]
    return {
        "name": version["name"], "type": version["type"], "text": "" if chat else str(version["prompt"]),
        "config": config_text(version.get("config")), "labels": "", "tags": ", ".join(version.get("tags") or []),
        "commit_message": "", "messages": messages,
    }
