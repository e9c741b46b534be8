"""Project and organization settings through the UI, on both stacks: API keys, rename and delete,
score configs, members and roles, the environment selector."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from owlscope.app import create_app
from owlscope.ingestion.batch import map_batch_events
from owlscope.ingestion.rows import traces_table
from owlscope.storage.oltp.models import ApiKey, OrganizationMembership, Project, ScoreConfig, User
from owlscope.web.environments import env_cookie_name, list_environments
from support.web import WebUser

SECRET = re.compile(r'LANGFUSE_SECRET_KEY="(sk-lf-[^"]+)"')
PUBLIC = re.compile(r'LANGFUSE_PUBLIC_KEY="(pk-lf-[^"]+)"')


@dataclass
class Setup:
    app: Any
    owner: WebUser
    project_id: str

    @property
    def services(self) -> Any:
        return self.app.state.services

    @property
    def org_id(self) -> str:
        with self.services.sessions() as s:
            return s.get(Project, self.project_id).org_id

    def api(self, public_key: str, secret_key: str) -> int:
        return TestClient(self.app).get("/api/public/projects", auth=(public_key, secret_key)).status_code


@pytest.fixture
def setup(stack: str, make_settings) -> Iterator[Setup]:
    app = create_app(make_settings(stack), run_worker=False)
    with TestClient(app):
        owner = WebUser(app)
        owner.sign_up("owner@example.com", name="Owner")
        project_id = owner.onboard("Acme", "Chatbot")
        yield Setup(app, owner, project_id)


def _create_key(s: Setup, note: str = "") -> tuple[str, str]:
    r = s.owner.post(f"/project/{s.project_id}/settings/api-keys", {"note": note})
    assert r.status_code == 200, r.text
    text = html.unescape(r.text)
    assert 'LANGFUSE_HOST="http://testserver"' in text
    return PUBLIC.search(text).group(1), SECRET.search(text).group(1)


# ---- API keys -----------------------------------------------------------------------------------
def test_api_key_is_shown_once_and_revoking_refuses_it_at_once(setup: Setup) -> None:
    page = setup.owner.get(f"/project/{setup.project_id}/settings/api-keys")
    assert page.status_code == 200 and "No API keys yet" in page.text
    public_key, secret_key = _create_key(setup, note="ci")
    assert setup.api(public_key, secret_key) == 200  # now cached by the API

    listing = setup.owner.get(f"/project/{setup.project_id}/settings/api-keys").text
    assert public_key in listing and f"sk-lf-...{secret_key[-4:]}" in listing
    assert secret_key not in listing
    with setup.services.sessions() as s:
        key = s.query(ApiKey).filter_by(public_key=public_key).one()
        assert key.note == "ci" and secret_key not in key.hashed_secret_key

    r = setup.owner.post(f"/project/{setup.project_id}/settings/api-keys/{key.id}/revoke")
    assert r.status_code == 303
    assert setup.api(public_key, secret_key) == 401
    again = setup.owner.post(f"/project/{setup.project_id}/settings/api-keys/{key.id}/revoke")
    assert again.status_code == 404


def test_keys_of_another_project_cannot_be_revoked_through_this_one(setup: Setup) -> None:
    other_project = setup.owner.onboard("Other org", "Other")
    r = html.unescape(setup.owner.post(f"/project/{other_project}/settings/api-keys", {}).text)
    public_key, secret_key = PUBLIC.search(r).group(1), SECRET.search(r).group(1)
    with setup.services.sessions() as s:
        key_id = s.query(ApiKey).filter_by(public_key=public_key).one().id
    assert setup.owner.post(f"/project/{setup.project_id}/settings/api-keys/{key_id}/revoke").status_code == 404
    assert setup.api(public_key, secret_key) == 200


def test_htmx_key_creation_returns_the_card_and_the_updated_list(setup: Setup) -> None:
    r = setup.owner.post(f"/project/{setup.project_id}/settings/api-keys", {"note": "htmx"}, htmx=True)
    assert r.status_code == 200
    assert 'id="key-created"' in r.text and 'hx-swap-oob="true"' in r.text and "<html" not in r.text
    # Errors of htmx requests come back as a flash message for the page's #flashes area.
    missing = setup.owner.post(f"/project/{setup.project_id}/settings/api-keys/nope/revoke", htmx=True)
    assert missing.status_code == 404 and missing.headers["hx-retarget"] == "#flashes"
    assert 'class="alert alert-error flash"' in missing.text and "<html" not in missing.text


# ---- rename and delete --------------------------------------------------------------------------
def test_rename_project_validates_the_name(setup: Setup) -> None:
    base = f"/project/{setup.project_id}/settings"
    assert setup.owner.post(f"{base}/name", {"name": "   "}).status_code == 400
    setup.owner.post(f"/organization/{setup.org_id}/projects", {"name": "Taken"})
    taken = setup.owner.post(f"{base}/name", {"name": "taken"})
    assert taken.status_code == 409 and "already exists" in taken.text
    ok = setup.owner.post(f"{base}/name", {"name": "  Support   bot "})
    assert ok.status_code == 303
    with setup.services.sessions() as s:
        assert s.get(Project, setup.project_id).name == "Support bot"


def test_delete_project_needs_the_typed_name_and_revokes_its_keys(setup: Setup) -> None:
    public_key, secret_key = _create_key(setup)
    assert setup.api(public_key, secret_key) == 200
    base = f"/project/{setup.project_id}/settings"
    wrong = setup.owner.post(f"{base}/delete", {"confirm": "chatbot"})
    assert wrong.status_code == 400 and "exactly" in wrong.text
    assert setup.api(public_key, secret_key) == 200

    r = setup.owner.post(f"{base}/delete", {"confirm": "Chatbot"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert setup.api(public_key, secret_key) == 401
    assert setup.owner.get(f"/project/{setup.project_id}").status_code == 404
    assert setup.owner.get("/").headers["location"] == f"/organization/{setup.org_id}/settings"
    with setup.services.sessions() as s:
        assert s.get(Project, setup.project_id).deleted_at is not None
        assert s.query(ApiKey).filter_by(project_id=setup.project_id).count() == 0


# ---- score configs ------------------------------------------------------------------------------
def _configs(s: Setup) -> dict[str, ScoreConfig]:
    with s.services.sessions() as session:
        return {c.name: c for c in session.query(ScoreConfig).filter_by(project_id=s.project_id)}


def test_score_configs_create_edit_archive(setup: Setup) -> None:
    base = f"/project/{setup.project_id}/settings/scores"
    assert "No score configs yet" in setup.owner.get(base).text
    cases = [
        ({"name": "correctness", "data_type": "NUMERIC", "min_value": "0", "max_value": "1"}, 303),
        ({"name": "tone", "data_type": "CATEGORICAL", "categories": "rude = -1\nneutral\n\nkind = 2.5"}, 303),
        ({"name": "helpful", "data_type": "BOOLEAN", "description": "Did it help?"}, 303),
        ({"name": "bad range", "data_type": "NUMERIC", "min_value": "1", "max_value": "1"}, 400),
        ({"name": "nan", "data_type": "NUMERIC", "min_value": "abc"}, 400),
        ({"name": "no cats", "data_type": "CATEGORICAL", "categories": "  "}, 400),
        ({"name": "dupes", "data_type": "CATEGORICAL", "categories": "a = 1\nb = 1"}, 400),
        ({"name": "no type", "data_type": "TEXTUAL"}, 400),
        ({"name": "", "data_type": "NUMERIC"}, 400),
    ]
    for form, status in cases:
        r = setup.owner.post(base, form)
        assert r.status_code == status, (form, r.text[-500:])
        if status == 400:
            assert 'role="alert"' in r.text and form["name"] in r.text  # the form is shown again, filled
    configs = _configs(setup)
    assert set(configs) == {"correctness", "tone", "helpful"}
    assert (configs["correctness"].min_value, configs["correctness"].max_value) == (0, 1)
    assert configs["tone"].categories == [
        {"label": "rude", "value": -1}, {"label": "neutral", "value": 1}, {"label": "kind", "value": 2.5}]
    assert [c["label"] for c in configs["helpful"].categories] == ["True", "False"]

    listing = setup.owner.get(base).text
    assert "correctness" in listing and "0 … 1" in listing and "kind" in listing

    tone = configs["tone"]
    edit = setup.owner.get(f"{base}/{tone.id}/edit")
    assert edit.status_code == 200 and "rude = -1" in edit.text
    r = setup.owner.post(f"{base}/{tone.id}", {"name": "tone2", "categories": "bad = 0\ngood = 1", "data_type": "NUMERIC"})
    assert r.status_code == 303
    tone = _configs(setup)["tone2"]
    assert str(tone.data_type) == "CATEGORICAL" and tone.categories[1] == {"label": "good", "value": 1}

    assert setup.owner.post(f"{base}/{tone.id}/archive", {"archived": "1"}).status_code == 303
    assert _configs(setup)["tone2"].is_archived is True
    assert setup.owner.post(f"{base}/{tone.id}/archive", {"archived": "0"}).status_code == 303
    assert _configs(setup)["tone2"].is_archived is False

    other = setup.owner.onboard("Other org", "Other")
    assert setup.owner.get(f"/project/{other}/settings/scores/{tone.id}/edit").status_code == 404
    assert setup.owner.post(f"/project/{other}/settings/scores/{tone.id}/archive").status_code == 404


# ---- members ------------------------------------------------------------------------------------
def _membership(s: Setup, email: str) -> OrganizationMembership | None:
    with s.services.sessions() as session:
        user = session.query(User).filter_by(email=email).one_or_none()
        if user is None:
            return None
        return session.query(OrganizationMembership).filter_by(org_id=s.org_id, user_id=user.id).one_or_none()


def test_members_add_change_and_remove(setup: Setup) -> None:
    org = f"/organization/{setup.org_id}"
    colleague = WebUser(setup.app)
    colleague.sign_up("colleague@example.com")
    assert colleague.get(f"/project/{setup.project_id}").status_code == 404

    added = setup.owner.post(f"{org}/members", {"email": "Colleague@example.com", "role": "ADMIN"})
    assert added.status_code == 303
    assert colleague.get(f"/project/{setup.project_id}").status_code == 200
    again = setup.owner.post(f"{org}/members", {"email": "colleague@example.com", "role": "VIEWER"})
    assert again.status_code == 409 and "already a member" in again.text
    assert setup.owner.post(f"{org}/members", {"email": "x@example.com", "role": "GOD"}).status_code == 400

    invited = setup.owner.post(f"{org}/members", {"email": "new@example.com", "role": "VIEWER"})
    assert invited.status_code == 200
    link = re.search(r"(http://testserver/auth/set-password/[^<\s]+)", invited.text).group(1)
    assert "Invited" in invited.text
    assert WebUser(setup.app).get(link.removeprefix("http://testserver")).status_code == 200

    # An admin may not touch OWNER, in either direction.
    admin_m = _membership(setup, "colleague@example.com")
    owner_m = _membership(setup, "owner@example.com")
    assert colleague.post(f"{org}/members", {"email": "x2@example.com", "role": "OWNER"}).status_code == 403
    assert colleague.post(f"{org}/members/{owner_m.id}/role", {"role": "MEMBER"}).status_code == 403
    assert colleague.post(f"{org}/members/{owner_m.id}/remove").status_code == 403
    assert colleague.post(f"{org}/members/{admin_m.id}/role", {"role": "OWNER"}).status_code == 403

    # The last owner can neither be demoted nor removed nor leave.
    last = setup.owner.post(f"{org}/members/{owner_m.id}/role", {"role": "ADMIN"})
    assert last.status_code == 409 and "at least one owner" in last.text
    assert setup.owner.post(f"{org}/members/{owner_m.id}/remove").status_code == 409
    # With a second owner, the first may step down.
    assert setup.owner.post(f"{org}/members/{admin_m.id}/role", {"role": "OWNER"}).status_code == 303
    assert setup.owner.post(f"{org}/members/{owner_m.id}/role", {"role": "MEMBER"}).status_code == 303
    assert _membership(setup, "owner@example.com").role == "MEMBER"
    # A member cannot manage others, but can leave.
    new_m = _membership(setup, "new@example.com")
    assert setup.owner.post(f"{org}/members/{new_m.id}/remove").status_code == 403
    left = setup.owner.post(f"{org}/members/{owner_m.id}/remove")
    assert left.status_code == 303 and left.headers["location"] == "/"
    assert _membership(setup, "owner@example.com") is None
    assert setup.owner.get(f"/project/{setup.project_id}").status_code == 404
    # Unknown membership ids are 404, not 500.
    assert colleague.post(f"{org}/members/nope/role", {"role": "VIEWER"}).status_code == 404


def test_invite_links_only_for_accounts_of_this_organization(setup: Setup) -> None:
    org = f"/organization/{setup.org_id}"
    setup.owner.post(f"{org}/members", {"email": "shared@example.com", "role": "MEMBER"})
    m = _membership(setup, "shared@example.com")
    fresh = setup.owner.post(f"{org}/members/{m.id}/invite-link")
    assert fresh.status_code == 200 and "/auth/set-password/" in fresh.text
    other_org = setup.owner.onboard("Second", "P2")
    with setup.services.sessions() as s:
        second_org = s.get(Project, other_org).org_id
    setup.owner.post(f"/organization/{second_org}/members", {"email": "shared@example.com", "role": "MEMBER"})
    refused = setup.owner.post(f"{org}/members/{m.id}/invite-link")
    assert refused.status_code == 403 and "another organization" in refused.text


# ---- environment selector -----------------------------------------------------------------------
def test_environment_selector_lists_olap_environments_and_remembers_the_choice(setup: Setup) -> None:
    now = "2026-01-01T00:00:00.000Z"
    events = [
        {"id": f"e{i}", "type": "trace-create", "timestamp": now,
         "body": {"id": f"t{i}", "name": "x", "timestamp": now, **({"environment": env} if env else {})}}
        for i, env in enumerate(["production", "staging", None])
    ]
    rows = map_batch_events(events, setup.project_id)
    setup.services.olap.insert_arrow("trace_events", traces_table(rows.traces))
    assert list_environments(setup.services, setup.project_id) == ["default", "production", "staging"]

    page = setup.owner.get(f"/project/{setup.project_id}").text
    assert '<option value="staging">staging</option>' in page
    target = f"/project/{setup.project_id}/settings"
    r = setup.owner.post(f"/project/{setup.project_id}/environment", {"environment": "staging", "next": target})
    assert r.status_code == 303 and r.headers["location"] == target
    assert setup.owner.client.cookies.get(env_cookie_name(setup.project_id)) == "staging"
    assert '<option value="staging" selected>' in setup.owner.get(target).text
    # Invalid values and foreign redirect targets are ignored: back to all environments.
    r = setup.owner.post(f"/project/{setup.project_id}/environment",
                         {"environment": "bad value!", "next": "https://evil.example"})
    assert r.headers["location"] == f"/project/{setup.project_id}"
    assert env_cookie_name(setup.project_id) not in setup.owner.client.cookies


def test_start_page_goes_to_the_last_project_used(setup: Setup) -> None:
    second = setup.owner.onboard("Second org", "Second")
    assert setup.owner.get(f"/project/{second}").status_code == 200
    assert setup.owner.get("/").headers["location"] == f"/project/{second}"
    setup.owner.get(f"/project/{setup.project_id}")
    assert setup.owner.get("/").headers["location"] == f"/project/{setup.project_id}"
    switcher = setup.owner.get(f"/project/{setup.project_id}").text.split("</aside>")[0]
    assert "Second org" in switcher and "Chatbot" in switcher and "Acme" in switcher
