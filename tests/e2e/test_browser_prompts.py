"""Prompt management in a real browser: the list with folders and search, creating text and chat
prompts (the chat editor's rows, config validation), a new version, the diff, moving labels, the
SDK snippet, and a generation linked through the SDK's OpenAI wrapper shown on the prompt's page
and in its trace."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from browser import *  # noqa: F403
from browser import onboard, shot, sign_in, sign_up
from playwright.sync_api import expect

from owlscope.auth.passwords import hash_password
from owlscope.storage.oltp.models import OrganizationMembership, Project, User
from support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.browser


def test_prompt_pages(live_server, new_page) -> None:
    t = "prompts"
    base = live_server.url
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    sign_up(page, base, email="pat@example.com")
    project_id = onboard(page, org="Acme", project="Chatbot")

    page.get_by_label("Main navigation").get_by_role("link", name="Prompts").click()
    expect(page.get_by_text("No prompts yet")).to_be_visible()
    shot(page, t, "empty")

    # a text prompt: a broken config is refused with the reason, and what was typed stays
    page.get_by_role("link", name="New prompt").first.click()
    expect(page.get_by_role("radio", name="Text")).to_be_checked()
    expect(page.get_by_label("Prompt text")).to_be_visible()
    page.get_by_label("Name").fill("support/answer")
    page.get_by_label("Prompt text").fill("Answer {{question}} politely.\nUse {{context}}.")
    page.get_by_label("Config (JSON)").fill('{"temperature": 0.2,}')
    page.get_by_label("Labels").fill("production")
    page.get_by_label("Commit message").fill("first version")
    page.get_by_role("button", name="Create prompt").click()
    expect(page.get_by_role("alert")).to_contain_text("Config is not valid JSON")
    expect(page.get_by_label("Prompt text")).to_have_value("Answer {{question}} politely.\nUse {{context}}.")
    shot(page, t, "config-error")
    page.get_by_label("Config (JSON)").fill('{"model": "gpt-4o-mini", "temperature": 0.2}')
    page.get_by_role("button", name="Create prompt").click()

    expect(page).to_have_url(re.compile(r"/prompts/support/answer\?version=1$"))
    expect(page.get_by_role("status")).to_contain_text("Created prompt support/answer")
    expect(page.locator("#prompt-content")).to_contain_text("Answer {{question}} politely.")
    expect(page.locator("#prompt-content .pr-var").first).to_have_text("{{question}}")
    expect(page.locator("#prompt-config")).to_contain_text('"temperature": 0.2')
    shot(page, t, "version-1")

    # the next version starts from this one
    page.get_by_role("link", name="New version").click()
    expect(page.get_by_label("Prompt text")).to_have_value("Answer {{question}} politely.\nUse {{context}}.")
    page.get_by_label("Prompt text").fill("Answer {{question}} briefly.\nUse {{context}}.\nCite {{source}}.")
    page.get_by_label("Labels").fill("staging")
    page.get_by_label("Commit message").fill("shorter answers")
    page.get_by_role("button", name="Save version 2").click()
    expect(page).to_have_url(re.compile(r"\?version=2$"))
    versions = page.get_by_role("complementary", name="Versions")
    expect(versions.get_by_role("link")).to_have_count(2)
    expect(versions.get_by_role("link").first).to_contain_text("shorter answers")

    # diff: v1 against v2, changed words marked
    page.get_by_role("link", name="Diff", exact=True).click()
    diff = page.locator("#prompt-diff")
    expect(diff.locator("tr.pr-diff-del")).to_have_count(1)
    expect(diff.locator("tr.pr-diff-add")).to_have_count(2)
    expect(diff.locator("tr.pr-diff-add mark").first).to_have_text("briefly")
    expect(page.locator(".pr-diff-stats")).to_have_text("+2 −1")
    page.get_by_label("with").select_option("1")  # autosubmits: v1 against v1
    expect(page.get_by_text("Choose two different versions")).to_be_visible()
    page.get_by_label("with").select_option("2")
    expect(page.locator(".pr-diff-stats")).to_have_text("+2 −1")
    shot(page, t, "diff")

    # move production to v2 (and add canary): v1 loses it
    page.get_by_role("link", name="Prompt", exact=True).click()
    page.get_by_label("Labels of version 2").fill("production, canary")
    page.get_by_role("button", name="Save labels").click()
    expect(page.get_by_role("status")).to_contain_text("Labels of version 2 set to: production, canary")
    v1 = versions.get_by_role("link").nth(1)
    expect(v1).not_to_contain_text("production")
    expect(versions.get_by_role("link").first).to_contain_text("production")

    # the snippet fetches by label and copies
    page.get_by_role("link", name="Use in code").click()
    expect(page.locator("#snippet-python")).to_contain_text('get_prompt("support/answer", label="production")')
    page.locator("[data-copy-target=snippet-python]").click()
    expect(page.locator("[data-copy-target=snippet-python]")).to_contain_text("Copied")
    assert "langfuse.get_prompt" in page.evaluate("navigator.clipboard.readText()")
    shot(page, t, "snippet")

    # a chat prompt with the message editor: add a row, make it a placeholder
    page.goto(f"{base}/project/{project_id}/prompts/new")
    page.get_by_role("radio", name="Chat").check()
    expect(page.get_by_label("Prompt text")).to_be_hidden()
    rows = page.locator(".pr-msg-row")
    expect(rows).to_have_count(2)
    page.get_by_label("Name").fill("assistant")
    rows.nth(0).locator("textarea").fill("You are {{persona}}.")
    rows.nth(1).locator("textarea").fill("{{question}}")
    page.get_by_role("button", name="Add message").click()
    expect(rows).to_have_count(3)
    rows.nth(2).locator("select").select_option("placeholder")
    rows.nth(2).locator("textarea").fill("history")
    shot(page, t, "chat-form")
    page.get_by_role("button", name="Create prompt").click()
    expect(page.locator(".pr-chat-msg")).to_have_count(3)
    expect(page.locator(".pr-chat-placeholder")).to_contain_text("history")
    expect(page.get_by_label("Variables")).to_contain_text("{{persona}}")
    shot(page, t, "chat")

    # the list: folders and search
    page.get_by_label("Main navigation").get_by_role("link", name="Prompts").click()
    expect(page.get_by_role("link", name="support/")).to_be_visible()
    expect(page.get_by_role("link", name="assistant")).to_be_visible()
    shot(page, t, "list")
    page.get_by_role("link", name="support/").click()
    expect(page.get_by_role("link", name="answer", exact=True)).to_be_visible()
    page.get_by_label("Search prompts").fill("assist")
    page.get_by_label("Search prompts").press("Enter")
    expect(page.get_by_role("link", name="assistant")).to_be_visible()
    expect(page.get_by_role("link", name="support/answer")).to_have_count(0)

    dark = new_page(color_scheme="dark")
    sign_in(dark, base, email="pat@example.com")
    dark.goto(f"{base}/project/{project_id}/prompts/support/answer?tab=diff&a=1&b=2")
    expect(dark.locator("#prompt-diff")).to_be_visible()
    shot(dark, t, "diff-dark")


def _browser_user_for(services, project_id: str, email: str) -> None:
    """A member of the project's organization who can sign in with the browser fixtures' password."""
    from browser import PASSWORD

    with services.sessions() as s, s.begin():
        org_id = s.get(Project, project_id).org_id
        user = User(email=email, password_hash=hash_password(PASSWORD))
        s.add(user)
        s.flush()
        s.add(OrganizationMembership(org_id=org_id, user_id=user.id, role="MEMBER"))


def test_generation_from_the_openai_wrapper_on_the_prompt_page(sdk_server, new_page) -> None:
    """Uses the process-wide SDK server and client (never shut down here)."""
    from langfuse.openai import OpenAI

    t = "prompts-linked"
    lf, project_id = sdk_server.client, sdk_server.project_id
    name = f"linked/answer-{uuid.uuid4().hex[:6]}"
    lf.create_prompt(name=name, prompt="Answer: {{q}}", labels=["production"], commit_message="v1")
    prompt = lf.get_prompt(name, cache_ttl_seconds=0)
    with FakeOpenAI() as llm:
        reply = OpenAI(base_url=llm.base_url, api_key="test-key").chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": prompt.compile(q="why")}], langfuse_prompt=prompt,
            langfuse_public_key=sdk_server.public_key)
    assert reply.choices[0].message.content == "echo: Answer: why"
    lf.flush()

    olap = sdk_server.services.olap
    deadline, rows = time.monotonic() + 30, []
    while time.monotonic() < deadline and not rows:
        rows = olap.query(
            "SELECT trace_id, id FROM (SELECT trace_id, id, argMaxIfMerge(prompt_name) AS x_name"
            " FROM {db}.observations WHERE project_id = {p:String} GROUP BY project_id, trace_id, id)"
            " WHERE x_name = {n:String}", {"p": project_id, "n": name})
        time.sleep(0.2)
    assert rows, "the linked generation never reached the OLAP store"
    trace_id, generation_id = rows[0]

    email = f"linked-{uuid.uuid4().hex[:6]}@example.com"
    _browser_user_for(sdk_server.services, project_id, email)
    page = new_page()
    sign_in(page, sdk_server.url, email=email)
    page.goto(f"{sdk_server.url}/project/{project_id}/prompts/{name}?tab=metrics")
    metrics = page.locator("#prompt-metrics tbody tr")
    expect(metrics).to_have_count(1)
    expect(metrics.first.locator("td").nth(1)).to_have_text("1")  # one generation for v1
    page.get_by_role("link", name="Generations").click()
    row = page.locator("#prompt-generations tbody tr")
    expect(row).to_have_count(1)
    expect(row.first).to_contain_text("gpt-4o")
    shot(page, t, "generations")
    row.first.get_by_role("link", name="Open trace").click()
    expect(page).to_have_url(re.compile(rf"/traces/{trace_id}\?observation={generation_id}$"))
    expect(page.locator("main")).to_contain_text(trace_id[:8])
    shot(page, t, "trace")
