"""Shared fixtures and helpers for browser tests: Playwright driving Debian's chromium.

Use from a test module with a star import (it registers the fixtures):

    from browser import *  # noqa: F403

    pytestmark = pytest.mark.browser

    def test_something(live_server, new_page):
        page = new_page()
        sign_up(page, live_server.url, email="a@example.com")
        shot(page, "test_something", "after-sign-up")

Fixtures: `chromium` (one browser per test session), `live_server` (a full app on a loopback
port with its own data), `new_page` (a factory: each call is a fresh browser context — a
separate person with their own cookies; `new_page(color_scheme="dark")` for dark mode).
Helpers: `sign_up`, `sign_in`, `onboard`, `shot` (screenshots go to
test-artifacts/screenshots/<test>-<page>.png). Without /usr/bin/chromium (or OWLSCOPE_CHROMIUM) the
tests skip, except with OWLSCOPE_REQUIRE_BACKENDS=1 (as in CI), where they fail.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import LiveServer, skip_or_fail

CHROMIUM = os.environ.get("OWLSCOPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1360, "height": 860}
PASSWORD = "correct-horse-battery"

__all__ = [
    "CHROMIUM", "PASSWORD", "chromium", "live_server", "new_page", "onboard", "project_id_from_url", "shot",
    "sign_in", "sign_up",
]


# Each test module's star import defines its own `chromium` fixture, but Playwright's sync API
# allows one instance per thread: the modules of a process share one, closed by the last user.
_SHARED: dict[str, Any] = {"users": 0}


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        skip_or_fail(f"{CHROMIUM} is missing (apt-get install chromium) — browser tests need it")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed")
    if "browser" not in _SHARED:
        pw = sync_playwright().start()
        _SHARED.update(pw=pw, browser=pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                         headless=True))
    _SHARED["users"] += 1
    try:
        yield _SHARED["browser"]
    finally:
        _SHARED["users"] -= 1
        if _SHARED["users"] == 0:
            browser, pw = _SHARED.pop("browser"), _SHARED.pop("pw")
            browser.close()
            pw.stop()


@pytest.fixture
def live_server(make_settings: Callable[..., Any]) -> Iterator[LiveServer]:
    with LiveServer(make_settings(), run_worker=False) as server:
        yield server


@pytest.fixture
def new_page(chromium: Any) -> Iterator[Callable[..., Any]]:
    """A factory of pages, each in its own browser context (own cookies: another person)."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("viewport", VIEWPORT)
        context = chromium.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def shot(page: Any, test: str, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot as test-artifacts/screenshots/<test>-<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{test}-{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def sign_up(page: Any, base_url: str, *, email: str, password: str = PASSWORD, name: str = "") -> None:
    """Create an account through the sign-up form; ends signed in (on the onboarding page)."""
    page.goto(f"{base_url}/auth/sign-up")
    if name:
        page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r".*/onboarding$"))


def sign_in(page: Any, base_url: str, *, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/auth/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def onboard(page: Any, *, org: str, project: str) -> str:
    """Fill the onboarding form (the page must be on it); returns the new project's id."""
    page.get_by_label("Organization name").fill(org)
    page.get_by_label("Project name").fill(project)
    page.get_by_role("button", name="Create organization and project").click()
    page.wait_for_url(re.compile(r".*/project/[^/]+(/.*)?$"))
    return project_id_from_url(page.url)


def project_id_from_url(url: str) -> str:
    match = re.search(r"/project/([^/?#]+)", url)
    if not match:
        raise AssertionError(f"not a project URL: {url}")
    return match.group(1)
