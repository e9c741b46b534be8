"""Evaluator targets on a live server (API, worker, ingestion) with the local judge behind the real
`openai` client: observations selected by type, name, model, level, metadata and environment (new
and backfilled, the score on the observation); dataset run items of a prompt experiment started
from the UI's domain function and of `POST /dataset-run-items` (with the item's expected output),
backfilled too; and an edit that re-scores only when asked."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from owlscope.datasets.items import upsert_item
from owlscope.datasets.prompt_experiment import run_prompt_experiment
from owlscope.datasets.store import create_dataset
from owlscope.evals.evaluators import (
    backfill_progress,
    create_evaluator,
    list_executions,
    preview_evaluator,
    update_evaluator,
)
from owlscope.evals.templates import create_template
from owlscope.prompts import parse_create, prompt_store
from support.evals_live import *  # noqa: F403 - the fixtures env and env_any
from support.evals_live import Env, wait_until

CONTEXT = "Paris is the capital of France. It lies on the Seine."
CORRECT_PROMPT = "Is the ANSWER right?\nQUESTION:\n{{input}}\n\nCONTEXT:\n{{expected_output}}\n\nANSWER:\n{{output}}"
NUMERIC = {"dataType": "NUMERIC", "reasoning": {"description": "why"},
           "score": {"description": "1 = right", "minValue": 0, "maxValue": 1}}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _generation(obs_id: str, trace_id: str, **body: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": "generation-create", "timestamp": _now(),
            "body": {"id": obs_id, "traceId": trace_id, "name": "answer", "model": "gpt-4o",
                     "input": "What is the capital of France?", "metadata": {"feature": "search", "context": CONTEXT},
                     "environment": "production", **body}}


OBS_FILTER = [
    {"type": "stringOptions", "column": "type", "operator": "any of", "value": ["GENERATION"]},
    {"type": "string", "column": "name", "operator": "=", "value": "answer"},
    {"type": "string", "column": "model", "operator": "=", "value": "gpt-4o"},
    {"type": "stringOptions", "column": "level", "operator": "any of", "value": ["DEFAULT"]},
    {"type": "stringObject", "column": "metadata", "key": "feature", "operator": "=", "value": "search"},
    {"type": "stringOptions", "column": "environment", "operator": "any of", "value": ["production"]},
]
OBS_MAPPING = [{"variable": "input", "source": "input"},
               {"variable": "context", "source": "metadata", "jsonPath": "$.context"},
               {"variable": "output", "source": "output"}]


def _observations(env: Env, prefix: str) -> None:
    """One trace: two observations that match, and one that misses each condition."""
    tid = f"{prefix}-trace"
    env.ingest([
        {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": _now(),
         "body": {"id": tid, "name": "chat", "environment": "production"}},
        _generation(f"{prefix}-good", tid, output="Paris is the capital."),
        _generation(f"{prefix}-bad", tid, output="Lyon is the capital."),
        _generation(f"{prefix}-model", tid, output="x", model="gpt-3.5-turbo"),
        _generation(f"{prefix}-level", tid, output="x", level="ERROR"),
        _generation(f"{prefix}-meta", tid, output="x", metadata={"feature": "chat", "context": CONTEXT}),
        _generation(f"{prefix}-name", tid, output="x", name="rewrite"),
        {"id": str(uuid.uuid4()), "type": "span-create", "timestamp": _now(),
         "body": {"id": f"{prefix}-span", "traceId": tid, "name": "answer", "output": "x", "environment": "production",
                  "metadata": {"feature": "search"}}},
    ])


def test_observation_evaluator_new_and_backfilled(env: Env) -> None:
    env.connect()
    live_ev = create_evaluator(env.services, env.pid, {
        "name": "gen-faithful", "template": "hallucination", "target": "observation", "delay_seconds": 0,
        "filter": OBS_FILTER, "mapping": OBS_MAPPING, "score_name": "faithful"})
    _observations(env, "o1")
    env.settled(live_ev.id, 2)
    scores = env.wait_scores(2)
    by_obs = {s["observation_id"]: s for s in scores}
    assert set(by_obs) == {"o1-good", "o1-bad"}
    assert (by_obs["o1-good"]["value"], by_obs["o1-bad"]["value"]) == (1.0, 0.0)
    assert {s["trace_id"] for s in scores} == {"o1-trace"} and {s["environment"] for s in scores} == {"production"}
    rows = list_executions(env.services.sessions, env.pid, live_ev.id).data
    assert {r["observationId"] for r in rows} == {"o1-good", "o1-bad"} and {r["origin"] for r in rows} == {"new"}
    sent = [r["body"]["messages"][0]["content"] for r in env.llm.requests if r["path"].endswith("/chat/completions")]
    assert any(f"CONTEXT:\n{CONTEXT}" in p and "ANSWER:\nLyon is the capital." in p for p in sent)

    # a second evaluator on EXISTING observations: the same two, found by the backfill
    back = create_evaluator(env.services, env.pid, {
        "name": "gen-faithful-back", "template": "hallucination", "target": "observation", "delay_seconds": 0,
        "filter": OBS_FILTER, "mapping": OBS_MAPPING, "time_scope": ["EXISTING"], "score_name": "faithful-back"})
    wait_until(lambda: (p := backfill_progress(env.services.sessions, env.pid, back.id))["status"] == "done"
               and p["done"] == 2, what="the backfill")
    rows = list_executions(env.services.sessions, env.pid, back.id).data
    assert {(r["observationId"], r["origin"], r["status"]) for r in rows} == {
        ("o1-good", "backfill", "completed"), ("o1-bad", "backfill", "completed")}
    shown = preview_evaluator(env.services, env.pid, {"template": "hallucination", "target": "observation",
                                                     "filter": OBS_FILTER, "mapping": OBS_MAPPING})
    assert shown["traceId"] == "o1-trace" and shown["observationId"] in ("o1-good", "o1-bad")


def _experiment_project(env: Env) -> str:
    create_template(env.services.sessions, env.pid, name="right", prompt=CORRECT_PROMPT, output_definition=NUMERIC)
    prompt_store(env.services).create(env.pid, parse_create({
        "name": "qa", "type": "chat", "prompt": [{"role": "user", "content": "{{question}}"}]}))
    ds = create_dataset(env.services.sessions, project_id=env.pid, name="geo")
    create_dataset(env.services.sessions, project_id=env.pid, name="elsewhere")
    for n, expected in ((1, "echo: q1"), (2, "Lyon")):
        upsert_item(env.services.sessions, masker=None, project_id=env.pid, dataset_name="geo", item_id=f"item-{n}",
                    input={"question": f"q{n}"}, expected_output=expected, metadata={"level": n})
    upsert_item(env.services.sessions, masker=None, project_id=env.pid, dataset_name="elsewhere", item_id="item-x",
                input={"question": "qx"}, expected_output="echo: qx")
    return ds["id"]


EXP_MAPPING = [{"variable": "input", "source": "input", "jsonPath": "$.question"},
               {"variable": "expected_output", "source": "expected_output"},
               {"variable": "output", "source": "output", "jsonPath": "$.content"}]


def test_experiment_evaluator_on_ui_runs_api_run_items_and_backfill(env_any: Env) -> None:
    env = env_any
    env.connect()
    dataset_id = _experiment_project(env)
    ev = create_evaluator(env.services, env.pid, {
        "name": "right-answers", "template": "right", "target": "experiment", "delay_seconds": 0,
        "filter": [{"type": "stringOptions", "column": "datasetId", "operator": "any of", "value": [dataset_id]}],
        "mapping": EXP_MAPPING})

    # a prompt experiment, as the UI starts it: the local model echoes the question
    result = run_prompt_experiment(env.services, project_id=env.pid, prompt_name="qa", prompt_version=1,
                                   connection_id=None, model="gpt-4o-mini", dataset_name="geo", run_name="ui-run",
                                   base_url=env.llm.base_url, api_key="test-key")
    assert result["done"] == 2 and result["failed"] == 0
    run_prompt_experiment(env.services, project_id=env.pid, prompt_name="qa", prompt_version=1, connection_id=None,
                          model="gpt-4o-mini", dataset_name="elsewhere", run_name="ui-run",
                          base_url=env.llm.base_url, api_key="test-key")
    env.settled(ev.id, 2)
    rows = list_executions(env.services.sessions, env.pid, ev.id).data
    assert {r["status"] for r in rows} == {"completed"} and all(r["datasetRunItemId"] for r in rows)
    scores = env.wait_scores(2)
    # the score sits on the run item's trace and generation; item-1's answer matches its expected output
    assert {s["observation_id"] for s in scores} == {r["observationId"] for r in rows}
    judged = [r["body"]["messages"][0]["content"] for r in env.llm.requests
              if r["path"].endswith("/chat/completions") and "Is the ANSWER right?" in str(r["body"]["messages"])]
    assert any("QUESTION:\nq2\n\nCONTEXT:\nLyon\n\nANSWER:\necho: q2" in p for p in judged)
    assert sorted(s["value"] for s in scores) == [0.0, 1.0]

    # a run item made through the API, for a trace sent before it
    env.traces([{"id": "manual-1", "name": "qa", "input": {"question": "q1"}, "output": {"content": "echo: q1"}}])
    env.visible(["manual-1"])
    r = httpx.post(f"{env.srv.url}/api/public/dataset-run-items", auth=(env.key["public_key"], env.key["secret_key"]),
                   json={"runName": "by-hand", "datasetItemId": "item-1", "traceId": "manual-1"}, timeout=30)
    assert r.status_code == 200, r.text
    env.settled(ev.id, 3)
    manual = [x for x in list_executions(env.services.sessions, env.pid, ev.id).data if x["traceId"] == "manual-1"]
    assert manual[0]["datasetRunItemId"] == r.json()["id"] and manual[0]["observationId"] is None
    wait_until(lambda: any(s["trace_id"] == "manual-1" and s["value"] == 1.0 for s in env.scores()), what="score")

    # on EXISTING run items, every dataset: the three of "geo" and the one of "elsewhere"
    back = create_evaluator(env.services, env.pid, {
        "name": "right-back", "template": "right", "target": "experiment", "delay_seconds": 0,
        "mapping": EXP_MAPPING, "time_scope": ["EXISTING"], "score_name": "right-back"})
    wait_until(lambda: (p := backfill_progress(env.services.sessions, env.pid, back.id))["status"] == "done"
               and p["done"] == 4, what="the backfill")
    shown = preview_evaluator(env.services, env.pid, {"template": "right", "target": "experiment",
                                                     "mapping": EXP_MAPPING})
    assert shown["runItemId"] and "CONTEXT:\n" in shown["prompt"]


def test_experiment_filter_and_mapping_are_checked(env: Env) -> None:
    env.connect()
    _experiment_project(env)
    for spec, message in (
        ({"filter": [{"type": "stringOptions", "column": "datasetId", "operator": "any of", "value": ["nope"]}]},
         "unknown dataset id"),
        ({"filter": [{"type": "string", "column": "name", "operator": "=", "value": "x"}]}, "datasetId only"),
        ({"mapping": [{"variable": "input", "object": "trace", "source": "input"}, *EXP_MAPPING[1:]]},
         "object must be one of experiment"),
    ):
        with pytest.raises(Exception, match=message) as info:
            create_evaluator(env.services, env.pid, {"name": "x", "template": "right", "target": "experiment",
                                                     "mapping": EXP_MAPPING, **spec})
        assert getattr(info.value, "status", None) == 400
    # a trace evaluator cannot read an expected output
    with pytest.raises(Exception, match="source must be one of") as info:
        create_evaluator(env.services, env.pid, {"name": "x", "template": "right", "mapping": EXP_MAPPING})
    # the built-in correctness template reads the dataset item's expected output on experiments by default
    ev = create_evaluator(env.services, env.pid, {"name": "c", "template": "correctness", "target": "experiment"})
    assert ev.mapping is None


def test_edit_rescore_only_when_asked(env: Env) -> None:
    env.connect()
    ev = create_evaluator(env.services, env.pid, {
        "name": "faith", "template": "hallucination", "delay_seconds": 0,
        "mapping": [{"variable": "input", "source": "input"},
                    {"variable": "context", "source": "metadata", "jsonPath": "$.reference_context"},
                    {"variable": "output", "source": "output"}]})
    env.traces([{"id": "e1", "input": "q", "output": "Paris.", "metadata": {"reference_context": CONTEXT,
                                                                           "other": "Marseille"}}])
    env.settled(ev.id, 1)
    assert wait_until(lambda: [s["value"] for s in env.scores()], what="score") == [1.0]
    (first,) = list_executions(env.services.sessions, env.pid, ev.id).data

    # the context now comes from another key: the stored score stays as it is
    other = [{"variable": "input", "source": "input"},
             {"variable": "context", "source": "metadata", "jsonPath": "$.other"},
             {"variable": "output", "source": "output"}]
    update_evaluator(env.services, env.pid, ev.id, {"mapping": other, "score_name": "faith-2"})
    time.sleep(1.0)
    (same,) = list_executions(env.services.sessions, env.pid, ev.id).data
    assert same["finishedAt"] == first["finishedAt"] and same["attempts"] == 1
    assert [(s["name"], s["value"]) for s in env.scores()] == [("hallucination", 1.0)]

    # ... until a re-score is asked for: the execution runs again, its score is replaced in place
    update_evaluator(env.services, env.pid, ev.id, {}, rescore=True)
    wait_until(lambda: (x := list_executions(env.services.sessions, env.pid, ev.id).data[0])["status"] == "completed"
               and x["finishedAt"] != first["finishedAt"], what="the re-run")
    rescored = wait_until(lambda: [(s["id"], s["name"], s["value"]) for s in env.scores()
                                   if s["name"] == "faith-2"], what="the new score")
    assert rescored == [(first["scoreId"], "faith-2", 0.0)]
    assert len(env.scores()) == 1  # replaced, not added
    progress = backfill_progress(env.services.sessions, env.pid, ev.id)
    assert progress["status"] == "done" and progress["counts"]["completed"] == 1
