"""Presentation helpers of the tracing pages (not a router): number formats as Jinja filters, and
inputs/outputs rendered for people — chat messages as a conversation, JSON as a collapsible tree,
long text folded.

`FILTERS` are registered with the others when the app's template environment is built
(owlscope.web.templating.build_templates).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from markupsafe import Markup, escape

from owlscope.web.markdown import looks_like_markdown, markdown_block

_DATA_IMAGE = re.compile(r"^data:image/(png|jpe?g|gif|webp);base64,[A-Za-z0-9+/=]+$")
FOLD_CHARS = 1200  # text longer than this starts folded
TREE_MAX_NODES = 4000  # bigger JSON is shown as pretty-printed text instead of a tree
OPEN_DEPTH = 2  # tree levels open at first
CHAT_ROLES = {"system", "user", "assistant", "tool", "function", "developer", "model", "human", "ai"}


def score_value(score: dict[str, Any]) -> str:
    """A score's value as people read it (ScoreV1/Score dicts)."""
    dt = score.get("dataType")
    if dt == "BOOLEAN":
        return str(score.get("stringValue") or ("True" if score.get("value") == 1 else "False"))
    if dt in ("CATEGORICAL", "TEXT", "CORRECTION"):
        return str(score.get("stringValue") or "")
    v = score.get("value")
    if v is None:
        return "—"
    return f"{v:.4f}".rstrip("0").rstrip(".") if isinstance(v, float) and not v.is_integer() else str(int(v))


def iso_time(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def local_time(value: datetime | str | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> Markup:
    """A <time> element in UTC that owlscope-tracing.js shows in the reader's time zone."""
    if value is None:
        return Markup('<span class="muted">—</span>')
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return Markup(escape(value))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(UTC).strftime(fmt) + " UTC"
    mode = "datetime" if "%d" in fmt and "%S" in fmt else ("time" if "%d" not in fmt else "short")
    return Markup('<time datetime="%s" data-local="%s">%s</time>') % (iso_time(value), mode, text)


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---- inputs and outputs ----------------------------------------------------------------------
def _maybe_json(value: Any) -> Any:
    """A string that holds a JSON object or array, parsed; anything else unchanged."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "[") and text[-1:] in ("}", "]"):
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                return value
    return value


def _is_message(m: Any) -> bool:
    return (isinstance(m, dict) and isinstance(m.get("role"), str) and m["role"].lower() in CHAT_ROLES
            and ("content" in m or "tool_calls" in m or "parts" in m))


def chat_messages(value: Any) -> list[dict[str, Any]] | None:
    """Messages when the value is a conversation: a list of {role, content}, an object with such a
    `messages` list, or one message. None otherwise."""
    if isinstance(value, dict) and isinstance(value.get("messages"), list) and value["messages"] \
            and all(_is_message(m) for m in value["messages"]):
        return value["messages"]
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        return value
    if _is_message(value):
        return [value]
    return None


def _text_html(text: str, cls: str = "io-text", *, markdown: bool = True) -> Markup:
    """Text for people: markdown rendered (with the raw text a toggle away) when it has any; long
    text folded."""
    folded = len(text) > FOLD_CHARS or text.count("\n") > 24
    body = Markup('<div class="%s">%s</div>') % (cls, text)
    if markdown and looks_like_markdown(text):
        body = markdown_block(text, body)
    if not folded:
        return body
    return Markup('<div class="fold" data-fold>%s<button type="button" class="fold-toggle btn btn-ghost btn-sm"'
                  ' data-fold-toggle aria-expanded="false">Show all %s characters</button></div>') % (
        body, f"{len(text):,}")


def _content_html(content: Any) -> Markup:
    """A message's content: text, a list of parts (text, images, others as JSON), or JSON."""
    content = _maybe_json(content) if isinstance(content, str) and content.strip()[:1] in "{[" else content
    if content is None or content == "":
        return Markup('<div class="muted small">(empty)</div>')
    if isinstance(content, str):
        return _text_html(content)
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        parts = []
        for part in content:
            kind = part.get("type")
            if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
                parts.append(_text_html(part["text"]))
            elif kind in ("image_url", "input_image", "image"):
                parts.append(image_part_html(part))
            else:
                parts.append(json_tree(part, open_depth=1))
        return Markup("").join(parts)
    return json_tree(content, open_depth=1)


def image_part_html(part: dict[str, Any]) -> Markup:
    """An image part of a message as a thumbnail: a media reference (media.js turns it into the
    stored image), a data: image, or an http(s) URL (loaded without a referrer); a link to open it."""
    url = part.get("image_url", part.get("url", part.get("source")))
    url = url.get("url") if isinstance(url, dict) else url
    if isinstance(url, str) and url.startswith("@@@langfuseMedia:"):  # shown by media.js
        return Markup('<div class="io-part io-image">%s</div>') % url
    if isinstance(url, str) and (url.startswith("https://") or _DATA_IMAGE.match(url)):
        label = "image" if url.startswith("data:") else url
        return Markup('<div class="io-part io-image"><a href="%s" target="_blank" rel="noopener noreferrer"'
                      ' title="%s"><img class="io-thumb" src="%s" alt="image" loading="lazy"'
                      ' referrerpolicy="no-referrer"></a></div>') % (url, label[:300], url)
    if isinstance(url, str) and url.startswith("http://"):  # not loaded into an https page: a link
        return Markup('<div class="io-part small"><a href="%s" target="_blank" rel="noopener noreferrer">[image] %s'
                      '</a></div>') % (url, url[:200])
    return Markup('<div class="io-part muted small">[image]</div>')


def conversation_html(messages: list[dict[str, Any]]) -> Markup:
    out = [Markup('<ol class="chat">')]
    for m in messages:
        role = str(m.get("role", "")).lower()
        name = m.get("name")
        head = Markup('<div class="chat-role">%s%s</div>') % (
            role, Markup(' <span class="muted">· %s</span>') % name if isinstance(name, str) else "")
        body = [_content_html(m.get("content", m.get("parts")))]
        for call in m.get("tool_calls") or []:
            fn = call.get("function", call) if isinstance(call, dict) else {}
            args = _maybe_json(fn.get("arguments")) if isinstance(fn, dict) else None
            body.append(Markup('<div class="tool-call"><div class="tool-call-name">%s %s</div>%s</div>') % (
                Markup('<span class="badge badge-tool">tool call</span>'), fn.get("name", "") if isinstance(fn, dict)
                else "", json_tree(args, open_depth=1) if isinstance(args, dict | list) else
                _text_html(str(args or ""))))
        if m.get("tool_call_id"):
            head = Markup('<div class="chat-role">%s <span class="muted mono small">%s</span></div>') % (
                role, m["tool_call_id"])
        cls = role if role in CHAT_ROLES else "other"
        out.append(Markup('<li class="chat-msg chat-%s">%s%s</li>') % (cls, head, Markup("").join(body)))
    out.append(Markup("</ol>"))
    return Markup("").join(out)


def _count_nodes(value: Any, limit: int) -> int:
    n, stack = 0, [value]
    while stack and n <= limit:
        v = stack.pop()
        n += 1
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return n


def _scalar_html(v: Any) -> Markup:
    if v is None:
        return Markup('<span class="j-null">null</span>')
    if isinstance(v, bool):
        return Markup('<span class="j-bool">%s</span>') % ("true" if v else "false")
    if isinstance(v, int | float):
        return Markup('<span class="j-num">%s</span>') % v
    text = str(v)
    if len(text) > 300 or "\n" in text:
        return Markup('<span class="j-str j-str-long">%s</span>') % _text_html(text, "j-text", markdown=False)
    return Markup('<span class="j-str">"%s"</span>') % text


def _tree(value: Any, depth: int, open_depth: int) -> Markup:
    if isinstance(value, dict):
        if not value:
            return Markup('<span class="j-punct">{}</span>')
        items = [Markup('<li><span class="j-key">%s</span><span class="j-punct">: </span>%s</li>') % (
            k, _tree(v, depth + 1, open_depth)) for k, v in value.items()]
        summary = f"{{ {len(value)} key{'s' if len(value) != 1 else ''} }}"
    elif isinstance(value, list):
        if not value:
            return Markup('<span class="j-punct">[]</span>')
        items = [Markup('<li><span class="j-idx">%d</span><span class="j-punct">: </span>%s</li>') % (
            i, _tree(v, depth + 1, open_depth)) for i, v in enumerate(value)]
        summary = f"[ {len(value)} item{'s' if len(value) != 1 else ''} ]"
    else:
        return _scalar_html(value)
    opened = " open" if depth < open_depth else ""
    return Markup('<details class="j-node"%s><summary class="j-summary">%s</summary><ul class="j-children">%s</ul>'
                  '</details>') % (Markup(opened), summary, Markup("").join(items))


def json_tree(value: Any, open_depth: int = OPEN_DEPTH) -> Markup:
    """A JSON value as nested <details> (objects and arrays collapsible); very large values as
    pretty-printed text."""
    if isinstance(value, dict | list) and _count_nodes(value, TREE_MAX_NODES) > TREE_MAX_NODES:
        text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
        return _text_html(text, "io-text mono", markdown=False)
    if not isinstance(value, dict | list):
        return Markup('<div class="json-tree">%s</div>') % _scalar_html(value)
    return Markup('<div class="json-tree">%s</div>') % _tree(value, 0, open_depth)


def io_html(value: Any) -> Markup:
    """An observation's or trace's input/output for people."""
    value = _maybe_json(value)
    if value is None or value == "" or value == {} or value == []:
        return Markup('<div class="io-empty muted small">Empty</div>')
    messages = chat_messages(value)
    if messages is not None:
        rest = ({k: v for k, v in value.items() if k != "messages"}
                if isinstance(value, dict) and "messages" in value else {})
        html = conversation_html(messages)
        if rest:
            html += Markup('<div class="io-extra">%s</div>') % json_tree(rest, open_depth=1)
        return html
    if isinstance(value, str):
        return _text_html(value)
    if isinstance(value, dict) and len(value) == 1:
        (k, v), = value.items()
        if isinstance(v, str) and k in ("text", "content", "output", "answer", "response", "query", "question",
                                        "input", "prompt", "completion", "result"):
            return Markup('<div class="io-key muted small">%s</div>') % k + _text_html(v)
    return json_tree(value)


def raw_json(value: Any) -> str:
    value = _maybe_json(value)
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


def text_html(text: Any) -> Markup:
    """Free text people wrote (a comment): markdown rendered when it has any, else as written."""
    return _text_html(str(text or ""))


FILTERS = {
    "text_html": text_html,
    "score_value": score_value, "local_time": local_time,
    "io_html": io_html, "json_tree": json_tree, "raw_json": raw_json, "iso_time": iso_time,
}
