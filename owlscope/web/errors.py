"""Errors as pages: the handlers install_ui() sets for every non-/api path.

Domain errors (owlscope.errors) and HTTP errors render `error.html` with their status; "sign in
required" becomes a redirect to the sign-in page. For an htmx request the error is a flash
message swapped into the page's #flashes area instead of a whole page.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from owlscope.errors import OwlscopeError, Unauthorized
from owlscope.web.context import optional_user
from owlscope.web.templating import is_htmx, redirect, render

log = logging.getLogger(__name__)

TITLES = {
    400: "Something in the form is not right",
    401: "Sign in required",
    403: "You do not have access to this",
    404: "Page not found",
    405: "Method not allowed",
    409: "That conflicts with something that exists",
    413: "Too large",
    429: "Too many requests",
    500: "Something went wrong on our side",
    503: "Temporarily unavailable",
}


def render_error(request: Request, status: int, message: str, *, headers: dict[str, str] | None = None) -> Response:
    """The error page (or, for htmx, a flash partial retargeted to #flashes)."""
    title = TITLES.get(status, "Error")
    if is_htmx(request):
        hx = {"HX-Retarget": "#flashes", "HX-Reswap": "beforeend", **(headers or {})}
        return render(
            request, "_flash.html", {"category": "error", "message": f"{title}: {message}"},
            status_code=status, headers=hx,
        )
    if "session" in request.scope:
        try:
            optional_user(request)  # so the layout can show the navigation
        except Exception:  # noqa: BLE001 - an error page must render whatever else is broken
            log.debug("could not load the user for an error page", exc_info=True)
    return render(
        request, "error.html", {"status": status, "title": title, "message": message},
        status_code=status, headers=headers,
    )


def sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET" or target == "/":
        return redirect(request, "/auth/sign-in")
    return redirect(request, "/auth/sign-in?next=" + quote(target, safe="/"))


def ui_error_handler(request: Request, exc: OwlscopeError) -> Response:
    if isinstance(exc, Unauthorized):
        return sign_in_redirect(request)
    if exc.status >= 500:
        log.error("%s on %s %s: %s", exc.error, request.method, request.url.path, exc.message)
    return render_error(request, exc.status, exc.message, headers=exc.headers or None)


def ui_http_handler(request: Request, exc: StarletteHTTPException) -> Response:
    status = exc.status_code
    if status == 404:
        message = "There is nothing at this address. Check the link, or go back to your projects."
    else:
        message = str(exc.detail) if exc.detail else TITLES.get(status, "Error")
    return render_error(request, status, message, headers=getattr(exc, "headers", None))
