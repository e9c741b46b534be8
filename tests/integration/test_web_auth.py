"""UI accounts in-process: sign-up, sign-in, sessions, CSRF, sign-out, set-password links."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from owlscope.accounts.users import make_set_password_token
from owlscope.app import create_app
from owlscope.storage.oltp.models import Organization, OrganizationMembership, Project, User
from support.web import PASSWORD, WebUser, csrf_from


@pytest.fixture
def app(make_settings) -> Iterator[Any]:
    app = create_app(make_settings(), run_worker=False)
    with TestClient(app):
        yield app


def test_sign_up_signs_in_and_leads_to_onboarding(app) -> None:
    user = WebUser(app)
    assert user.get("/").headers["location"] == "/auth/sign-in"
    page = user.get("/auth/sign-up")
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    r = user.sign_up("Ada@Example.com", name="Ada")
    assert r.headers["location"] == "/onboarding"
    cookie = r.headers["set-cookie"]
    assert "owlscope_session=" in cookie and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http base URL
    assert user.get("/").headers["location"] == "/onboarding"
    onboarding = user.get("/onboarding")
    assert onboarding.status_code == 200 and "ada@example.com" in onboarding.text
    with app.state.services.sessions() as s:
        stored = s.query(User).filter_by(email="ada@example.com").one()
        assert stored.name == "Ada" and stored.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(("email", "password", "status", "message"), [
    ("not-an-email", PASSWORD, 400, "valid email"),
    ("a@example.com", "short", 400, "at least 8 characters"),
    ("", "", 400, "valid email"),
])
def test_sign_up_rejects_bad_input_with_the_form(app, email, password, status, message) -> None:
    user = WebUser(app)
    r = user.post("/auth/sign-up", {"email": email, "password": password})
    assert r.status_code == status and message in r.text
    assert 'value="' + email + '"' in r.text  # the form keeps what was typed
    with app.state.services.sessions() as s:
        assert s.query(User).count() == 0


def test_sign_up_with_a_taken_email_is_a_conflict(app) -> None:
    WebUser(app).sign_up("taken@example.com")
    r = WebUser(app).post("/auth/sign-up", {"email": "TAKEN@example.com", "password": PASSWORD})
    assert r.status_code == 409 and "already exists" in r.text


def test_sign_in_checks_the_password_and_follows_only_local_next(app) -> None:
    WebUser(app).sign_up("bob@example.com")
    user = WebUser(app)
    wrong = user.sign_in("bob@example.com", "wrong-password")
    assert wrong.status_code == 400 and "Invalid email or password" in wrong.text
    assert user.get("/").headers["location"] == "/auth/sign-in"
    unknown = user.sign_in("nobody@example.com")
    assert unknown.status_code == 400 and "Invalid email or password" in unknown.text

    ok = user.sign_in("BOB@example.com", next="/onboarding")
    assert ok.status_code == 303 and ok.headers["location"] == "/onboarding"
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil"):
        r = WebUser(app).sign_in("bob@example.com", next=target)
        assert r.headers["location"] == "/", target


def test_pages_need_a_session_and_remember_where_you_wanted_to_go(app) -> None:
    owner = WebUser(app)
    owner.sign_up("owner@example.com")
    project_id = owner.onboard()
    anonymous = WebUser(app)
    r = anonymous.get(f"/project/{project_id}/settings?tab=1")
    assert r.status_code == 303
    assert r.headers["location"] == f"/auth/sign-in?next=/project/{project_id}/settings%3Ftab%3D1"
    htmx = anonymous.client.get(f"/project/{project_id}", headers={"HX-Request": "true"})
    assert htmx.headers.get("hx-redirect", "").startswith("/auth/sign-in")


def test_sign_out_ends_the_session(app) -> None:
    user = WebUser(app)
    user.sign_up("carol@example.com")
    project_id = user.onboard()
    assert user.get(f"/project/{project_id}").status_code == 200
    r = user.post("/auth/sign-out")
    assert r.status_code == 303 and r.headers["location"] == "/auth/sign-in"
    assert user.get(f"/project/{project_id}").status_code == 303


def test_every_form_post_needs_the_csrf_token(app) -> None:
    user = WebUser(app)
    user.sign_up("dave@example.com")
    project_id = user.onboard()
    paths = ["/auth/sign-out", "/onboarding", f"/project/{project_id}/settings/api-keys",
             f"/project/{project_id}/settings/name", f"/project/{project_id}/settings/delete",
             "/auth/sign-in", "/auth/sign-up", "/no/such/page"]
    for path in paths:
        missing = user.post(path, {"name": "x", "confirm": "Project"}, csrf=False)
        assert missing.status_code == 403, path
        assert "security token" in missing.text and "<html" in missing.text
        forged = user.post(path, {"name": "x", "csrf_token": "forged"}, csrf=False)
        assert forged.status_code == 403, path
    # JSON and empty bodies are refused too; the header (htmx) works.
    assert user.client.post(f"/project/{project_id}/settings/api-keys", json={"note": "x"}).status_code == 403
    ok = user.post(f"/project/{project_id}/settings/api-keys", {"note": "via htmx"}, htmx=True)
    assert ok.status_code == 200 and "LANGFUSE_SECRET_KEY=" in ok.text
    # Nothing was changed by the refused requests.
    with app.state.services.sessions() as s:
        assert s.get(Project, project_id).deleted_at is None
        assert s.get(Project, project_id).name == "Project"
    # Another session's token is not valid here.
    other = WebUser(app)
    other.sign_up("eve@example.com")
    stolen = user.post(f"/project/{project_id}/settings/name", {"name": "x", "csrf_token": other.csrf()}, csrf=False)
    assert stolen.status_code == 403


def test_multipart_forms_carry_the_token_too(app) -> None:
    user = WebUser(app)
    user.sign_up("multi@example.com")
    project_id = user.onboard()
    path = f"/project/{project_id}/settings/api-keys"
    ok = user.client.post(path, data={"note": "upload", "csrf_token": user.csrf()},
                          files={"file": ("a.txt", b"x" * 10_000, "text/plain")})
    assert ok.status_code == 200 and "LANGFUSE_SECRET_KEY=" in ok.text
    refused = user.client.post(path, data={"note": "upload"}, files={"file": ("a.txt", b"x", "text/plain")})
    assert refused.status_code == 403


def test_session_cookie_is_secure_behind_https(make_settings) -> None:
    app = create_app(make_settings(public_url="https://owlscope.example.com"), run_worker=False)
    with TestClient(app):
        r = WebUser(app).get("/auth/sign-in")
        cookie = r.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_the_api_is_not_affected_by_sessions_or_csrf(app) -> None:
    client = TestClient(app)
    r = client.post("/api/public/ingestion", json={"batch": []})
    assert r.status_code == 401 and r.json()["error"] == "UnauthorizedError"
    assert "set-cookie" not in r.headers
    assert "content-security-policy" not in r.headers


def test_ui_responses_carry_security_headers(app) -> None:
    r = WebUser(app).get("/auth/sign-in")
    assert r.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_unknown_pages_and_static_files(app) -> None:
    user = WebUser(app)
    r = user.get("/definitely/not/here")
    assert r.status_code == 404 and "Page not found" in r.text and "text/html" in r.headers["content-type"]
    for name in ("owlscope.css", "owlscope.js", "vendor/htmx.min.js", "vendor/chart.umd.js", "favicon.svg"):
        assert user.get(f"/static/{name}").status_code == 200, name


def test_unexpected_errors_render_the_500_page(make_settings, caplog) -> None:
    app = create_app(make_settings(), run_worker=False)

    def boom() -> None:
        raise RuntimeError("kaboom")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom")
    assert r.status_code == 500 and "Something went wrong on our side" in r.text
    assert "kaboom" not in r.text and "kaboom" in caplog.text


def _invite(app, email: str) -> tuple[str, str]:
    """An invited (password-less) user in a new org; returns (user_id, token)."""
    services = app.state.services
    with services.sessions() as s, s.begin():
        org = Organization(name="Inviting org")
        s.add(org)
        s.flush()
        s.add(Project(org_id=org.id, name="P"))
        user = User(email=email, password_hash=None)
        s.add(user)
        s.flush()
        s.add(OrganizationMembership(org_id=org.id, user_id=user.id, role="MEMBER"))
    token = make_set_password_token(services.settings.session_secret, user)
    return user.id, token


def test_set_password_link_works_once_and_ends_other_sessions(app) -> None:
    _, token = _invite(app, "invited@example.com")
    # An invited account cannot be claimed by signing up, nor signed into without a password.
    assert WebUser(app).post("/auth/sign-up", {"email": "invited@example.com", "password": PASSWORD}).status_code == 409
    assert WebUser(app).post("/auth/sign-in", {"email": "invited@example.com", "password": ""}).status_code == 400

    user = WebUser(app)
    page = user.get(f"/auth/set-password/{token}")
    assert page.status_code == 200 and "invited@example.com" in page.text
    mismatch = user.post(f"/auth/set-password/{token}", {"password": PASSWORD, "confirm": "different"})
    assert mismatch.status_code == 400 and "do not match" in mismatch.text
    ok = user.post(f"/auth/set-password/{token}", {"password": PASSWORD, "confirm": PASSWORD})
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    assert user.get("/").status_code == 303 and user.get("/").headers["location"].startswith("/project/")

    again = WebUser(app).get(f"/auth/set-password/{token}")
    assert again.status_code == 400 and "already been used" in again.text
    assert WebUser(app).get("/auth/set-password/not-a-token").status_code == 400

    # A session made before a password change stops working after it.
    other = WebUser(app)
    assert other.sign_in("invited@example.com").status_code == 303
    assert other.get("/").headers["location"].startswith("/project/")
    with app.state.services.sessions() as s, s.begin():
        from owlscope.auth.passwords import hash_password

        s.query(User).filter_by(email="invited@example.com").one().password_hash = hash_password("another-one")
    assert other.get("/").headers["location"] == "/auth/sign-in"


def test_csrf_token_is_rendered_into_forms_and_htmx_headers(app) -> None:
    user = WebUser(app)
    user.sign_up("frank@example.com")
    project_id = user.onboard()
    html = user.get(f"/project/{project_id}/settings").text
    token = csrf_from(html)
    assert token and f'"X-CSRF-Token": "{token}"' in html
    assert html.count(f'name="csrf_token" value="{token}"') >= 3  # env selector, rename, delete, sign-out
