"""An evaluator on experiments with the official SDK as the client: `dataset.run_experiment` (SDK v5)
runs a task over a dataset; the server records the run items from the spans, and an experiment
evaluator judges each item — its input and expected output from the dataset, its output from the
run — with the local OpenAI-compatible judge through the `openai` client. The scores land on the run
items' traces, so the runs table and the comparison of runs show them."""

from __future__ import annotations

import time
import uuid

from langfuse import Evaluation

from owlscope.datasets.analysis import compare_runs, runs_table
from owlscope.evals.connections import upsert_connection
from owlscope.evals.evaluators import create_evaluator, list_executions
from owlscope.evals.templates import create_template
from support.evals_live import wait_until
from support.fake_openai import FakeOpenAI

# The local judge scores 0 when the ANSWER uses a word the CONTEXT (here: the expected output) lacks.
PROMPT = "Is the ANSWER correct?\nQUESTION:\n{{input}}\n\nCONTEXT:\n{{expected_output}}\n\nANSWER:\n{{output}}"
NUMERIC = {"dataType": "NUMERIC", "reasoning": {"description": "why"},
           "score": {"description": "1 = correct", "minValue": 0, "maxValue": 1}}
ANSWERS = {"capital of France?": "Paris", "capital of Italy?": "Milano"}


def exact(*, output, expected_output=None, **kwargs):
    return Evaluation(name="exact", value=1.0 if output == expected_output else 0.0)


def test_run_experiment_items_are_judged_with_their_expected_output(sdk_server) -> None:
    lf, services, pid = sdk_server.client, sdk_server.services, sdk_server.project_id
    tag = uuid.uuid4().hex[:8]
    with FakeOpenAI() as llm:
        upsert_connection(services.sessions, services.settings, pid, {
            "provider": f"judge-{tag}", "adapter": "openai", "secretKey": "sk-e2e-0000000000", "baseURL": llm.base_url})
        create_template(services.sessions, pid, name=f"correct-{tag}", prompt=PROMPT, output_definition=NUMERIC,
                        provider=f"judge-{tag}", model="gpt-4o-mini")
        name = f"geo-{tag}"
        dataset = lf.create_dataset(name=name)
        lf.create_dataset(name=f"other-{tag}")
        lf.create_dataset_item(dataset_name=name, input={"q": "capital of France?"}, expected_output="Paris",
                               id=f"{tag}-fr")
        lf.create_dataset_item(dataset_name=name, input={"q": "capital of Italy?"}, expected_output="Roma",
                               id=f"{tag}-it")
        lf.create_dataset_item(dataset_name=f"other-{tag}", input={"q": "capital of France?"},
                               expected_output="Paris", id=f"{tag}-other")
        ev = create_evaluator(services, pid, {
            "name": f"correctness-{tag}", "template": f"correct-{tag}", "target": "experiment", "delay_seconds": 1,
            "filter": [{"type": "stringOptions", "column": "datasetId", "operator": "any of", "value": [dataset.id]}],
            "mapping": [{"variable": "input", "source": "input", "jsonPath": "$.q"},
                        {"variable": "expected_output", "source": "expected_output"},
                        {"variable": "output", "source": "output"}],
        })

        def task(*, item, **kwargs):
            return ANSWERS[item.input["q"]]

        run_name = f"run-{tag}"
        result = lf.get_dataset(name).run_experiment(name="geo", run_name=run_name, task=task, evaluators=[exact])
        lf.get_dataset(f"other-{tag}").run_experiment(name="geo", run_name=run_name, task=task)
        lf.flush()
        traces = {r.item.id: r.trace_id for r in result.item_results}

        values = {}
        for item_id, trace_id in traces.items():
            r = sdk_server.wait_for("/api/public/v2/scores", lambda r: r.status_code == 200 and any(
                s["name"] == f"correct-{tag}" for s in r.json()["data"]), timeout=40, traceId=trace_id)
            (score,) = [s for s in r.json()["data"] if s["name"] == f"correct-{tag}"]
            assert score["source"] == "EVAL" and score["traceId"] == trace_id
            values[item_id] = score["value"]
        assert values == {f"{tag}-fr": 1.0, f"{tag}-it": 0.0}

        executions = list_executions(services.sessions, pid, ev.id).data
        assert len(executions) == 2 and {e["status"] for e in executions} == {"completed"}
        assert {e["traceId"] for e in executions} == set(traces.values())
        assert all(e["datasetRunItemId"] for e in executions)
        # the run of the other dataset is recorded, but the filter leaves it out
        sdk_server.wait_for(f"/api/public/datasets/other-{tag}/runs/{run_name}",
                            lambda r: r.status_code == 200 and len(r.json()["datasetRunItems"]) == 1, timeout=20)
        time.sleep(1.5)
        assert len(list_executions(services.sessions, pid, ev.id).data) == 2
        judged = [r["body"]["messages"][0]["content"] for r in llm.requests if r["path"].endswith("/chat/completions")]
        assert any("CONTEXT:\nRoma\n\nANSWER:\nMilano" in p and "QUESTION:\ncapital of Italy?" in p for p in judged)

    # the runs table (average per score name) and the comparison (per item) show the judge's scores
    def table() -> dict | None:
        row = runs_table(services.sessions, services.olap, project_id=pid, dataset_name=name)[0]
        return row if f"correct-{tag}" in row["avgScores"] and "exact" in row["avgScores"] else None

    row = wait_until(table, 20, "the runs table")
    assert row["avgScores"][f"correct-{tag}"] == 0.5 and row["avgScores"]["exact"] == 0.5
    cmp = compare_runs(services.sessions, services.olap, project_id=pid, dataset_name=name, run_names=[run_name])
    cells = {i["itemId"]: i["runs"][run_name] for i in cmp["items"]}
    assert cells[f"{tag}-fr"]["scores"][f"correct-{tag}"] == 1.0
    assert cells[f"{tag}-it"]["scores"][f"correct-{tag}"] == 0.0
