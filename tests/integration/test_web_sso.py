"""Single sign-on in-process against a real local OpenID Connect provider: new and linked
accounts, verified e-mail, state checks, enforced domains, closed sign-up, automatic membership."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from owlscope.app import create_app
from owlscope.storage.oltp.audit_models import AuditLogEntry
from owlscope.storage.oltp.models import Organization, OrganizationMembership, Role, User
from support.oidc import VERIFIED, authorize_at_provider, oidc_provider, sso_settings
from support.web import WebUser

USERS = {
    "ada": {"email": "ada@acme.example", "name": "Ada Lovelace", **VERIFIED},
    "bob": {"email": "bob@acme.example", "name": "Bob", **VERIFIED},
    "eve": {"email": "eve@acme.example", "email_verified": False},
    "zed": {"email": "zed@other.example", **VERIFIED},
}


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with oidc_provider(USERS) as url:
        yield url


@pytest.fixture
def make_app(make_settings, issuer) -> Iterator[Any]:
    started: list[TestClient] = []

    def make(**extra: Any) -> Any:
        app = create_app(make_settings(**sso_settings(issuer, **extra)), run_worker=False)
        client = TestClient(app)
        client.__enter__()
        started.append(client)
        return app

    yield make
    for client in started:
        client.__exit__(None, None, None)


def sso_sign_in(user: WebUser, sub: str, next: str = "") -> Any:
    start = user.get("/auth/sso/custom" + (f"?next={next}" if next else ""))
    assert start.status_code == 302, start.text
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["nonce"][0] and query["state"][0] and "openid" in query["scope"][0]
    back = urlsplit(authorize_at_provider(start.headers["location"], sub))
    assert back.path == "/auth/sso/custom/callback"
    response = user.get(f"{back.path}?{back.query}")
    user.token = None
    return response


def test_sign_in_page_shows_the_provider_button(make_app) -> None:
    page = WebUser(make_app()).get("/auth/sign-in")
    assert page.status_code == 200 and "Sign in with Acme ID" in page.text
    assert 'href="/auth/sso/custom"' in page.text


def test_first_sso_sign_in_creates_an_account_without_password(make_app) -> None:
    app = make_app()
    ada = WebUser(app)
    r = sso_sign_in(ada, "ada", next="/onboarding")
    assert r.status_code == 303 and r.headers["location"] == "/onboarding"
    assert ada.get("/onboarding").status_code == 200  # signed in
    with app.state.services.sessions() as s:
        stored = s.query(User).filter_by(email="ada@acme.example").one()
        assert stored.password_hash is None and stored.name == "Ada Lovelace"
    # A second sign-in reuses the account.
    sso_sign_in(WebUser(app), "ada")
    with app.state.services.sessions() as s:
        assert s.query(User).filter_by(email="ada@acme.example").count() == 1


def test_existing_password_account_is_linked_and_keeps_its_password(make_app) -> None:
    app = make_app()
    WebUser(app).sign_up("bob@acme.example")
    bob = WebUser(app)
    r = sso_sign_in(bob, "bob")
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert bob.get("/onboarding").status_code == 200
    with app.state.services.sessions() as s:
        assert s.query(User).filter_by(email="bob@acme.example").count() == 1
    assert WebUser(app).sign_in("bob@acme.example").status_code == 303  # the password still works


def test_unverified_email_is_refused(make_app) -> None:
    app = make_app()
    r = sso_sign_in(WebUser(app), "eve")
    assert r.status_code == 403 and "not verified" in r.text
    with app.state.services.sessions() as s:
        assert s.query(User).count() == 0


def test_callback_without_a_started_sign_in_is_refused(make_app, issuer) -> None:
    app = make_app()
    attacker, victim = WebUser(app), WebUser(app)
    start = attacker.get("/auth/sso/custom")
    back = urlsplit(authorize_at_provider(start.headers["location"], "ada"))
    # The victim's browser never started a sign-in: a planted callback signs nobody in.
    r = victim.get(f"{back.path}?{back.query}")
    assert r.status_code == 400 and "expired or was started elsewhere" in r.text
    # A tampered state is refused too, even in the browser that started.
    query = parse_qs(back.query)
    r = attacker.get(f"{back.path}?code={query['code'][0]}&state=forged")
    assert r.status_code == 400
    with app.state.services.sessions() as s:
        assert s.query(User).count() == 0


def test_provider_error_is_shown(make_app) -> None:
    user = WebUser(make_app())
    user.get("/auth/sso/custom")
    r = user.get("/auth/sso/custom/callback?error=access_denied&error_description=User+said+no")
    assert r.status_code == 400 and "User said no" in r.text


def test_unknown_provider_is_a_400(make_app) -> None:
    r = WebUser(make_app()).get("/auth/sso/nope")
    assert r.status_code == 400 and "No sign-in provider" in r.text


def test_enforced_domain_refuses_password_sign_in_but_allows_sso(make_app) -> None:
    app = make_app()
    WebUser(app).sign_up("bob@acme.example")
    enforced = make_app(auth_domains_with_sso_enforcement="acme.example")
    with app.state.services.sessions() as s:  # same data directory: the account exists for both
        assert s.query(User).filter_by(email="bob@acme.example").count() == 1
    r = WebUser(enforced).sign_in("bob@acme.example")
    assert r.status_code == 403 and "sign in with single sign-on" in r.text and "Sign in with Acme ID" in r.text
    r = WebUser(enforced).post("/auth/sign-up", {"email": "new@ACME.example", "password": "correct-horse-battery"})
    assert r.status_code == 403
    assert WebUser(enforced).sign_in("zed@other.example").status_code == 400  # other domains: normal rules
    bob = WebUser(enforced)
    assert sso_sign_in(bob, "bob").status_code == 303
    assert bob.get("/onboarding").status_code == 200


def test_closed_sign_up_refuses_new_sso_users_but_signs_in_invited_ones(make_app) -> None:
    app = make_app(auth_disable_signup=True)
    r = sso_sign_in(WebUser(app), "ada")
    assert r.status_code == 403 and "Sign-up is disabled" in r.text
    from owlscope.accounts.users import create_user

    with app.state.services.sessions() as s, s.begin():
        create_user(s, email="bob@acme.example", password=None)  # an invited user
    bob = WebUser(app)
    assert sso_sign_in(bob, "bob").status_code == 303
    assert bob.get("/onboarding").status_code == 200


def test_domain_users_join_the_default_organization_on_first_sign_in(make_app) -> None:
    app = make_app()
    with app.state.services.sessions() as s, s.begin():
        org = Organization(name="Acme")
        s.add(org)
        s.flush()
        org_id = org.id
    joined = make_app(auth_disable_signup=True, auth_sso_default_org_id=org_id,
                      auth_sso_default_org_role="MEMBER", auth_sso_default_org_domains="acme.example")
    assert sso_sign_in(WebUser(joined), "ada").status_code == 303
    r = sso_sign_in(WebUser(joined), "zed")  # another domain: sign-up closed, no automatic membership
    assert r.status_code == 403
    with joined.state.services.sessions() as s:
        ada = s.query(User).filter_by(email="ada@acme.example").one()
        membership = s.query(OrganizationMembership).filter_by(user_id=ada.id).one()
        assert membership.org_id == org_id and membership.role == Role.MEMBER
        assert s.query(User).filter_by(email="zed@other.example").count() == 0
        # both attempts are in the audit log: the sign-in in ada's organization, the refusal in none
        entries = s.scalars(select(AuditLogEntry).order_by(AuditLogEntry.created_at)).all()
        assert [(e.action, e.org_id, e.actor_type, e.actor_name, e.after["method"]) for e in entries] == [
            ("auth.sign_in", org_id, "user", "ada@acme.example", "sso:custom"),
            ("auth.sign_in_failed", None, "anonymous", "zed@other.example", "sso:custom")]
        assert entries[0].after["created"] is True and entries[0].actor_id == ada.id


def test_enforced_domain_cannot_set_a_password_from_an_invitation_link(make_app) -> None:
    from owlscope.accounts.users import create_user, make_set_password_token

    app = make_app(auth_domains_with_sso_enforcement="acme.example")
    with app.state.services.sessions() as s, s.begin():
        invited = create_user(s, email="bob@acme.example", password=None)
        token = make_set_password_token(app.state.services.settings.session_secret, invited)
    user = WebUser(app)
    assert user.get(f"/auth/set-password/{token}").status_code == 200
    r = user.post(f"/auth/set-password/{token}", {"password": "correct-horse-battery",
                                                  "confirm": "correct-horse-battery"})
    assert r.status_code == 400 and "sign in with single sign-on" in r.text
    with app.state.services.sessions() as s:
        assert s.query(User).filter_by(email="bob@acme.example").one().password_hash is None
    assert sso_sign_in(WebUser(app), "bob").status_code == 303  # the invited account signs in with SSO


def test_inviting_someone_of_an_enforced_domain_gives_no_password_link(make_app) -> None:
    app = make_app(auth_domains_with_sso_enforcement="acme.example")
    owner = WebUser(app)
    owner.sign_up("owner@lab.example")
    r = owner.post("/onboarding", {"org_name": "Lab", "project_name": "Agents"})
    assert r.status_code == 303, r.text
    with app.state.services.sessions() as s:
        org_id = s.query(Organization).filter_by(name="Lab").one().id
    r = owner.post(f"/organization/{org_id}/members", {"email": "bob@acme.example", "role": "VIEWER"})
    assert r.status_code == 303  # no page with a link: straight back to the list
    page = owner.get(f"/organization/{org_id}/settings/members")
    assert "They sign in with single sign-on" in page.text and "/auth/set-password/" not in page.text
    r = owner.post(f"/organization/{org_id}/members", {"email": "carol@lab.example", "role": "VIEWER"})
    assert r.status_code == 200 and "/auth/set-password/" in r.text  # other domains get their link
    bob = WebUser(app)
    assert sso_sign_in(bob, "bob").status_code == 303
    assert bob.get(f"/organization/{org_id}/settings/members").status_code == 200  # a member, as invited
