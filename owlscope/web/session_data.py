"""What the UI keeps in the signed session cookie besides the user: the CSRF token and flash messages."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Request

CSRF_SESSION_KEY = "csrf"
CSRF_FORM_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_MAX_AGE = 14 * 24 * 3600  # a signed-in session lasts two weeks
FLASH_SESSION_KEY = "_flashes"
FLASH_CATEGORIES = ("success", "info", "warning", "error")


# ---- CSRF -------------------------------------------------------------------------------------
def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use. Rendered into every form (hidden field
    `csrf_token`) and into `hx-headers` on <body>, so htmx requests send it as `X-CSRF-Token`."""
    session = request.session
    token = session.get(CSRF_SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


def csrf_valid(session: dict[str, Any], supplied: str | None) -> bool:
    expected = session.get(CSRF_SESSION_KEY)
    if not expected or not supplied:
        return False
    return hmac.compare_digest(str(expected).encode(), supplied.encode())


# ---- flash messages ---------------------------------------------------------------------------
def flash(request: Request, message: str, category: str = "success") -> None:
    """Queue a message for the next rendered page (kept in the session until shown)."""
    if category not in FLASH_CATEGORIES:
        raise ValueError(f"unknown flash category {category!r}")
    queued = list(request.session.get(FLASH_SESSION_KEY, []))
    queued.append([category, message])
    request.session[FLASH_SESSION_KEY] = queued[-10:]


def pop_flashes(request: Request) -> list[tuple[str, str]]:
    if "session" not in request.scope or FLASH_SESSION_KEY not in request.session:
        return []
    return [(c, m) for c, m in request.session.pop(FLASH_SESSION_KEY)]
