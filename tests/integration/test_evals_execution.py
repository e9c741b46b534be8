"""LLM-as-a-judge end to end on a live server (API, worker, ingestion) with the local
OpenAI-compatible judge: new traces, backfills, sampling, provider errors, pauses, observation
targets, Anthropic, and a worker that dies with jobs in flight."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from conftest import LiveServer, create_project_key
from owlscope.evals import runner
from owlscope.evals.connections import set_default_model
from owlscope.evals.evaluators import (
    backfill_progress,
    create_evaluator,
    get_evaluator,
    list_executions,
    preview_evaluator,
    resume_evaluator,
    sampled,
    set_enabled,
    update_evaluator,
)
from owlscope.evals.jobs import retry_failed
from owlscope.evals.matching import JUDGE_ENVIRONMENT
from owlscope.storage.oltp.eval_models import JobExecution
from owlscope.storage.queue import JobQueue
from support.evals_live import *  # noqa: F403 - the fixtures env and env_any
from support.evals_live import Env, wait_until
from support.fake_openai import FakeOpenAI

FAITHFUL_MAPPING = [
    {"variable": "input", "source": "input"},
    {"variable": "context", "source": "metadata", "jsonPath": "$.reference_context"},
    {"variable": "output", "source": "output"},
]
CONTEXT = "Paris is the capital of France. It lies on the Seine."


def faithfulness(env: Env, **extra: Any):
    spec = {"name": "faithfulness", "template": "hallucination", "mapping": FAITHFUL_MAPPING, "delay_seconds": 0}
    return create_evaluator(env.services, env.pid, {**spec, **extra})


def test_hallucination_scores_a_faithful_and_an_unfaithful_answer(env_any: Env) -> None:
    env = env_any
    env.connect()
    ev = faithfulness(env)
    env.traces([
        {"id": "t-good", "name": "qa", "input": "What is the capital of France?",
         "output": "The capital of France is Paris.", "metadata": {"reference_context": CONTEXT}},
        {"id": "t-bad", "name": "qa", "input": "What is the capital of France?",
         "output": "The capital of France is Lyon.", "metadata": {"reference_context": CONTEXT}},
    ])
    env.settled(ev.id, 2)
    scores = env.wait_scores(2)
    assert {s["source"] for s in scores} == {"EVAL"}
    by_trace = {s["trace_id"]: s for s in scores}
    assert (by_trace["t-good"]["value"], by_trace["t-bad"]["value"]) == (1.0, 0.0)
    assert by_trace["t-good"]["name"] == "hallucination" and by_trace["t-good"]["data_type"] == "NUMERIC"
    assert "supported by the provided context" in by_trace["t-good"]["comment"]
    assert "lyon" in by_trace["t-bad"]["comment"]

    executions = list_executions(env.services.sessions, env.pid, ev.id).data
    assert {e["traceId"]: e["status"] for e in executions} == {"t-good": "completed", "t-bad": "completed"}
    assert {e["scoreId"] for e in executions} == {s["id"] for s in scores}

    # the judge's own calls are traced in the project, under the reserved environment, with cost inputs
    judge_ids = {e["judgeTraceId"] for e in executions}
    env.visible(sorted(judge_ids))
    gens = env.services.olap.query_dicts(
        "SELECT trace_id, argMaxIfMerge(model) AS model, argMaxIfMerge(environment) AS env, "
        "argMaxIfMerge(usage_details) AS usage, argMaxIfMerge(type) AS type FROM {db}.observations "
        "WHERE project_id = {p:String} GROUP BY trace_id, id", {"p": env.pid})
    assert {g["trace_id"] for g in gens} == judge_ids
    assert all(g["env"] == JUDGE_ENVIRONMENT and g["type"] == "GENERATION" and g["model"] == "gpt-4o-mini"
               and g["usage"]["input"] > 0 for g in gens)
    # ... and the judge traces themselves are never judged
    time.sleep(1.0)
    assert sum(env.counts(ev.id).values()) == 2

    sent = [r["body"] for r in env.llm.requests if r["path"].endswith("/chat/completions")]
    assert all(b["response_format"]["type"] == "json_schema" for b in sent)
    assert any(CONTEXT in b["messages"][0]["content"] and "Lyon" in b["messages"][0]["content"] for b in sent)


def test_trace_attributes_arriving_later_are_matched_once(env: Env) -> None:
    env.connect()
    ev = faithfulness(env, filter=[{"type": "arrayOptions", "column": "tags", "operator": "any of",
                                    "value": ["judge-me"]}])
    env.traces([{"id": "t1", "name": "qa", "input": "q", "metadata": {"reference_context": CONTEXT}}])
    env.visible(["t1"])
    time.sleep(0.5)
    assert sum(env.counts(ev.id).values()) == 0  # no tag yet
    env.traces([{"id": "t1", "output": "Paris.", "tags": ["judge-me"]}])
    env.settled(ev.id, 1)
    env.traces([{"id": "t1", "tags": ["judge-me", "again"]}])  # touched again: still one execution
    time.sleep(1.0)
    assert env.counts(ev.id)["completed"] == 1
    assert wait_until(lambda: [s["value"] for s in env.scores()], what="score") == [1.0]


def test_backfill_scores_historical_traces_with_progress(env: Env) -> None:
    env.connect()
    bodies = [{"id": f"old-{i}", "name": "qa", "input": "q", "output": "Paris is the capital.",
               "metadata": {"reference_context": CONTEXT}, "environment": "production"} for i in range(5)]
    bodies.append({"id": "old-dev", "name": "qa", "input": "q", "output": "Lyon.", "environment": "dev",
                   "metadata": {"reference_context": CONTEXT}})
    env.traces(bodies)
    env.visible([b["id"] for b in bodies])
    ev = faithfulness(env, time_scope=["EXISTING"],
                      filter=[{"type": "stringOptions", "column": "environment", "operator": "any of",
                               "value": ["production"]}])
    progress = wait_until(lambda: (p := backfill_progress(env.services.sessions, env.pid, ev.id))["status"] == "done"
                          and p["done"] == 5 and p, what="backfill progress")
    assert progress["scheduled"] == 5 and progress["counts"]["completed"] == 5
    scores = env.wait_scores(5)
    assert {s["trace_id"] for s in scores} == {f"old-{i}" for i in range(5)}
    assert {s["environment"] for s in scores} == {"production"}
    # EXISTING only: a trace arriving now is not evaluated
    env.traces([{"id": "new-1", "name": "qa", "environment": "production", "output": "x"}])
    env.visible(["new-1"])
    time.sleep(1.0)
    assert sum(env.counts(ev.id).values()) == 5


def test_sampling_half_of_200_traces(env: Env) -> None:
    env.connect()
    ev = faithfulness(env, sampling=0.5)
    ids = [f"s-{i:03d}" for i in range(200)]
    expected = sum(sampled(ev.id, tid, 0.5) for tid in ids)
    assert 70 <= expected <= 130  # 35-65 %
    env.traces([{"id": tid, "name": "qa", "input": "q", "output": "Paris.",
                 "metadata": {"reference_context": CONTEXT}} for tid in ids])
    env.visible(ids)
    env.settled(ev.id, expected, timeout=120)
    time.sleep(0.5)
    assert env.counts(ev.id)["completed"] == expected
    scores = env.wait_scores(expected, timeout=60)
    assert {s["trace_id"] for s in scores} == {t for t in ids if sampled(ev.id, t, 0.5)}


def test_judge_errors_end_in_error_records(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "RETRY_DELAYS", (0.1, 0.2, 0.3))
    env.connect(model="judge-error")
    ev = faithfulness(env)
    env.traces([{"id": f"e{i}", "input": "q", "output": "a"} for i in range(2)])
    env.settled(ev.id, 2)
    rows = list_executions(env.services.sessions, env.pid, ev.id).data
    assert {r["status"] for r in rows} == {"error"}
    assert all("upstream exploded" in r["error"] and r["attempts"] == 4 for r in rows)
    assert get_evaluator(env.services.sessions, env.pid, ev.id).status == "active"  # server errors do not pause
    assert env.scores() == []


def test_transient_errors_are_retried_with_backoff(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "RETRY_DELAYS", (0.2, 0.2, 0.2))
    env.connect(model="judge-flaky")
    ev = faithfulness(env)
    env.traces([{"id": "f1", "input": "q", "output": "Paris.", "metadata": {"reference_context": CONTEXT}}])
    env.settled(ev.id, 1)
    (row,) = list_executions(env.services.sessions, env.pid, ev.id).data
    assert (row["status"], row["attempts"], row["error"]) == ("completed", 2, None)


def test_auth_errors_pause_the_evaluator_until_resumed(env: Env) -> None:
    env.connect(model="judge-auth")
    ev = faithfulness(env)
    ids = [f"a{i}" for i in range(6)]
    env.traces([{"id": t, "input": "q", "output": "Paris.", "metadata": {"reference_context": CONTEXT}} for t in ids])
    paused = wait_until(lambda: (e := get_evaluator(env.services.sessions, env.pid, ev.id)).status == "paused" and e,
                        what="the evaluator to pause")
    assert paused.paused_reason == "llm_authentication_failed"
    assert "authentication" in paused.paused_message and "Incorrect API key" in paused.paused_message
    wait_until(lambda: env.counts(ev.id)["running"] == 0 and sum(env.counts(ev.id).values()) == 6, what="settle")
    counts = env.counts(ev.id)
    assert counts["error"] >= 3 and counts["error"] + counts["pending"] == 6
    errors = list_executions(env.services.sessions, env.pid, ev.id, status="error").data
    assert all("authentication failed" in e["error"] for e in errors)

    # fixing the connection's model and resuming runs what waited; failed ones can be retried
    set_default_model(env.services.sessions, env.pid, provider="fake", model="gpt-4o-mini")
    resume_evaluator(env.services, env.pid, ev.id)
    retry_failed(env.services, env.pid, ev.id)
    assert env.settled(ev.id, 6)["completed"] == 6
    assert get_evaluator(env.services.sessions, env.pid, ev.id).status == "active"


def test_disabling_cancels_what_waits_and_enabling_runs_new_traces(env: Env) -> None:
    env.connect()
    ev = faithfulness(env, delay_seconds=3600)
    env.traces([{"id": "w1", "input": "q", "output": "Paris."}])
    wait_until(lambda: env.counts(ev.id)["pending"] == 1, what="a waiting execution")
    set_enabled(env.services, env.pid, ev.id, False)
    (row,) = list_executions(env.services.sessions, env.pid, ev.id).data
    assert (row["status"], row["error"]) == ("cancelled", "the evaluator was disabled")
    env.traces([{"id": "w2", "input": "q", "output": "Paris."}])
    env.visible(["w2"])
    time.sleep(0.5)
    assert sum(env.counts(ev.id).values()) == 1  # disabled: nothing new is scheduled
    update_evaluator(env.services, env.pid, ev.id, {"enabled": True, "delay_seconds": 0})
    env.traces([{"id": "w3", "input": "q", "output": "Paris.", "metadata": {"reference_context": CONTEXT}}])
    counts = env.settled(ev.id, 2)
    assert (counts["completed"], counts["cancelled"]) == (1, 1)


def test_observation_evaluator_with_anthropic(env: Env) -> None:
    env.connect(model="claude-test", adapter="anthropic", provider="claude")
    ev = create_evaluator(env.services, env.pid, {
        "name": "gen-relevance", "template": "relevance", "target": "observation", "delay_seconds": 0,
        "filter": [{"type": "stringOptions", "column": "type", "operator": "any of", "value": ["GENERATION"]},
                   {"type": "string", "column": "name", "operator": "=", "value": "answer"}],
        "mapping": [{"variable": "input", "source": "input"}, {"variable": "output", "source": "output"}],
    })
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    env.ingest([
        {"id": "e1", "type": "trace-create", "timestamp": now, "body": {"id": "tr", "name": "chat"}},
        {"id": "e2", "type": "span-create", "timestamp": now,
         "body": {"id": "sp", "traceId": "tr", "name": "answer", "input": "x", "output": "y"}},
        {"id": "e3", "type": "generation-create", "timestamp": now,
         "body": {"id": "gen", "traceId": "tr", "name": "answer", "input": "hello", "output": "hi there"}},
        {"id": "e4", "type": "generation-create", "timestamp": now,
         "body": {"id": "other", "traceId": "tr", "name": "rewrite", "input": "a", "output": "b"}},
    ])
    env.settled(ev.id, 1)
    (score,) = wait_until(lambda: env.scores() or None, what="score")
    assert (score["trace_id"], score["observation_id"], score["name"], score["value"]) == ("tr", "gen", "relevance", 1.0)
    sent = [r for r in env.llm.requests if r["path"].endswith("/messages")]
    assert len(sent) == 1 and sent[0]["headers"]["x-api-key"] == "sk-test-123456789"
    assert sent[0]["body"]["tool_choice"]["type"] == "tool" and "hi there" in sent[0]["body"]["messages"][0]["content"]


def test_preview_shows_the_filled_prompt_of_a_real_trace(env: Env) -> None:
    env.connect()
    env.traces([{"id": "p1", "name": "qa", "input": "Where?", "output": "In Paris.",
                 "metadata": {"reference_context": CONTEXT}},
                {"id": "p2", "name": "other", "input": "no", "output": "no"}])
    env.visible(["p1", "p2"])
    spec = {"template": "hallucination", "mapping": FAITHFUL_MAPPING,
            "filter": [{"type": "string", "column": "name", "operator": "=", "value": "qa"}]}
    shown = preview_evaluator(env.services, env.pid, spec)
    assert shown["traceId"] == "p1"
    assert f"CONTEXT:\n{CONTEXT}" in shown["prompt"] and "ANSWER:\nIn Paris." in shown["prompt"]
    assert shown["variables"] == {"input": "Where?", "context": CONTEXT, "output": "In Paris."}
    assert shown["model"] == {"provider": "fake", "model": "gpt-4o-mini"}
    assert preview_evaluator(env.services, env.pid, spec, trace_id="p2")["variables"]["output"] == "no"


def test_a_killed_worker_resumes_its_executions(make_settings) -> None:
    settings = make_settings(sweeper_grace_seconds=1)
    with FakeOpenAI() as llm:
        with LiveServer(settings) as srv:
            env = Env(srv, create_project_key(srv.services), llm)
            env.connect()
            ev = faithfulness(env, delay_seconds=2)
            env.traces([{"id": f"k{i}", "input": "q", "output": "Paris.",
                         "metadata": {"reference_context": CONTEXT}} for i in range(3)])
            wait_until(lambda: env.counts(ev.id)["pending"] == 3, what="three scheduled executions")
            pid = env.pid
        # The process "died": its queued jobs are gone, and one execution was mid-call.
        JobQueue(settings).flush()
        with LiveServer(settings, run_worker=False) as srv:
            with srv.services.sessions.begin() as s:
                one = s.scalars(select(JobExecution).where(JobExecution.evaluator_id == ev.id).limit(1)).one()
                s.execute(update(JobExecution).where(JobExecution.id == one.id).values(
                    status="running", started_at=datetime(2020, 1, 1, tzinfo=UTC), attempts=1))
        time.sleep(3.2)  # past the delay and the 1 s lease
        with LiveServer(settings) as srv:
            env = Env(srv, {"project_id": pid}, llm)
            counts = env.settled(ev.id, 3, timeout=60)
            assert counts["completed"] == 3
            scores = env.wait_scores(3)
            assert sorted(s["trace_id"] for s in scores) == ["k0", "k1", "k2"]
    judged = [r for r in llm.requests if r["path"].endswith("/chat/completions")]
    assert len(judged) == 3  # each trace judged once
