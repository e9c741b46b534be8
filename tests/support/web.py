"""A person using the web UI in-process: a TestClient with its own cookies that sends the CSRF
token like the pages' forms do.

    app = create_app(make_settings(), run_worker=False)
    with TestClient(app):                      # runs the lifespan once
        alice = WebUser(app)
        alice.sign_up("alice@example.com")
        project_id = alice.onboard("Org", "Project")
        r = alice.post(f"/project/{project_id}/settings/api-keys", {"note": "x"})
"""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

PASSWORD = "correct-horse-battery"
_TOKEN_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
_TOKEN_HEADER = re.compile(r'"X-CSRF-Token": "([^"]+)"')
_PUBLIC_KEY = re.compile(r'LANGFUSE_PUBLIC_KEY="(pk-lf-[^"]+)"')
_SECRET_KEY = re.compile(r'LANGFUSE_SECRET_KEY="(sk-lf-[^"]+)"')


def csrf_from(html: str) -> str | None:
    match = _TOKEN_INPUT.search(html) or _TOKEN_HEADER.search(html)
    return match.group(1) if match else None


class WebUser:
    """One browser: cookies persist across requests; redirects are not followed (assert them)."""

    def __init__(self, app: FastAPI) -> None:
        self.client = TestClient(app, follow_redirects=False)
        self.token: str | None = None

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = self.client.get(path, **kwargs)
        if "text/html" in response.headers.get("content-type", ""):
            self.token = csrf_from(response.text) or self.token
        return response

    def csrf(self) -> str:
        """The session's CSRF token, read from a page (the sign-in form or any layout page)."""
        if self.token is None:
            page = self.get("/auth/sign-in")
            if page.status_code in (302, 303):
                page = self.get("/onboarding")
            self.token = csrf_from(page.text)
        assert self.token, "no CSRF token found in the page"
        return self.token

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True,
             htmx: bool = False) -> httpx.Response:
        form = dict(data or {})
        headers = {"HX-Request": "true"} if htmx else {}
        if csrf and htmx:
            headers["X-CSRF-Token"] = self.csrf()
        elif csrf:
            form.setdefault("csrf_token", self.csrf())
        response = self.client.post(path, data=form, headers=headers)
        if "text/html" in response.headers.get("content-type", ""):
            self.token = csrf_from(response.text) or self.token
        return response

    def sign_up(self, email: str, password: str = PASSWORD, name: str = "") -> httpx.Response:
        response = self.post("/auth/sign-up", {"email": email, "password": password, "name": name})
        assert response.status_code == 303, response.text
        self.token = None  # a new session has a new token
        return response

    def sign_in(self, email: str, password: str = PASSWORD, next: str | None = None) -> httpx.Response:
        form = {"email": email, "password": password}
        if next is not None:
            form["next"] = next
        response = self.post("/auth/sign-in", form)
        if response.status_code == 303:
            self.token = None  # a new session has a new token
        return response

    def create_api_key(self, project_id: str, note: str = "") -> tuple[str, str]:
        """A new key of the project, from the settings page: (public key, secret key)."""
        response = self.post(f"/project/{project_id}/settings/api-keys", {"note": note})
        assert response.status_code == 200, response.text
        page = html.unescape(response.text)
        return _PUBLIC_KEY.search(page).group(1), _SECRET_KEY.search(page).group(1)

    def onboard(self, org: str = "Org", project: str = "Project") -> str:
        response = self.post("/onboarding", {"org_name": org, "project_name": project})
        assert response.status_code == 303, response.text
        match = re.search(r"/project/([^/]+)", response.headers["location"])
        assert match
        return match.group(1)
