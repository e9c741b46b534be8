"""LLM-as-a-judge with the official SDK as the client: an LLM connection managed through the SDK's
API client, traces sent by the SDK (OTLP), judged by the local OpenAI-compatible server, and the
scores and the judge's own traces (cost, latency, reserved environment) read back through the API."""

from __future__ import annotations

import time
import uuid

from langfuse import propagate_attributes

from owlscope.evals.connections import set_default_model
from owlscope.evals.evaluators import create_evaluator, list_executions
from support.fake_openai import FakeOpenAI

CONTEXT = "Paris is the capital of France. It lies on the Seine."
JUDGE_ENV = "langfuse-llm-as-a-judge"


def test_sdk_traces_are_judged_and_judge_calls_are_traced(sdk_server) -> None:
    lf = sdk_server.client
    tag = uuid.uuid4().hex[:8]
    with FakeOpenAI() as llm:
        conn = lf.api.llm_connections.upsert(provider=f"fake-{tag}", adapter="openai", secret_key="sk-e2e-0000000000",
                                             base_url=llm.base_url, custom_models=["gpt-4o-mini"])
        assert conn.display_secret_key == "sk-...0000" and conn.base_url == llm.base_url
        assert f"fake-{tag}" in [c.provider for c in lf.api.llm_connections.list(limit=100).data]
        set_default_model(sdk_server.services.sessions, sdk_server.project_id, provider=f"fake-{tag}",
                          model="gpt-4o-mini")
        ev = create_evaluator(sdk_server.services, sdk_server.project_id, {
            "name": f"faithfulness-{tag}", "template": "hallucination", "delay_seconds": 1, "score_name": "faithful",
            "filter": [{"type": "string", "column": "name", "operator": "=", "value": f"qa-{tag}"}],
            "mapping": [{"variable": "input", "source": "input"},
                        {"variable": "context", "source": "metadata", "jsonPath": "$.reference_context"},
                        {"variable": "output", "source": "output"}],
        })

        trace_ids = {}
        for label, answer in (("good", "The capital of France is Paris."), ("bad", "The capital is Marseille.")):
            with lf.start_as_current_observation(name="request", input="What is the capital of France?") as root:
                trace_ids[label] = root.trace_id
                with propagate_attributes(trace_name=f"qa-{tag}", metadata={"reference_context": CONTEXT}):
                    with lf.start_as_current_observation(name="llm", as_type="generation", model="gpt-4o") as gen:
                        gen.update(output=answer)
                root.update(output=answer)
        lf.flush()

        values = {}
        for label, trace_id in trace_ids.items():
            r = sdk_server.wait_for("/api/public/v2/scores", lambda r: r.status_code == 200 and r.json()["data"],
                                    timeout=30, traceId=trace_id)
            (score,) = r.json()["data"]
            assert (score["name"], score["source"], score["dataType"]) == ("faithful", "EVAL", "NUMERIC")
            values[label] = (score["value"], score["comment"])
        assert values["good"][0] == 1 and values["bad"][0] == 0
        assert "marseille" in values["bad"][1]

        executions = list_executions(sdk_server.services.sessions, sdk_server.project_id, ev.id).data
        assert sorted(e["traceId"] for e in executions) == sorted(trace_ids.values())
        judge_ids = {e["judgeTraceId"] for e in executions}
        r = sdk_server.wait_for("/api/public/traces", lambda r: judge_ids <= {t["id"] for t in r.json()["data"]},
                                timeout=30, environment=JUDGE_ENV, limit=100)
        judged = [t for t in r.json()["data"] if t["id"] in judge_ids]
        assert all(t["environment"] == JUDGE_ENV and t["totalCost"] > 0 and t["latency"] >= 0 for t in judged)
        assert all(t["name"] == f"Execute evaluator: faithfulness-{tag}" for t in judged)
        # the judge traces are not judged again, and the project's own traces stay separate
        time.sleep(1.5)
        assert len(list_executions(sdk_server.services.sessions, sdk_server.project_id, ev.id).data) == 2
        assert lf.api.llm_connections.delete(id=conn.id).message
