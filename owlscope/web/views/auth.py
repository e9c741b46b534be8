"""Sign up, sign in, sign out, and setting a password from an invitation link."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope import audit
from owlscope.accounts.users import authenticate_user, create_user, set_password, user_for_set_password_token
from owlscope.auth.oidc import enforced_domain
from owlscope.errors import Conflict, InvalidRequest, TooManyRequests
from owlscope.storage.oltp.db import write_transaction
from owlscope.web.context import (
    OptionalUser,
    WebServices,
    optional_user,
    record_sign_in,
    request_actor,
    session_secret,
    sign_in_session,
    sign_out_session,
)
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render, safe_next
from owlscope.web.views.sso import sso_buttons

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]


@router.get("/auth/sign-in")
def sign_in_page(request: Request, services: WebServices, user: OptionalUser, next: str = "") -> Response:
    if user is not None:
        return redirect(request, safe_next(next))
    return render(request, "auth/sign_in.html", {"next": safe_next(next, ""), "email": "",
                                                  "signup_disabled": services.settings.auth_disable_signup,
                                                  "sso_providers": sso_buttons(services, safe_next(next, ""))})


def _sso_enforced(services: WebServices, email: str) -> str | None:
    """The refusal for a password sign-in (or sign-up) of a domain that must use SSO."""
    domain = enforced_domain(services.settings, email)
    if domain is None:
        return None
    return f"Accounts of {domain} sign in with single sign-on: use the button below."


@router.post("/auth/sign-in")
def sign_in(
    request: Request, services: WebServices, email: FormStr = "", password: FormStr = "", next: FormStr = "",
) -> Response:
    address = request.client.host if request.client else None
    page = {"next": safe_next(next, ""), "email": email, "signup_disabled": services.settings.auth_disable_signup,
            "sso_providers": sso_buttons(services, safe_next(next, ""))}
    if refusal := _sso_enforced(services, email):
        return render(request, "auth/sign_in.html", {**page, "error": refusal}, status_code=403)
    try:
        services.sign_in_limiter.check(email, address)
    except TooManyRequests as exc:
        return render(request, "auth/sign_in.html", {**page, "error": exc.message},
                      status_code=exc.status, headers=exc.headers)
    with services.sessions() as session, session.begin():
        user = authenticate_user(session, email=email, password=password)
    # Recorded apart: the password check is slow, and a SQLite write lock would be held through it.
    with write_transaction(services.sessions) as session:
        record_sign_in(request, session, user, email=email, method="password")
    services.sign_in_limiter.record(email, address, success=user is not None)
    if user is None:
        return render(request, "auth/sign_in.html", {**page, "error": "Invalid email or password."},
                      status_code=400)
    sign_in_session(request, user)
    return redirect(request, safe_next(next))


@router.get("/auth/sign-up")
def sign_up_page(request: Request, services: WebServices, user: OptionalUser) -> Response:
    if user is not None:
        return redirect(request, "/")
    if services.settings.auth_disable_signup:
        return _sign_up_disabled(request, services)
    return render(request, "auth/sign_up.html", {"email": "", "name": ""})


@router.post("/auth/sign-up")
def sign_up(
    request: Request, services: WebServices, name: FormStr = "", email: FormStr = "", password: FormStr = "",
) -> Response:
    if services.settings.auth_disable_signup:
        return _sign_up_disabled(request, services)
    if refusal := _sso_enforced(services, email):
        return render(request, "auth/sign_in.html", {"next": "", "email": email, "error": refusal,
                      "sso_providers": sso_buttons(services)}, status_code=403)
    try:
        with services.sessions() as session, session.begin():
            user = create_user(session, email=email, password=password, name=name)
    except (InvalidRequest, Conflict) as exc:
        return render(
            request, "auth/sign_up.html", {"email": email, "name": name, "error": exc.message},
            status_code=exc.status,
        )
    sign_in_session(request, user)
    flash(request, "Welcome to Owlscope! Create an organization and a project to get started.")
    return redirect(request, "/onboarding")


def _sign_up_disabled(request: Request, services: WebServices) -> Response:
    """AUTH_DISABLE_SIGNUP: accounts come only from invitations (set-password links) and `init`."""
    return render(request, "auth/sign_in.html", {
        "next": "", "email": "", "signup_disabled": True, "sso_providers": sso_buttons(services),
        "error": "Sign-up is disabled on this server: ask an organization owner to invite you.",
    }, status_code=403)


@router.post("/auth/sign-out")
def sign_out(request: Request, services: WebServices) -> Response:
    user = optional_user(request)
    if user is not None:
        with write_transaction(services.sessions) as session:
            audit.record_for_user(session, request_actor(request, user), "auth.sign_out", user_id=user.id)
    sign_out_session(request)
    flash(request, "You have been signed out.", "info")
    return redirect(request, "/auth/sign-in")


@router.get("/auth/set-password/{token}")
def set_password_page(request: Request, token: str, services: WebServices) -> Response:
    with services.sessions() as session:
        user = user_for_set_password_token(session, secret=session_secret(services), token=token)
    return render(request, "auth/set_password.html", {"token": token, "email": user.email})


@router.post("/auth/set-password/{token}")
def set_password_submit(
    request: Request, token: str, services: WebServices, password: FormStr = "", confirm: FormStr = "",
) -> Response:
    secret = session_secret(services)
    with services.sessions() as session:
        user = user_for_set_password_token(session, secret=secret, token=token)
    error = _sso_enforced(services, user.email)
    if error is not None:
        pass
    elif password != confirm:
        error = "The two passwords do not match."
    else:
        try:
            with services.sessions() as session, session.begin():
                user = user_for_set_password_token(session, secret=secret, token=token)
                set_password(session, user=user, password=password)
        except InvalidRequest as exc:
            error = exc.message
    if error is not None:
        return render(
            request, "auth/set_password.html", {"token": token, "email": user.email, "error": error},
            status_code=400,
        )
    sign_in_session(request, user)
    flash(request, "Your password is set. Welcome to Owlscope!")
    return redirect(request, "/")
