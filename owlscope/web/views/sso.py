"""Single sign-on: "Sign in with <provider>" and the provider's redirect back.

The session keeps the pending attempt (state, nonce, PKCE verifier, where to go next) between
the two requests; owlscope.auth.oidc does the protocol and owlscope.accounts.sso the account.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from owlscope.accounts.sso import user_for_sso
from owlscope.auth import oidc
from owlscope.errors import Conflict, Forbidden, InvalidRequest
from owlscope.services import Services
from owlscope.storage.oltp.db import write_transaction
from owlscope.web.context import WebServices, record_sign_in, sign_in_session
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render, safe_next

router = APIRouter(include_in_schema=False)

SESSION_PENDING = "sso_pending"


def sso_buttons(services: Services, next: str = "") -> list[dict[str, str]]:
    """What the sign-in page shows: one button per configured provider."""
    query = f"?next={quote(next, safe='/')}" if next else ""
    return [{"name": p.name, "url": f"/auth/sso/{p.id}{query}"} for p in oidc.providers(services.settings)]


def _redirect_uri(request: Request, services: Services, provider_id: str) -> str:
    base = services.settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/auth/sso/{provider_id}/callback"


def _failed(request: Request, services: Services, message: str, status: int) -> Response:
    return render(request, "auth/sign_in.html", {
        "next": "", "email": "", "error": message, "sso_providers": sso_buttons(services),
        "signup_disabled": services.settings.auth_disable_signup,
    }, status_code=status)


@router.get("/auth/sso/{provider_id}")
def sso_start(request: Request, provider_id: str, services: WebServices, next: str = "") -> Response:
    try:
        provider = oidc.find_provider(services.settings, provider_id)
        url, pending = oidc.begin(provider, _redirect_uri(request, services, provider_id))
    except InvalidRequest as exc:
        return _failed(request, services, exc.message, exc.status)
    request.session[SESSION_PENDING] = {**pending, "next": safe_next(next)}
    return redirect(request, url, status_code=302)


@router.get("/auth/sso/{provider_id}/callback")
def sso_callback(request: Request, provider_id: str, services: WebServices) -> Response:
    pending = request.session.pop(SESSION_PENDING, None) or {}
    identity: oidc.Identity | None = None
    try:
        provider = oidc.find_provider(services.settings, provider_id)
        identity = oidc.complete(provider, _redirect_uri(request, services, provider_id), pending,
                                 dict(request.query_params))
        with write_transaction(services.sessions) as session:
            account, created = user_for_sso(session, settings=services.settings, email=identity.email,
                                            name=identity.name)
            record_sign_in(request, session, account, email=account.email, method=f"sso:{provider.id}",
                           created=created)
    except (InvalidRequest, Forbidden, Conflict) as exc:
        with write_transaction(services.sessions) as session:
            record_sign_in(request, session, None, email=identity.email if identity is not None else None,
                           method=f"sso:{provider_id}", reason=exc.message[:200])
        return _failed(request, services, exc.message, exc.status)
    sign_in_session(request, account)
    if created:
        flash(request, f"Welcome to Owlscope! You signed in with {provider.name}.")
    return redirect(request, safe_next(pending.get("next")))
