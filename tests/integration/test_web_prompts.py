"""The prompt pages in-process: the list with folders, search and labels; creating text and chat
versions through the form; config validation; label editing; the diff; metrics and linked
generations from the OLAP store; the SDK snippet; and who may change what."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from owlscope.app import create_app
from owlscope.auth.passwords import hash_password
from owlscope.errors import NotFound
from owlscope.ingestion.rows import ObservationEvent, ScoreEvent, observations_table, scores_table
from owlscope.prompts import parse_create, prompt_store
from owlscope.storage.oltp.models import Organization, OrganizationMembership, Project, User
from support.web import PASSWORD, WebUser


@dataclass
class Team:
    app: Any
    project_id: str
    users: dict[str, WebUser]

    @property
    def services(self) -> Any:
        return self.app.state.services

    @property
    def store(self) -> Any:
        return prompt_store(self.services)

    def url(self, path: str = "") -> str:
        return f"/project/{self.project_id}{path}"

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.store.create(self.project_id, parse_create(body))


def make_team(app: Any) -> Team:
    """An organization with one project and an OWNER, a MEMBER and a VIEWER, each signed in."""
    with app.state.services.sessions() as s, s.begin():
        org = Organization(name="Acme")
        s.add(org)
        s.flush()
        project = Project(org_id=org.id, name="Chatbot")
        s.add(project)
        for role in ("OWNER", "MEMBER", "VIEWER"):
            user = User(email=f"{role.lower()}@example.com", password_hash=hash_password(PASSWORD))
            s.add(user)
            s.flush()
            s.add(OrganizationMembership(org_id=org.id, user_id=user.id, role=role))
        s.flush()
        project_id = project.id
    users = {}
    for role in ("OWNER", "MEMBER", "VIEWER"):
        users[role] = WebUser(app)
        assert users[role].sign_in(f"{role.lower()}@example.com").status_code == 303
    return Team(app, project_id, users)


@pytest.fixture
def team(make_settings) -> Iterator[Team]:
    app = create_app(make_settings(), run_worker=False)
    with TestClient(app):
        yield make_team(app)


_INLINE = re.compile(r"</?(span|mark|b|strong|code|em|a)(\s[^>]*)?>")


def text_of(response: Any) -> str:
    """The page's visible text, roughly: tags removed (inline ones without a space), entities
    decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", _INLINE.sub("", response.text))).split())


def _new_version(team: Team, role: str = "OWNER", **fields: Any) -> Any:
    form = {"type": "text", "config": "{}", "labels": "", "tags": "", "commit_message": "", **fields}
    return team.users[role].post(team.url("/prompts/new"), form)


# ---- the list ---------------------------------------------------------------------------------------
def test_list_shows_folders_search_and_label_filter(team: Team) -> None:
    team.create({"name": "team/qa/answer", "prompt": "Answer {{q}}", "labels": ["production"], "tags": ["support"]})
    team.create({"name": "team/summarize", "prompt": "Summarize {{text}}", "labels": ["staging"]})
    team.create({"name": "assistant", "type": "chat", "prompt": [{"role": "system", "content": "Hi"}]})
    owner = team.users["OWNER"]

    root = owner.get(team.url("/prompts"))
    assert root.status_code == 200
    assert 'href="/project/%s/prompts?folder=team"' % team.project_id in root.text
    assert "team/" in text_of(root) and "2 prompts" in text_of(root)
    assert f'href="/project/{team.project_id}/prompts/assistant"' in root.text
    assert "summarize" not in text_of(root)  # inside the folder, not at the root

    folder = owner.get(team.url("/prompts"), params={"folder": "team"})
    page = text_of(folder)
    assert "qa/" in page and "summarize" in page and "assistant" not in page
    assert f'href="/project/{team.project_id}/prompts/team/summarize"' in folder.text

    found = text_of(owner.get(team.url("/prompts"), params={"q": "ANSW"}))
    assert "team/qa/answer" in found and "summarize" not in found and "assistant" not in found
    by_tag = text_of(owner.get(team.url("/prompts"), params={"q": "support"}))
    assert "team/qa/answer" in by_tag

    staged = owner.get(team.url("/prompts"), params={"label": "staging", "folder": "team"})
    assert "summarize" in text_of(staged) and "qa/" not in text_of(staged)
    assert "No prompts match" in text_of(owner.get(team.url("/prompts"), params={"q": "nothing-like-this"}))


def test_empty_list_offers_to_create(team: Team) -> None:
    page = team.users["MEMBER"].get(team.url("/prompts"))
    assert "No prompts yet" in text_of(page) and team.url("/prompts/new") in page.text
    viewer = team.users["VIEWER"].get(team.url("/prompts"))
    assert team.url("/prompts/new") not in viewer.text


# ---- creating versions ---------------------------------------------------------------------------------
def test_create_text_and_chat_versions(team: Team) -> None:
    r = _new_version(team, name="support/reply", text="Reply to {{message}}.", config='{"temperature": 0.2}',
                     labels="production", tags="support, email", commit_message="first")
    assert r.status_code == 303
    assert r.headers["location"] == team.url("/prompts/support/reply?version=1")
    v1 = team.store.get(team.project_id, "support/reply", version=1)
    assert (v1["prompt"], v1["config"], v1["commitMessage"]) == ("Reply to {{message}}.", {"temperature": 0.2}, "first")
    assert v1["labels"] == ["production", "latest"] and v1["tags"] == ["support", "email"]
    assert v1["createdBy"] == "owner@example.com"

    # the form for the next version starts from the version it was opened on
    form = team.users["OWNER"].get(team.url("/prompts/new"), params={"name": "support/reply", "version": 1})
    assert "Reply to {{message}}." in html.unescape(form.text) and "Save version 2" in form.text

    r = _new_version(team, name="support/reply", text="Reply kindly to {{message}}.", tags="support, email",
                     labels="staging")
    assert r.status_code == 303 and r.headers["location"].endswith("?version=2")
    assert [v["version"] for v in team.store.versions(team.project_id, "support/reply")] == [2, 1]

    r = _new_version(team, name="assistant", type="chat", msg_role=["system", "placeholder", "user", "user"],
                     msg_content=["You are {{persona}}.", "history", "{{question}}", "  "])
    assert r.status_code == 303
    chat = team.store.get(team.project_id, "assistant", version=1)
    assert chat["type"] == "chat" and chat["prompt"] == [
        {"role": "system", "content": "You are {{persona}}."},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{question}}"},
    ]
    page = team.users["VIEWER"].get(team.url("/prompts/assistant"))
    text = text_of(page)
    assert "You are {{persona}}." in text and "Messages from history are inserted here" in text
    assert '<span class="pr-var">{{persona}}</span>' in page.text  # variables highlighted


def test_invalid_config_is_shown_and_nothing_is_saved(team: Team) -> None:
    r = _new_version(team, name="broken", text="Hello {{name}}", config='{"temperature": 0.2,}')
    assert r.status_code == 400
    page = text_of(r)
    assert "Config is not valid JSON" in page and "line 1" in page
    assert "Hello {{name}}" in html.unescape(r.text)  # what was typed is kept
    with pytest.raises(NotFound):
        team.store.versions(team.project_id, "broken")

    team.create({"name": "kept", "prompt": "v1"})
    r = _new_version(team, name="kept", text="v2", config="[1, 2]")
    assert r.status_code == 400 and "Config must be a JSON object" in text_of(r)
    r = _new_version(team, name="kept", text="   ")
    assert r.status_code == 400 and "The prompt text is empty" in text_of(r)
    r = _new_version(team, name="kept", text="v2", labels="Not A Label")
    assert r.status_code == 400 and "is invalid" in text_of(r)
    assert len(team.store.versions(team.project_id, "kept")) == 1


def test_label_editing_moves_labels(team: Team) -> None:
    team.create({"name": "qa", "prompt": "one", "labels": ["production"]})
    team.create({"name": "qa", "prompt": "two", "labels": ["staging"]})
    member = team.users["MEMBER"]
    r = member.post(team.url("/prompts/qa/labels"), {"version": "2", "labels": "production, canary"})
    assert r.status_code == 303 and r.headers["location"] == team.url("/prompts/qa?version=2")
    v1, v2 = (team.store.get(team.project_id, "qa", version=n) for n in (1, 2))
    assert v1["labels"] == []
    assert sorted(v2["labels"]) == ["canary", "latest", "production"]  # staging replaced, latest kept

    r = member.post(team.url("/prompts/qa/labels"), {"version": "1", "labels": "Prod!"})
    assert r.status_code == 400 and "is invalid" in text_of(r)
    assert team.store.get(team.project_id, "qa", version=1)["labels"] == []

    page = member.get(team.url("/prompts/qa"), params={"version": 2})
    assert 'value="production, canary"' in page.text or 'value="canary, production"' in page.text


def test_diff_between_two_versions(team: Team) -> None:
    team.create({"name": "d", "prompt": "Line one\nLine two\nLine three", "config": {"temperature": 0.1}})
    team.create({"name": "d", "prompt": "Line one\nLine 2\nLine three\nLine four", "config": {"temperature": 0.5}})
    page = team.users["VIEWER"].get(team.url("/prompts/d"), params={"tab": "diff", "a": 1, "b": 2})
    assert page.status_code == 200
    rows = re.findall(r'<tr class="pr-diff-(\w+)">(.*?)</tr>', page.text, re.S)
    prompt_rows = [(kind, " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())) for kind, body in rows]
    assert ("del", "2 − Line two") in prompt_rows
    assert ("add", "2 + Line 2") in prompt_rows
    assert ("add", "4 + Line four") in prompt_rows
    assert ("equal", "1 1 Line one") in prompt_rows
    assert "<mark>two</mark>" in page.text and "<mark>2</mark>" in page.text  # the words that changed
    assert '"temperature": 0.1' in text_of(page) and "+2 −1" in text_of(page)
    # the other way round, and the same version twice
    back = team.users["VIEWER"].get(team.url("/prompts/d"), params={"tab": "diff", "a": 2, "b": 1})
    assert "+1 −2" in text_of(back)
    same = team.users["VIEWER"].get(team.url("/prompts/d"), params={"tab": "diff", "a": 1, "b": 1})
    assert "Choose two different versions" in text_of(same)
    assert team.users["VIEWER"].get(team.url("/prompts/d"), params={"tab": "diff", "a": 9}).status_code == 404


def test_viewer_cannot_edit_member_can(team: Team) -> None:
    team.create({"name": "guarded", "prompt": "x", "labels": ["production"]})
    viewer, member = team.users["VIEWER"], team.users["MEMBER"]
    page = viewer.get(team.url("/prompts/guarded"))
    assert page.status_code == 200 and "New version" not in page.text and "Save labels" not in page.text
    assert viewer.get(team.url("/prompts/new")).status_code == 403
    assert _new_version(team, "VIEWER", name="guarded", text="y").status_code == 403
    assert viewer.post(team.url("/prompts/guarded/labels"), {"version": "1", "labels": ""}).status_code == 403
    assert viewer.post(team.url("/prompts/guarded/delete"), {"version": "1"}).status_code == 403
    assert len(team.store.versions(team.project_id, "guarded")) == 1

    assert _new_version(team, "MEMBER", name="guarded", text="y").status_code == 303
    assert "New version" in member.get(team.url("/prompts/guarded")).text
    r = member.post(team.url("/prompts/guarded/delete"), {"version": "2"})
    assert r.status_code == 303 and r.headers["location"] == team.url("/prompts/guarded")
    assert [v["version"] for v in team.store.versions(team.project_id, "guarded")] == [1]
    r = member.post(team.url("/prompts/guarded/delete"), {})
    assert r.status_code == 303 and r.headers["location"] == team.url("/prompts")
    with pytest.raises(NotFound):
        team.store.versions(team.project_id, "guarded")


def test_metrics_linked_generations_and_snippet(team: Team) -> None:
    team.create({"name": "team/qa", "prompt": "A {{q}}", "labels": ["production"]})
    team.create({"name": "team/qa", "prompt": "B {{q}}"})
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    gens = []
    for i, version in enumerate((1, 1, 2)):
        start = t0 + timedelta(seconds=i)
        gens.append(ObservationEvent(
            team.project_id, f"gen-{i}", f"trace-{i}", start, type="GENERATION", name="answer", start_time=start,
            end_time=start + timedelta(seconds=2 + i), model="gpt-4o-mini", usage_details={"input": 10, "output": 5},
            cost_details={"total": 0.001}, prompt_name="team/qa", prompt_version=version))
    gens.append(ObservationEvent(team.project_id, "other", "trace-9", t0, type="GENERATION", prompt_name="else",
                                 prompt_version=1))
    olap = team.services.olap
    olap.insert_arrow("observation_events", observations_table(gens))
    olap.insert_arrow("scores", scores_table([ScoreEvent(team.project_id, "s1", t0, t0, "accuracy", "NUMERIC",
                                                         value=0.5, trace_id="trace-0", observation_id="gen-0")]))
    viewer = team.users["VIEWER"]

    metrics = viewer.get(team.url("/prompts/team/qa"), params={"tab": "metrics"})
    rows = {m[0]: " ".join(html.unescape(re.sub(r"<[^>]+>", " ", m[1])).split())
            for m in re.findall(r'<td class="strong">v(\d+)</td>(.*?)</tr>', metrics.text, re.S)}
    assert rows["1"].startswith("2 2.50s 20 10 $0.002 0.5")  # count, median latency, tokens, cost, accuracy
    assert rows["2"].startswith("1 4.00s 10 5 $0.001")

    gen_page = viewer.get(team.url("/prompts/team/qa"), params={"tab": "generations"})
    for i in range(3):
        assert f'href="/project/{team.project_id}/traces/trace-{i}?observation=gen-{i}"' in gen_page.text
    assert "trace-9" not in gen_page.text
    only_v2 = viewer.get(team.url("/prompts/team/qa"), params={"tab": "generations", "gen_version": 2})
    assert "trace-2" in only_v2.text and "trace-0" not in only_v2.text

    snippet = html.unescape(viewer.get(team.url("/prompts/team/qa"), params={"tab": "use", "version": 1}).text)
    assert 'langfuse.get_prompt("team/qa", label="production")' in snippet
    assert 'prompt.compile(q="...")' in snippet and "langfuse_prompt=prompt" in snippet
    snippet2 = html.unescape(viewer.get(team.url("/prompts/team/qa"), params={"tab": "use", "version": 2}).text)
    assert 'get_prompt("team/qa", version=2)' in snippet2


def test_names_with_spaces_and_missing_prompts(team: Team) -> None:
    team.create({"name": "my folder/a prompt?", "prompt": "x"})
    viewer = team.users["VIEWER"]
    listing = viewer.get(team.url("/prompts"), params={"folder": "my folder"})
    assert "/prompts/my%20folder/a%20prompt%3F" in listing.text
    assert viewer.get(team.url("/prompts/my%20folder/a%20prompt%3F")).status_code == 200
    assert viewer.get(team.url("/prompts/nope")).status_code == 404
    assert viewer.get(team.url("/prompts/my%20folder/a%20prompt%3F"), params={"version": 7}).status_code == 404
