"""Markdown in traced text and comments (owlscope/web/markdown.py via present): rendered, sanitised,
plain text left plain, image parts as thumbnails."""

from __future__ import annotations

from owlscope.web.markdown import looks_like_markdown, render_markdown
from owlscope.web.present import io_html, text_html


def test_markdown_is_rendered_and_sanitised() -> None:
    html = str(render_markdown("# Title\n\n**bold** <script>alert(1)</script><img src=x onerror=alert(2)> "
                               '<a href="javascript:alert(3)">x</a> [y](javascript:alert(4)) <b onclick="z()">b</b>'))
    assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<b>b</b>" in html
    for bad in ("<script", "alert(1)", "onerror", "onclick", 'href="javascript'):
        assert bad not in html, bad


def test_plain_text_stays_plain_and_markdown_gets_a_raw_toggle() -> None:
    assert not looks_like_markdown("Hello, how can I help you today?\nSecond line.")
    plain = str(io_html("Hello, how can I help you today?"))
    assert "md-box" not in plain and "Hello, how can I help you today?" in plain
    md = str(io_html("Steps:\n\n1. open **Settings**\n2. click `Reset`"))
    assert "<ol>" in md and "<strong>Settings</strong>" in md and "data-md-toggle" in md
    assert "1. open **Settings**" in md  # the raw text, escaped, beside it
    assert "<em>" in str(text_html("an *important* comment"))


def test_image_parts_are_thumbnails() -> None:
    png = "data:image/png;base64,iVBORw0KGgo="
    html = str(io_html([{"role": "user", "content": [
        {"type": "text", "text": "see"}, {"type": "image_url", "image_url": {"url": png}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "@@@langfuseMedia:type=image/png|id=m1|source=base64_data_uri@@@"}},
        {"type": "image_url", "image_url": {"url": "data:text/html;base64,PHNjcmlwdD4="}}]}]))
    assert html.count('class="io-thumb"') == 2
    assert 'referrerpolicy="no-referrer"' in html and "@@@langfuseMedia:type=image/png|id=m1" in html
    assert "data:text/html" not in html
