"""Accounts in a real browser: sign up, onboarding, API keys, members, and access refused."""

from __future__ import annotations

import re

import httpx
import pytest
from browser import *  # noqa: F403
from browser import PASSWORD, onboard, shot, sign_up
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def _api_status(base_url: str, public_key: str, secret_key: str) -> int:
    return httpx.get(f"{base_url}/api/public/projects", auth=(public_key, secret_key), timeout=10).status_code


def test_sign_up_onboard_and_create_api_key(live_server, new_page) -> None:
    t = "accounts"
    base = live_server.url
    page = new_page(permissions=["clipboard-read", "clipboard-write"])

    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/auth/sign-in$"))
    expect(page.get_by_role("heading", name="Sign in to Owlscope")).to_be_visible()
    shot(page, t, "sign-in")

    page.get_by_role("link", name="Create one").click()
    page.get_by_label("Name").fill("Ada Lovelace")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 8 characters")
    shot(page, t, "sign-up-error")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")  # keyboard submit

    expect(page).to_have_url(re.compile(r"/onboarding$"))
    shot(page, t, "onboarding")
    page.get_by_label("Organization name").fill("Acme")
    page.get_by_label("Project name").fill("Chatbot")
    page.get_by_label("Project name").press("Enter")

    expect(page).to_have_url(re.compile(r"/project/[^/]+/settings/api-keys$"))
    expect(page.get_by_text("No API keys yet")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Created organization Acme and project Chatbot")
    shot(page, t, "api-keys-empty")

    page.get_by_placeholder("Note (optional)").fill("local dev")
    page.get_by_role("button", name="Create new API key").click()
    env_lines = page.locator("#env-lines")
    expect(env_lines).to_contain_text('LANGFUSE_PUBLIC_KEY="pk-lf-')
    expect(env_lines).to_contain_text('LANGFUSE_SECRET_KEY="sk-lf-')
    expect(env_lines).to_contain_text(f'LANGFUSE_HOST="{base}"')
    shot(page, t, "api-key-created")
    text = env_lines.inner_text()
    public_key = re.search(r'LANGFUSE_PUBLIC_KEY="([^"]+)"', text).group(1)
    secret_key = re.search(r'LANGFUSE_SECRET_KEY="([^"]+)"', text).group(1)
    assert _api_status(base, public_key, secret_key) == 200

    page.get_by_role("button", name="Copy all").click()
    expect(page.get_by_role("button", name="Copy all")).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()").strip() == text.strip()

    # Shown once: after a reload the list shows only the shortened secret.
    page.reload()
    expect(page.locator("#env-lines")).to_have_count(0)
    expect(page.get_by_role("cell", name=f"sk-lf-...{secret_key[-4:]}")).to_be_visible()
    assert secret_key not in page.content()
    shot(page, t, "api-keys-list")

    page.get_by_role("link", name="Dashboard", exact=True).click()
    expect(page.get_by_role("heading", name="Get started")).to_be_visible()
    shot(page, t, "project-home")
    page.get_by_label("Switch project").click()
    expect(page.get_by_role("menuitem", name="Chatbot")).to_be_visible()
    shot(page, t, "project-switcher", full_page=False)
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("menuitem", name="Chatbot")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("menuitem", name="Chatbot")).to_be_hidden()

    page.get_by_role("link", name="Settings", exact=True).click()
    expect(page.get_by_role("heading", name="Delete project")).to_be_visible()
    shot(page, t, "project-settings")

    # Revoke: the key is refused by the API at once.
    page.get_by_role("link", name="API keys").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Revoke {public_key}").click()
    expect(page.get_by_role("status")).to_contain_text("API key revoked")
    assert _api_status(base, public_key, secret_key) == 401


def test_score_configs_and_navigation(live_server, new_page) -> None:
    t = "scores"
    page = new_page()
    sign_up(page, live_server.url, email="grace@example.com", name="Grace")
    onboard(page, org="Hopper Labs", project="Compiler")

    page.get_by_role("link", name="Scores", exact=True).first.click()  # the nav's scores page
    expect(page.get_by_text("No scores yet")).to_be_visible()
    shot(page, t, "scores-page")

    page.get_by_role("link", name="Settings", exact=True).click()
    page.get_by_role("navigation", name="Project settings").get_by_role("link", name="Scores").click()
    expect(page.get_by_text("No score configs yet")).to_be_visible()
    shot(page, t, "empty")
    page.get_by_role("link", name="New score config").first.click()
    page.get_by_label("Name").fill("tone")
    page.get_by_label("Data type").select_option("CATEGORICAL")
    expect(page.get_by_label("Minimum")).to_be_hidden()
    page.locator("#f-categories").fill("rude = 0\nneutral = 1\nfriendly = 2")
    page.get_by_label("Description").fill("How friendly the answer sounds.")
    shot(page, t, "form")
    page.get_by_role("button", name="Create score config").click()
    expect(page.get_by_role("cell", name="tone", exact=True)).to_be_visible()

    page.get_by_role("link", name="New score config").click()
    page.get_by_label("Name").fill("correctness")
    page.get_by_label("Minimum").fill("1")
    page.get_by_label("Maximum").fill("0")
    page.get_by_role("button", name="Create score config").click()
    expect(page.get_by_role("alert")).to_contain_text("Maximum value must be greater than Minimum value")
    page.get_by_label("Minimum").fill("0")
    page.get_by_label("Maximum").fill("1")
    page.get_by_role("button", name="Create score config").click()
    expect(page.get_by_role("cell", name="correctness", exact=True)).to_be_visible()
    shot(page, t, "list")


def test_other_user_without_membership_is_refused(live_server, new_page) -> None:
    t = "refused"
    base = live_server.url
    alice = new_page()
    sign_up(alice, base, email="alice@example.com")
    alice_project = onboard(alice, org="Alice Org", project="Secret Project")
    alice.goto(f"{base}/project/{alice_project}")
    org_href = alice.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Alice Org").get_attribute(
        "href"
    )

    bob = new_page()
    sign_up(bob, base, email="bob@example.com")
    onboard(bob, org="Bob Org", project="Bob Project")
    for path in (f"/project/{alice_project}", f"/project/{alice_project}/settings/api-keys", org_href):
        response = bob.goto(base + path)
        assert response is not None and response.status == 404, path
        expect(bob.get_by_role("heading", name="Page not found")).to_be_visible()
        assert "Secret Project" not in bob.content()
        assert "Alice Org" not in bob.content()
    shot(bob, t, "not-found")

    # Signed out: project pages send you to sign in, and come back after it.
    anonymous = new_page()
    anonymous.goto(f"{base}/project/{alice_project}/settings")
    expect(anonymous).to_have_url(re.compile(r"/auth/sign-in\?next="))
    anonymous.get_by_label("Email").fill("alice@example.com")
    anonymous.get_by_label("Password").fill("wrong password")
    anonymous.get_by_role("button", name="Sign in").click()
    expect(anonymous.get_by_role("alert")).to_contain_text("Invalid email or password")
    anonymous.get_by_label("Password").fill(PASSWORD)
    anonymous.get_by_role("button", name="Sign in").click()
    expect(anonymous).to_have_url(f"{base}/project/{alice_project}/settings")


def test_invited_viewer_sets_password_and_is_read_only(live_server, new_page) -> None:
    t = "members"
    base = live_server.url
    owner = new_page(color_scheme="dark")
    sign_up(owner, base, email="owner@example.com", name="Olivia Owner")
    project_id = onboard(owner, org="Team", project="Assistant")

    owner.goto(f"{base}/project/{project_id}/settings/api-keys")
    owner.get_by_role("button", name="Create new API key").click()
    expect(owner.locator("#env-lines")).to_be_visible()
    shot(owner, t, "api-key-created-dark")

    owner.get_by_role("link", name="Members").click()
    owner.get_by_label("Email").fill("victor@example.com")
    owner.get_by_label("Role", exact=True).select_option("VIEWER")
    owner.get_by_role("button", name="Add member").click()
    link = owner.locator("#invite-url").inner_text().strip()
    assert "/auth/set-password/" in link
    expect(owner.get_by_role("row", name=re.compile("victor@example.com"))).to_contain_text("Invited")
    shot(owner, t, "invite-link-dark")

    viewer = new_page()
    viewer.goto(link)
    expect(viewer.get_by_text("victor@example.com")).to_be_visible()
    viewer.get_by_label("New password").fill(PASSWORD)
    viewer.get_by_label("Repeat the password").fill(PASSWORD)
    viewer.get_by_role("button", name="Set password and sign in").click()
    expect(viewer).to_have_url(f"{base}/project/{project_id}")
    viewer.get_by_role("link", name="Settings", exact=True).click()
    expect(viewer.get_by_role("link", name="API keys")).to_have_count(0)
    expect(viewer.get_by_text("Only owners of Team can delete projects.")).to_be_visible()
    response = viewer.goto(f"{base}/project/{project_id}/settings/api-keys")
    assert response is not None and response.status == 403
    expect(viewer.get_by_role("heading", name="You do not have access to this")).to_be_visible()
    shot(viewer, t, "viewer-forbidden")

    # The link worked once.
    used = new_page().goto(link)
    assert used is not None and used.status == 400

    # The owner promotes the viewer; the role select submits on change.
    owner.reload()
    owner.get_by_label("Role of victor@example.com").select_option("ADMIN")
    expect(owner.get_by_role("status")).to_contain_text("victor@example.com is now ADMIN")
    viewer.goto(f"{base}/project/{project_id}/settings/api-keys")
    expect(viewer.get_by_role("heading", name="API keys")).to_be_visible()


def test_delete_project_with_typed_name(live_server, new_page) -> None:
    t = "delete"
    page = new_page()
    sign_up(page, live_server.url, email="del@example.com")
    project_id = onboard(page, org="Demolition", project="Old app")
    page.goto(f"{live_server.url}/project/{project_id}/settings")
    button = page.get_by_role("button", name="Delete this project")
    expect(button).to_be_disabled()
    page.get_by_label(re.compile("Type the project name")).fill("Old")
    expect(button).to_be_disabled()
    page.get_by_label(re.compile("Type the project name")).fill("Old app")
    expect(button).to_be_enabled()
    shot(page, t, "confirm")
    button.click()
    # Back to the organization, which now has no projects.
    expect(page.get_by_role("heading", name="No projects yet")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Project Old app was deleted")
    shot(page, t, "org-without-projects")
    response = page.goto(f"{live_server.url}/project/{project_id}")
    assert response is not None and response.status == 404


def test_organization_api_key_and_project_deletion_progress(live_server, new_page) -> None:
    t = "org-api-keys"
    base = live_server.url
    page = new_page()
    sign_up(page, base, email="orgadmin@example.com")
    project_id = onboard(page, org="Keyholders", project="Doomed app")
    org_id = _org_id(base, page, project_id)
    page.goto(f"{base}/organization/{org_id}/settings")
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="Organization API keys", exact=True)).to_be_visible()
    expect(page.get_by_text("No organization API keys")).to_be_visible()
    page.get_by_placeholder("Note (optional)").fill("provisioning")
    page.get_by_role("button", name="Create organization API key").click()
    expect(page.get_by_role("heading", name="Organization API key created")).to_be_visible()
    shot(page, t, "created")
    public_key = page.locator("#new-public-key").input_value()
    secret_key = page.locator("#new-secret-key").input_value()
    auth = (public_key, secret_key)
    listed = httpx.get(f"{base}/api/public/organizations/projects", auth=auth, timeout=10)
    assert listed.status_code == 200 and [p["id"] for p in listed.json()["projects"]] == [project_id]
    assert _api_status(base, public_key, secret_key) == 403  # not a project key

    page.reload()
    expect(page.locator("#new-secret-key")).to_have_count(0)
    expect(page.get_by_role("cell", name="provisioning")).to_be_visible()
    assert secret_key not in page.content()

    deleted = httpx.delete(f"{base}/api/public/projects/{project_id}", auth=auth, timeout=10)
    assert deleted.status_code == 202
    page.goto(f"{base}/organization/{org_id}/settings")
    deletions = page.locator("#project-deletions")
    expect(deletions).to_contain_text("Doomed app")
    expect(deletions.get_by_text("Queued", exact=True)).to_be_visible()
    expect(deletions).to_contain_text("0/4")
    shot(page, t, "deletion-queued")
    # This server runs no worker: run the job as the worker would, then look again.
    from sqlalchemy import select

    from owlscope.project_deletion import run_project_deletion
    from owlscope.storage.oltp.admin_models import ProjectDeletion

    with live_server.services.sessions() as session:
        job_id = session.scalars(select(ProjectDeletion.id).where(ProjectDeletion.project_id == project_id)).one()
    assert run_project_deletion(live_server.services, job_id) == "done"
    page.reload()
    expect(deletions.get_by_text("Deleted", exact=True)).to_be_visible()
    expect(deletions).to_contain_text("4/4")
    shot(page, t, "deletion-done")


def _org_id(base: str, page, project_id: str) -> str:
    page.goto(f"{base}/project/{project_id}/settings/members")
    match = re.search(r"/organization/([^/\"']+)/settings", page.content())
    assert match, "no link to the organization settings"
    return match.group(1)
