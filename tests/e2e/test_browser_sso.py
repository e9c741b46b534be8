"""Single sign-on in a real browser through a local OpenID Connect provider: a new person, a person
who already has a password account (linked by verified e-mail), and an enforced domain."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from browser import *  # noqa: F403
from browser import PASSWORD, onboard, shot, sign_in, sign_up
from playwright.sync_api import expect

from conftest import LiveServer
from support.oidc import VERIFIED, oidc_provider, sso_settings

pytestmark = pytest.mark.browser

USERS = {
    "ada": {"email": "ada@acme.example", "name": "Ada Lovelace", **VERIFIED},
    "grace": {"email": "grace@lab.example", "name": "Grace Hopper", **VERIFIED},
}


@pytest.fixture
def sso_server(make_settings) -> Iterator[LiveServer]:
    with oidc_provider(USERS) as issuer:
        settings = make_settings(**sso_settings(issuer, auth_domains_with_sso_enforcement="acme.example"))
        with LiveServer(settings, run_worker=False) as server:
            yield server


def _sso(page, base: str, sub: str) -> None:
    page.goto(f"{base}/auth/sign-in")
    page.get_by_role("link", name="Sign in with Acme ID").click()
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()  # the provider's page
    page.get_by_role("button", name=sub, exact=True).click()


def test_sso_sign_in_for_a_new_and_an_existing_user(sso_server, new_page) -> None:
    t = "sso"
    base = sso_server.url

    # A new person: the first SSO sign-in creates the account and leads to onboarding.
    ada = new_page()
    ada.goto(f"{base}/auth/sign-in")
    expect(ada.get_by_role("link", name="Sign in with Acme ID")).to_be_visible()
    shot(ada, t, "sign-in")
    _sso(ada, base, "ada")
    expect(ada).to_have_url(re.compile(r"/onboarding$"))
    expect(ada.get_by_text("ada@acme.example").first).to_be_visible()
    project_id = onboard(ada, org="Acme", project="Chatbot")
    shot(ada, t, "new-user-onboarded")

    # Signing in again through the provider returns to the same account and its project.
    ada.context.clear_cookies()
    _sso(ada, base, "ada")
    expect(ada).to_have_url(re.compile(rf"/project/{project_id}"))

    # Her domain is enforced: a password sign-in is refused and points at the provider.
    other = new_page()
    sign_in(other, base, email="ada@acme.example", password=PASSWORD)
    expect(other.get_by_role("alert")).to_contain_text("sign in with single sign-on")
    expect(other.get_by_role("link", name="Sign in with Acme ID")).to_be_visible()
    shot(other, t, "password-refused")

    # An existing person with a password account is linked by the verified e-mail, keeps the
    # password, and lands in the same account.
    grace = new_page()
    sign_up(grace, base, email="grace@lab.example")
    grace_project = onboard(grace, org="Lab", project="Agents")
    grace.context.clear_cookies()
    _sso(grace, base, "grace")
    expect(grace).to_have_url(re.compile(rf"/project/{grace_project}"))
    grace.context.clear_cookies()
    sign_in(grace, base, email="grace@lab.example")
    expect(grace).to_have_url(re.compile(rf"/project/{grace_project}"))
