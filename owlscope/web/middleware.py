"""ASGI middleware of the UI: sessions, CSRF, security headers and the 500 page.

None of it touches /api/ or /static/: the API authenticates with keys, not cookies, and answers
JSON. Order, outermost first: sessions → UI guard (headers, 500 page) → CSRF → the app.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from owlscope.web.session_data import CSRF_FORM_FIELD, CSRF_HEADER, SESSION_MAX_AGE, csrf_valid

log = logging.getLogger(__name__)

EXEMPT_PREFIXES = ("/api/", "/static/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SESSION_COOKIE = "owlscope_session"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    # Scripts only from our own files (no inline script, no eval): pass data to JS in
    # <script type="application/json"> blocks or data- attributes.
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "cache-control": "no-store",
}


HSTS = "max-age=31536000; includeSubDomains"


def _https(scope: Scope) -> bool:
    services = getattr(scope["app"].state, "services", None)
    return services is not None and services.settings.base_url.startswith("https://")


def is_ui_path(path: str) -> bool:
    return not path.startswith(EXEMPT_PREFIXES) and path != "/api"


class LazySessionMiddleware:
    """Starlette's signed-cookie sessions, configured from the app's settings on first use (the
    settings are only known once the lifespan has built the services)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._inner: SessionMiddleware | None = None

    def _build(self, scope: Scope) -> SessionMiddleware:
        settings = scope["app"].state.services.settings
        if not settings.session_secret:
            raise RuntimeError("SESSION_SECRET is not set")
        return SessionMiddleware(
            self.app, secret_key=settings.session_secret, session_cookie=SESSION_COOKIE,
            max_age=SESSION_MAX_AGE, same_site="lax", https_only=settings.base_url.startswith("https://"),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_ui_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self._inner is None:
            self._inner = self._build(scope)
        await self._inner(scope, receive, send)


class UIGuardMiddleware:
    """Security headers on every UI response, and the 500 page for unexpected errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_ui_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if _https(scope):  # browsers then refuse plain http for this host
                    headers.setdefault("strict-transport-security", HSTS)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if started:
                raise
            log.exception("unhandled error on %s %s", scope.get("method"), scope["path"])
            from owlscope.web.errors import render_error

            response = render_error(
                Request(scope), 500, "The error has been logged. Try again, or go back to your projects."
            )
            await response(scope, receive, send_with_headers)


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), [message]
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), []


def _replay(body: bytes, extra: list[Message], receive: Receive) -> Callable[[], Awaitable[Message]]:
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}, *extra]

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


class CSRFMiddleware:
    """Every state-changing UI request must carry the session's CSRF token, as the
    `X-CSRF-Token` header (htmx) or the `csrf_token` form field; otherwise a 403 page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS or not is_ui_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        session = scope.get("session") or {}
        request = Request(scope)
        supplied = request.headers.get(CSRF_HEADER)
        if not supplied and request.headers.get("content-type", "").startswith(FORM_TYPES):
            original = receive
            body, extra = await _read_body(original)
            receive = _replay(body, extra, original)
            form_request = Request(scope, _replay(body, [], original))
            try:
                form = await form_request.form()
                value = form.get(CSRF_FORM_FIELD)
                supplied = value if isinstance(value, str) else None
                await form.close()
            except Exception:  # noqa: BLE001 - a malformed body simply has no token
                supplied = None
        if not csrf_valid(session, supplied):
            from owlscope.web.errors import render_error

            response = render_error(
                request, 403,
                "The form's security token is missing or has expired. Reload the page and try again.",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
