"""The LLM-as-a-judge pages in-process: LLM connections (masked key, test connection, default
model), judge templates (built-in, custom with versions), the evaluator form with its preview on a
real trace, who may change what, and, on a live server with the local judge, the executions table
after an evaluator ran on a new trace."""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import LiveServer, free_port
from owlscope.app import create_app
from owlscope.auth.passwords import hash_password
from owlscope.evals.evaluators import execution_counts, list_evaluators
from owlscope.ingestion.rows import TraceEvent, traces_table
from owlscope.pipeline.accept import accept_events
from owlscope.storage.oltp.models import Organization, OrganizationMembership, Project, User
from support.fake_openai import FakeOpenAI
from support.web import PASSWORD, WebUser

SECRET = "sk-live-0123456789abcdefSECRET"
CONTEXT = "Paris is the capital of France. It lies on the Seine."


@dataclass
class Team:
    app: Any
    project_id: str
    users: dict[str, WebUser]

    @property
    def services(self) -> Any:
        return self.app.state.services

    def url(self, path: str = "") -> str:
        return f"/project/{self.project_id}{path}"


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


def text_of(response: Any) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def add_connection(team: Team, base_url: str, *, provider: str = "fake", models: str = "judge-model") -> None:
    r = team.users["OWNER"].post(team.url("/settings/llm-connections"), {
        "provider": provider, "adapter": "openai", "base_url": base_url, "api_key": SECRET,
        "custom_models": models, "extra_headers": "X-Team: evals"})
    assert r.status_code == 303, r.text
    r = team.users["OWNER"].post(team.url("/settings/llm-connections/default-model"),
                                 {"provider": provider, "model": models.split(",")[0]})
    assert r.status_code == 303, r.text


def connection_id(team: Team, provider: str = "fake") -> str:
    page = team.users["OWNER"].get(team.url("/settings/llm-connections"))
    match = re.search(r'/settings/llm-connections/([^/"]+)/test', page.text)
    assert match, page.text
    return match.group(1)


def insert_trace(team: Team, trace_id: str, *, name: str = "qa", question: str, answer: str) -> None:
    now = datetime.now(UTC)
    team.services.olap.insert_arrow("trace_events", traces_table([TraceEvent(
        project_id=team.project_id, id=trace_id, event_ts=now, timestamp=now, name=name, user_id="u-1",
        tags=["rag"], input=json.dumps({"question": question}), output=json.dumps(answer),
        metadata=json.dumps({"context": CONTEXT}))]))


EVALUATOR_FORM = {
    "name": "faithfulness", "template": "hallucination", "target": "trace", "f_name": "qa", "tags": "rag",
    "sampling": "1", "delay": "0", "score_name": "faithful", "scope": "new",
    "map_variable": ["input", "context", "output"], "map_object": ["trace", "trace", "trace"],
    "map_name": ["", "", ""], "map_source": ["input", "metadata", "output"], "map_path": ["$.question", "$.context", ""],
}


# ---- LLM connections ------------------------------------------------------------------------------
def test_connection_key_is_write_only_and_masked(team: Team) -> None:
    with FakeOpenAI() as llm:
        add_connection(team, llm.base_url)
    owner = team.users["OWNER"]
    listing = owner.get(team.url("/settings/llm-connections"))
    assert listing.status_code == 200
    assert SECRET not in listing.text and SECRET[-8:] not in listing.text
    row = text_of(listing)
    assert "fake" in row and "judge-model" in row and "X-Team" in row and "evals" not in row.split("X-Team")[1][:20]
    masked = re.search(r'<td class="mono nowrap">([^<]+)', listing.text).group(1).strip()
    assert masked == "sk-...CRET"
    assert "Current: fake / judge-model" in row  # the default evaluation model

    cid = connection_id(team)
    edit = owner.get(team.url(f"/settings/llm-connections/{cid}/edit"))
    assert edit.status_code == 200 and SECRET not in edit.text and masked in edit.text
    # Saving with an empty key keeps the stored key (and headers); the page still shows it masked.
    saved = owner.post(team.url(f"/settings/llm-connections/{cid}"), {
        "adapter": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "", "custom_models": "m2, m3"})
    assert saved.status_code == 303, saved.text
    after = owner.get(team.url("/settings/llm-connections"))
    assert SECRET not in after.text and masked in after.text and "m3" in text_of(after) and "X-Team" in after.text

    # A bad base URL re-renders the form with the error, keeping what was typed, never the key.
    bad = owner.post(team.url("/settings/llm-connections"), {
        "provider": "other", "adapter": "openai", "base_url": "ftp://x", "api_key": SECRET})
    assert bad.status_code == 400 and "baseURL must start with http" in html.unescape(bad.text)
    assert SECRET not in bad.text and 'value="other"' in bad.text

    gone = owner.post(team.url(f"/settings/llm-connections/{cid}/delete"))
    assert gone.status_code == 303
    assert "No LLM connections yet" in text_of(owner.get(team.url("/settings/llm-connections")))


def test_test_connection_ok_and_provider_error(team: Team) -> None:
    owner = team.users["OWNER"]
    with FakeOpenAI() as llm:
        add_connection(team, llm.base_url)
        cid = connection_id(team)
        ok = owner.post(team.url(f"/settings/llm-connections/{cid}/test"), htmx=True)
        assert ok.status_code == 200
        assert 'data-ok="true"' in ok.text and "Connection OK" in ok.text and "judge-model" in ok.text
    closed = f"http://127.0.0.1:{free_port()}/v1"
    assert owner.post(team.url(f"/settings/llm-connections/{cid}"), {
        "adapter": "openai", "base_url": closed, "api_key": "", "custom_models": "judge-model"}).status_code == 303
    failed = owner.post(team.url(f"/settings/llm-connections/{cid}/test"), htmx=True)
    assert failed.status_code == 200
    assert 'data-ok="false"' in failed.text and "Connection failed" in failed.text
    assert SECRET not in failed.text


def test_roles_viewer_and_member_read_only(team: Team) -> None:
    with FakeOpenAI() as llm:
        add_connection(team, llm.base_url)
    cid = connection_id(team)
    for role in ("VIEWER", "MEMBER"):
        user = team.users[role]
        page = user.get(team.url("/settings/llm-connections"))
        assert page.status_code == 200 and "fake" in text_of(page)
        assert "New connection" not in page.text and "/test" not in page.text
        assert user.get(team.url("/evals")).status_code == 200
        assert user.get(team.url("/evals/templates")).status_code == 200
        assert user.get(team.url("/evals/new")).status_code == 403
        assert user.post(team.url("/evals/new"), {**EVALUATOR_FORM, "name": f"by-{role}"}).status_code == 403
        assert user.post(team.url("/settings/llm-connections"), {
            "provider": "x", "adapter": "openai", "api_key": "sk-x"}).status_code == 403
        assert user.post(team.url(f"/settings/llm-connections/{cid}/delete")).status_code == 403
        assert user.post(team.url(f"/settings/llm-connections/{cid}/test"), htmx=True).status_code == 403
        assert user.post(team.url("/evals/templates/new"), {"name": "t", "prompt": "x"}).status_code == 403
    assert list_evaluators(team.services.sessions, team.project_id)[1] == 0
    assert "fake" in text_of(team.users["OWNER"].get(team.url("/settings/llm-connections")))


# ---- evaluators -----------------------------------------------------------------------------------
def test_create_evaluator_listed_and_preview_shows_trace_values(team: Team) -> None:
    owner = team.users["OWNER"]
    with FakeOpenAI() as llm:
        add_connection(team, llm.base_url)
    form = owner.get(team.url("/evals/new"))
    assert form.status_code == 200
    assert 'name="map_variable" value="context"' in form.text  # the hallucination template's variables

    empty = owner.post(team.url("/evals/preview"), EVALUATOR_FORM, htmx=True)
    assert empty.status_code == 200 and "no trace matches this filter yet" in html.unescape(empty.text)

    tid = str(uuid.uuid4())
    insert_trace(team, tid, question="What is the capital of France?", answer="Paris, on the Seine.")
    insert_trace(team, str(uuid.uuid4()), name="other", question="Unrelated?", answer="no")
    preview = owner.post(team.url("/evals/preview"), EVALUATOR_FORM, htmx=True)
    assert preview.status_code == 200
    prompt = html.unescape(re.search(r'<pre class="ev-prompt" id="preview-prompt">(.*?)</pre>', preview.text,
                                     re.S).group(1))
    assert "QUESTION:\nWhat is the capital of France?" in prompt
    assert f"CONTEXT:\n{CONTEXT}" in prompt and "ANSWER:\nParis, on the Seine." in prompt
    assert tid in preview.text and "judge-model" in preview.text

    bad = owner.post(team.url("/evals/preview"), {**EVALUATOR_FORM, "map_path": ["$[", "", ""]}, htmx=True)
    assert "not a valid JSONPath" in html.unescape(bad.text)

    created = owner.post(team.url("/evals/new"), EVALUATOR_FORM)
    assert created.status_code == 303, created.text
    listing = text_of(owner.get(team.url("/evals")))
    assert "faithfulness" in listing and "hallucination" in listing and "faithful" in listing
    assert "Active" in listing and "100%" in listing
    detail = owner.get(created.headers["location"])
    assert detail.status_code == 200
    assert "name = qa" in html.unescape(detail.text) and "No executions yet" in detail.text

    again = owner.post(team.url("/evals/new"), {**EVALUATOR_FORM, "sampling": "abc"})
    assert again.status_code == 400 and "Sampling rate must be a number" in again.text
    assert 'value="faithfulness"' in again.text  # what was typed is kept
    dup = owner.post(team.url("/evals/new"), EVALUATOR_FORM)
    assert dup.status_code == 409 and "already exists" in html.unescape(dup.text)

    ev_url = created.headers["location"]
    assert owner.post(f"{ev_url}/enabled", {"enabled": "0"}).status_code == 303
    assert "Inactive" in text_of(owner.get(team.url("/evals")))


def test_templates_builtin_and_custom_versions(team: Team) -> None:
    owner = team.users["OWNER"]
    page = owner.get(team.url("/evals/templates"))
    assert page.status_code == 200 and "hallucination" in page.text and "relevance" in page.text
    builtin = re.search(r'/evals/templates/([^"?]+)">hallucination<', page.text).group(1)
    shown = owner.get(team.url(f"/evals/templates/{builtin}"))
    assert "Built-in template" in shown.text and "{{context}}" in html.unescape(shown.text)
    assert "&#34;required&#34;" in shown.text or '"required"' in html.unescape(shown.text)

    form = {"name": "tone", "prompt": "Rate the tone of {{output}}.", "data_type": "CATEGORICAL",
            "reasoning": "why", "score": "the tone", "categories": "polite, rude"}
    first = owner.post(team.url("/evals/templates/new"), form)
    assert first.status_code == 303, first.text
    second = owner.post(team.url("/evals/templates/new"), {**form, "prompt": "Judge the tone of {{output}}."})
    assert second.status_code == 303 and second.headers["location"] == first.headers["location"]
    detail = owner.get(second.headers["location"])
    assert "version 2 (latest)" in text_of(detail) and "Judge the tone" in detail.text
    assert ">v1<" in detail.text and ">v2<" in detail.text
    v1 = owner.get(second.headers["location"], params={"version": 1})
    assert "Rate the tone" in v1.text
    clash = owner.post(team.url("/evals/templates/new"), {**form, "name": "hallucination"})
    assert clash.status_code == 400 and "built-in" in clash.text
    assert owner.get(team.url("/evals/new"), params={"template": "tone"}).text.count('name="map_variable"') == 1


# ---- on a live server -----------------------------------------------------------------------------
def test_executions_table_after_evaluator_runs(make_settings) -> None:
    with FakeOpenAI() as llm, LiveServer(make_settings()) as srv:
        team = make_team(srv.app)
        add_connection(team, llm.base_url)
        owner = team.users["OWNER"]
        created = owner.post(team.url("/evals/new"), EVALUATOR_FORM)
        assert created.status_code == 303, created.text
        (ev,), _ = list_evaluators(srv.services.sessions, team.project_id)

        tid = str(uuid.uuid4())
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        accept_events(srv.services, project_id=team.project_id, events=[{
            "id": str(uuid.uuid4()), "type": "trace-create", "timestamp": now,
            "body": {"id": tid, "name": "qa", "tags": ["rag"], "input": {"question": "Capital of France?"},
                     "output": "Paris lies on the Seine.", "metadata": {"context": CONTEXT}}}])
        deadline = time.monotonic() + 60
        while execution_counts(srv.services.sessions, team.project_id, ev.id)["completed"] < 1:
            assert time.monotonic() < deadline, execution_counts(srv.services.sessions, team.project_id, ev.id)
            time.sleep(0.2)

        # The execution completes when its score is accepted; the score is readable after the
        # worker's next flush, so wait for it on the page.
        deadline = time.monotonic() + 20
        while True:
            page = owner.get(created.headers["location"])
            assert page.status_code == 200
            row = re.search(r'<tr data-status="completed">(.*?)</tr>', page.text, re.S)
            assert row, page.text
            if re.search(r"faithful: <strong[^>]*>1</strong>", row.group(1)) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert f"/traces/{tid}" in row.group(1) and "judge call" in row.group(1)
        assert re.search(r"faithful: <strong[^>]*>1</strong>", row.group(1))  # the score's value
        assert "1 completed" in text_of(page)
        progress = owner.get(f"{created.headers['location']}/progress", headers={"HX-Request": "true"})
        assert "1 completed" in text_of(progress)
        assert "1 completed" in text_of(owner.get(team.url("/evals")))
