"""Markdown in traced text (messages, outputs, session turns, comments), rendered on the server and
sanitised: markdown-it-py (CommonMark plus tables and strikethrough, single newlines kept as line
breaks), then nh3 (an allow-list HTML sanitiser): `<script>`, `<style>`, event handlers and
`javascript:` links never reach the page, whatever the model or the user wrote.

Text that shows no markdown syntax stays plain text (cheaper, and nothing to toggle); markdown is
shown rendered with a "Raw" toggle (owlscope.js `[data-md-toggle]`).
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from markupsafe import Markup

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

# Headings, lists, quotes, fences, emphasis, inline code, links, tables and HTML tags: what makes
# markdown look different from the same text printed as is.
_MARKDOWN_HINT = re.compile(
    r"(^|\n)\s{0,3}(#{1,6}\s|[-*+]\s+\S|\d+[.)]\s+\S|>\s?|```|~~~|\|.*\|)"
    r"|\*\*\S|__\S|(?<![\w*])\*[^*\s][^*\n]*\*(?![\w*])|`[^`\n]+`|\[[^\]\n]+\]\([^)\s]+\)|<[a-zA-Z][^>]*>"
)
MAX_RENDER_CHARS = 200_000  # longer text is shown raw: rendering it would cost more than it helps

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "details", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "summary", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"}, "img": {"src", "alt", "title"}, "td": {"align"}, "th": {"align"},
    "code": {"class"}, "ol": {"start"},
}


# The parser and the sanitiser are imported when text is first rendered: a server that never shows
# markdown keeps them out of its memory (bench/footprint.py).
@cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True, "breaks": True}).enable(["table", "strikethrough"])


def looks_like_markdown(text: str) -> bool:
    return len(text) <= MAX_RENDER_CHARS and _MARKDOWN_HINT.search(text) is not None


def render_markdown(text: str) -> Markup:
    """Markdown to sanitised HTML (safe to put in a page as is)."""
    import nh3

    html = _parser().render(text)
    clean = nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                      link_rel="noopener noreferrer nofollow")
    return Markup(clean)  # noqa: S704 - sanitised by nh3 just above


def markdown_block(text: str, raw: Markup) -> Markup:
    """The rendered markdown with the raw text (`raw`, already HTML) a click away."""
    return Markup(
        '<div class="md-box" data-md-box><button type="button" class="btn btn-ghost btn-sm md-toggle" data-md-toggle'
        ' aria-pressed="false" title="Show the text as written">Raw</button><div class="md">%s</div>'
        '<div class="md-raw">%s</div></div>'
    ) % (render_markdown(text), raw)
