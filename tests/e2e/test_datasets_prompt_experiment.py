"""Prompt experiments end to end on a real server (no browser): a prompt version × a dataset ×
the local OpenAI-compatible model, run directly and as a queue job; each call traced into the
project and linked to its item by a run item."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import LiveServer, create_project_key
from owlscope.datasets.analysis import compare_runs
from owlscope.datasets.items import upsert_item
from owlscope.datasets.olap_reads import observations_by_key, trace_summaries
from owlscope.datasets.prompt_experiment import (
    ENVIRONMENT,
    prompt_experiment_status,
    run_prompt_experiment,
    start_prompt_experiment,
)
from owlscope.datasets.runs import get_run
from owlscope.datasets.store import create_dataset
from owlscope.errors import InvalidRequest, NotFound
from owlscope.prompts import parse_create, prompt_store
from support.fake_openai import FakeOpenAI


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def env(make_settings, llm) -> Iterator[dict[str, Any]]:
    with LiveServer(make_settings("embedded")) as srv:
        services = srv.services
        project = create_project_key(services)["project_id"]
        prompt_store(services).create(project, parse_create({
            "name": "qa/chat", "type": "chat", "labels": ["production"], "config": {"temperature": 0.1},
            "prompt": [{"role": "system", "content": "You are {{who}}."},
                       {"role": "user", "content": "{{question}}"}],
        }))
        create_dataset(services.sessions, project_id=project, name="qa")
        for n in (1, 2):
            upsert_item(services.sessions, masker=None, project_id=project, dataset_name="qa", item_id=f"item-{n}",
                        input={"question": f"q{n}", "who": "terse"}, expected_output=f"echo: q{n}")
        yield {"services": services, "project": project, "llm": llm}


def _run(env: dict, **overrides: Any) -> dict[str, Any]:
    args = dict(project_id=env["project"], prompt_name="qa/chat", prompt_version=1, connection_id=None,
                model="gpt-4o-mini", dataset_name="qa", run_name=f"run-{uuid.uuid4().hex[:6]}",
                base_url=env["llm"].base_url, api_key="test-key")
    args.update(overrides)
    return run_prompt_experiment(env["services"], **args)


def _wait(fn, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_run_traces_each_call_and_links_items(env) -> None:
    services, project, llm = env["services"], env["project"], env["llm"]
    before = len(llm.requests)
    progress: list[dict] = []
    result = _run(env, run_name="first", on_progress=progress.append, concurrency=2)
    assert (result["total"], result["done"], result["failed"]) == (2, 2, 0)
    assert [p["done"] for p in progress] == [1, 2]
    calls = llm.requests[before:]
    assert len(calls) == 2
    assert all(c["body"]["temperature"] == 0.1 and c["body"]["model"] == "gpt-4o-mini" for c in calls)
    assert sorted(c["body"]["messages"][1]["content"] for c in calls) == ["q1", "q2"]
    assert calls[0]["body"]["messages"][0] == {"role": "system", "content": "You are terse."}

    run = get_run(services.sessions, None, project_id=project, dataset_name="qa", run_name="first")
    assert run["metadata"]["prompt"]["name"] == "qa/chat" and run["metadata"]["model"] == "gpt-4o-mini"
    assert sorted(ri["datasetItemId"] for ri in run["datasetRunItems"]) == ["item-1", "item-2"]

    def outputs():
        cmp = compare_runs(services.sessions, services.olap, project_id=project, dataset_name="qa", run_names=["first"])
        cells = {i["itemId"]: i["runs"]["first"] for i in cmp["items"]}
        return cells if all(c and c["output"] for c in cells.values()) else None

    cells = _wait(outputs)
    assert cells is not None, "the traced calls never became visible"
    assert cells["item-1"]["output"] == {"role": "assistant", "content": "echo: q1"}
    gens = observations_by_key(services.olap, project, [(c["traceId"], c["observationId"]) for c in cells.values()])
    gen = gens[(cells["item-2"]["traceId"], cells["item-2"]["observationId"])]
    assert gen["environment"] == ENVIRONMENT and gen["level"] == "DEFAULT"
    assert gen["input"][1] == {"role": "user", "content": "q2"}
    rows = services.olap.query(
        "SELECT argMaxIfMerge(prompt_name), argMaxIfMerge(prompt_version), argMaxIfMerge(usage_details)"
        " FROM {db}.observations WHERE project_id = {p:String} AND id = {o:String} GROUP BY id",
        {"p": project, "o": cells["item-2"]["observationId"]})
    name, version, usage = rows[0]
    assert (name, version) == ("qa/chat", 1) and usage["input"] > 0 and usage["output"] > 0
    traces = trace_summaries(services.olap, project, [cells["item-1"]["traceId"]])
    assert traces[cells["item-1"]["traceId"]]["input"] == {"question": "q1", "who": "terse"}

    # the run name is taken now
    with pytest.raises(InvalidRequest, match="already has a run named 'first'"):
        _run(env, run_name="first")


def test_missing_variables_fail_before_any_call(env) -> None:
    services, project, llm = env["services"], env["project"], env["llm"]
    upsert_item(services.sessions, masker=None, project_id=project, dataset_name="qa", item_id="item-bad", input={"question": "q"})
    before = len(llm.requests)
    with pytest.raises(InvalidRequest, match=r"uses variable\(s\) who .*item 'item-bad' lacks who"):
        _run(env, run_name="never")
    assert len(llm.requests) == before
    with pytest.raises(NotFound):  # nothing was created
        get_run(services.sessions, None, project_id=project, dataset_name="qa", run_name="never")
    # archived items are not run: with item-bad archived only the model choice is missing
    upsert_item(services.sessions, masker=None, project_id=project, dataset_name="qa", item_id="item-bad", status="ARCHIVED")
    with pytest.raises(InvalidRequest, match="connection"):
        _run(env, run_name="no-model", base_url=None, api_key=None)
    assert len(llm.requests) == before


def test_model_errors_are_recorded_per_item(env) -> None:
    services, project = env["services"], env["project"]
    result = _run(env, run_name="broken", model="judge-error")
    assert (result["done"], result["failed"]) == (2, 2) and "item-" in result["errors"][0]
    run = get_run(services.sessions, None, project_id=project, dataset_name="qa", run_name="broken")
    assert len(run["datasetRunItems"]) == 2
    key = (run["datasetRunItems"][0]["traceId"], run["datasetRunItems"][0]["observationId"])
    gen = _wait(lambda: observations_by_key(services.olap, project, [key]).get(key))
    assert gen is not None and gen["level"] == "ERROR"


def test_as_a_queue_job(env) -> None:
    services, project = env["services"], env["project"]
    job = start_prompt_experiment(services, project_id=project, prompt_name="qa/chat", prompt_version=1,
                                  connection_id=None, model="gpt-4o-mini", dataset_name="qa", run_name="queued",
                                  base_url=env["llm"].base_url, api_key="test-key")
    status = _wait(lambda: (s := prompt_experiment_status(services, project_id=project, job_id=job))["status"]
                   in ("completed", "failed") and s)
    assert status and status["status"] == "completed", status
    assert (status["total"], status["done"], status["failed"]) == (2, 2, 0)
    assert "api_key" not in str(status["params"]) and "test-key" not in str(status)
    run = get_run(services.sessions, None, project_id=project, dataset_name="qa", run_name="queued")
    assert len(run["datasetRunItems"]) == 2
    with pytest.raises(InvalidRequest):  # checked before queueing
        start_prompt_experiment(services, project_id=project, prompt_name="qa/chat", prompt_version=1,
                                connection_id=None, model="m", dataset_name="qa", run_name="queued",
                                base_url=env["llm"].base_url, api_key="k")


def test_with_a_project_llm_connection(env) -> None:
    from owlscope.evals.connections import upsert_connection

    services, project, llm = env["services"], env["project"], env["llm"]
    conn = upsert_connection(services.sessions, services.settings, project, {
        "provider": "local-fake", "adapter": "openai", "secretKey": "sk-conn-secret", "baseURL": llm.base_url})
    before = len(llm.requests)
    job = start_prompt_experiment(services, project_id=project, prompt_name="qa/chat", prompt_version=1,
                                  connection_id=conn["id"], model="gpt-4o-mini", dataset_name="qa",
                                  run_name="via-connection")
    status = _wait(lambda: (s := prompt_experiment_status(services, project_id=project, job_id=job))["status"]
                   in ("completed", "failed") and s)
    assert status and status["status"] == "completed", status
    calls = llm.requests[before:]
    assert len(calls) == 2 and all({k.lower(): v for k, v in c["headers"].items()}["authorization"] == "Bearer sk-conn-secret" for c in calls)
    # by provider name too; an unknown connection is a 404 before anything runs
    assert _run(env, run_name="by-provider", connection_id="local-fake", base_url=None, api_key=None)["done"] == 2
    with pytest.raises(NotFound):
        _run(env, run_name="nope", connection_id="missing", base_url=None, api_key=None)
