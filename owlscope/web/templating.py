"""Jinja2 templates, the `render()` helper every view uses, flash messages and the CSRF token.

A page is rendered with `render(request, "area/page.html", {...})`. The layout (`base.html`)
gets, besides the view's own values: `ctx` (the request's `ProjectContext` / `OrgContext`, or
None), `user`, `csrf_token`, `flashes`, `nav`, `static_url()` and the environment selector's
values. Partials are named `_thing.html`; an htmx request usually renders just the partial.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from owlscope import __version__
from owlscope.web import numbers, present
from owlscope.web.context import OrgContext, layout_context
from owlscope.web.nav import org_nav, project_nav
from owlscope.web.urls import page_url

WEB_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"



# ---- static files -----------------------------------------------------------------------------
@cache
def _static_digest(name: str) -> str:
    path = STATIC_DIR / name
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    except OSError:
        return __version__


def static_url(name: str) -> str:
    """`/static/<name>?v=<content hash>`: cache-busting without a build step."""
    return f"/static/{name}?v={_static_digest(name)}"


# ---- filters ----------------------------------------------------------------------------------
def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - value).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"  # pragma: no cover


def _datetime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(UTC).strftime(fmt)
    return f"{text} UTC" if "%H" in fmt else text


def build_templates() -> Jinja2Templates:
    """The app's template environment (one per app), with every global and filter the templates use."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(static_url=static_url, version=__version__, page_url=page_url)
    env.filters.update(ago=_ago, datetime=_datetime, **numbers.FILTERS, **present.FILTERS)
    return Jinja2Templates(env=env)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a template with the layout's context. Views pass only their own values; `active_nav`
    (a key of nav.PROJECT_NAV) marks the current navigation item when the path does not say."""
    values = layout_context(request)
    values.update(context or {})
    active = values.get("active_nav")
    if active and values.get("project") is not None:
        ctx = values.get("ctx")
        values["nav"] = project_nav(values["project"].id, request.url.path, active, getattr(ctx, "role", None))
    elif active and isinstance(values.get("ctx"), OrgContext):
        values["nav"] = org_nav(values["ctx"].org.id, active)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, template, values, status_code=status_code, headers=headers)


def redirect(request: Request, url: str, *, status_code: int = 303) -> Response:
    """See Other to `url`; for htmx requests an `HX-Redirect`, so the whole page changes."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return Response(status_code=status_code, headers={"Location": url})


def safe_next(url: str | None, default: str = "/") -> str:
    """A redirect target from user input: only a local path (no scheme, host or `//`)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    if any(ord(c) < 32 for c in url):
        return default
    return url
