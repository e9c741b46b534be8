"""The evaluator form in-process, beyond creating trace evaluators: the score name field that follows
the chosen template, observation filters (model, level, metadata) and experiment targets (datasets),
and editing an evaluator — the form comes back filled, conditions it has no field for are kept,
only admins may save, and "also run on existing" starts a re-scoring backfill."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from integration.test_web_evals import EVALUATOR_FORM, Team, add_connection, make_team, text_of

from owlscope.app import create_app
from owlscope.datasets.store import create_dataset
from owlscope.evals.evaluators import create_evaluator, get_evaluator, list_evaluators
from support.fake_openai import FakeOpenAI


@pytest.fixture
def team(make_settings) -> Iterator[Team]:
    app = create_app(make_settings(), run_worker=False)
    with TestClient(app), FakeOpenAI() as llm:
        t = make_team(app)
        add_connection(t, llm.base_url)
        yield t


def _placeholder(page: str) -> str:
    field = re.search(r'<div id="score-name-field"[^>]*>.*?<input id="f-score_name"[^>]*>', page, re.S).group(0)
    return re.search(r'placeholder="([^"]*)"', field).group(1)


def test_score_name_placeholder_follows_the_template(team: Team) -> None:
    owner = team.users["OWNER"]
    assert _placeholder(owner.get(team.url("/evals/new")).text) == "hallucination"
    assert _placeholder(owner.get(team.url("/evals/new"), params={"template": "toxicity"}).text) == "toxicity"
    # the fragment htmx swaps when the template changes carries the field again, out of band, with the value typed
    part = owner.get(team.url("/evals/new/mapping"), params={"template": "relevance", "score_name": "mine"})
    assert 'id="score-name-field" hx-swap-oob="true"' in part.text
    assert _placeholder(part.text) == "relevance" and 'value="mine"' in part.text


def test_observation_and_experiment_targets_from_the_form(team: Team) -> None:
    owner = team.users["OWNER"]
    created = owner.post(team.url("/evals/new"), {
        **EVALUATOR_FORM, "name": "gen-judge", "target": "observation", "obs_type": "GENERATION",
        "obs_name": "answer", "obs_model": "gpt-4o", "obs_level": "ERROR", "meta_key": "feature",
        "meta_value": "search", "f_name": "", "tags": "", "map_object": ["observation"] * 3})
    assert created.status_code == 303, text_of(created)
    (ev, *_), _ = list_evaluators(team.services.sessions, team.project_id)
    assert ev.target == "observation"
    assert {(c["column"], c["operator"], str(c["value"])) for c in ev.filter} == {
        ("type", "=", "GENERATION"), ("name", "=", "answer"), ("model", "=", "gpt-4o"), ("level", "any of", "['ERROR']"),
        ("metadata", "=", "search")}

    ds = create_dataset(team.services.sessions, project_id=team.project_id, name="geo")
    form = owner.get(team.url("/evals/new"), params={"target": "experiment", "template": "correctness"})
    assert f'<option value="{ds["id"]}">geo</option>' in form.text
    assert re.search(r'id="map-source-expected_output".*?<option value="expected_output" selected>', form.text, re.S)
    made = owner.post(team.url("/evals/new"), {
        "name": "exp-judge", "template": "correctness", "target": "experiment", "datasets": [ds["id"]],
        "sampling": "1", "delay": "5", "scope": "new",
        "map_variable": ["input", "expected_output", "output"], "map_object": ["experiment"] * 3,
        "map_name": ["", "", ""], "map_source": ["input", "expected_output", "output"], "map_path": ["", "", ""]})
    assert made.status_code == 303, text_of(made)
    detail = text_of(owner.get(made.headers["location"]))
    assert "experiment items" in detail and f"datasetId any of {ds['id']}" in detail
    evs = {e.name: e for e in list_evaluators(team.services.sessions, team.project_id)[0]}
    assert evs["exp-judge"].target == "experiment" and evs["exp-judge"].filter[0]["value"] == [ds["id"]]
    # an unknown dataset is refused with the reason, on the form
    bad = owner.post(team.url("/evals/new"), {**EVALUATOR_FORM, "name": "x", "target": "experiment",
                                              "datasets": ["no-such"], "map_object": ["experiment"] * 3})
    assert bad.status_code == 400 and "unknown dataset id" in html.unescape(bad.text)


def test_edit_keeps_what_the_form_cannot_show_and_asks_before_rescoring(team: Team) -> None:
    owner = team.users["OWNER"]
    ev = create_evaluator(team.services, team.project_id, {
        "name": "api-made", "template": "relevance", "target": "observation", "sampling": 0.5, "delay_seconds": 0,
        "filter": [{"type": "stringOptions", "column": "type", "operator": "any of", "value": ["GENERATION"]},
                   {"type": "string", "column": "name", "operator": "starts with", "value": "chat-"}]})
    url = team.url(f"/evals/{ev.id}/edit")
    page = owner.get(url)
    assert page.status_code == 200 and 'value="api-made"' in page.text
    assert re.search(r'<option value="GENERATION" selected>', page.text)
    assert "name starts with chat-" in text_of(page)  # shown as kept
    for role in ("MEMBER", "VIEWER"):
        assert team.users[role].get(url).status_code == 403
        assert team.users[role].post(url, {"name": "x", "template": "relevance"}).status_code == 403
    assert "/edit" not in team.users["MEMBER"].get(team.url(f"/evals/{ev.id}")).text

    fields = {"name": "api-made-2", "template": "relevance", "target": "observation", "obs_type": "GENERATION",
              "sampling": "0.25", "delay": "0", "scope": "new",
              "extra_filter": html.unescape(re.search(r'name="extra_filter" value="([^"]*)"', page.text).group(1)),
              "map_variable": ["input", "output"], "map_object": ["observation", "observation"], "map_name": ["", ""],
              "map_source": ["input", "output"], "map_path": ["", ""]}
    saved = owner.post(url, fields)
    assert saved.status_code == 303, text_of(saved)
    row = get_evaluator(team.services.sessions, team.project_id, ev.id)
    assert (row.name, row.sampling, row.time_scope, row.backfill_status) == ("api-made-2", 0.25, ["NEW"], None)
    assert {(c["column"], c["operator"]) for c in row.filter} == {("type", "="), ("name", "starts with")}
    assert row.mapping is None  # the submitted mapping was the template's default: it keeps following it

    rescored = owner.post(url, {**fields, "rescore": "1"})
    assert rescored.status_code == 303
    row = get_evaluator(team.services.sessions, team.project_id, ev.id)
    assert row.time_scope == ["NEW", "EXISTING"] and row.backfill_status in ("queued", "running", "done")
    assert row.backfill_rescore_before is not None
    shown = text_of(owner.get(saved.headers["location"]))
    assert "Running on existing observations again" in shown

    clash = owner.post(url, {**fields, "name": "x", "sampling": "2"})
    assert clash.status_code == 400 and "sampling must be greater than 0" in html.unescape(clash.text)
    assert 'value="x"' in clash.text  # what was typed is kept
