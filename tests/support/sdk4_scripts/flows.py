"""Tracing flows run with the official langfuse SDK 4.14 in its own venv (OWLSCOPE_SDK4_PYTHON).

SDK 4.x cannot share a venv with 5.x, so tests/e2e/test_sdk_v4_tracing.py runs each flow as

    $OWLSCOPE_SDK4_PYTHON flows.py FLOW TAG [LLM_BASE_URL]

with LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY / LANGFUSE_BASE_URL pointing at a test server. The
script flushes, shuts the client down and prints ONE JSON object (the ids to check) as its last
line of stdout. It imports nothing of owlscope: it is a plain SDK user.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import langfuse
from langfuse import get_client, observe, propagate_attributes

OBSERVATION_TYPES = ("span", "generation", "agent", "tool", "chain", "retriever", "evaluator", "embedding",
                     "guardrail")

# v4 sends str and int metadata values as they are and JSON-encodes the rest (v5 JSON-encodes every
# value); as in Langfuse, strings that are JSON text ("42", '"hi"') read back as that JSON.
RAW_METADATA: dict[str, Any] = {
    "numeric_str": "42",
    "zero": "0",
    "decimal": "1.5",
    "json_text": '{"k": [1, "2"]}',
    "quoted": '"hi"',
    "plain": "hello world",
    "count": 3,
    "flag": True,
    "ratio": 0.5,
    "nested": {"a": [1, 2], "b": {"c": "d"}},
    "items": ["x", "y"],
}


def flow_nested(tag: str, _llm: str | None) -> dict[str, Any]:
    @observe(name=f"inner-{tag}")
    def inner(x: int) -> dict:
        return {"doubled": x * 2}

    @observe(name=f"outer-{tag}")
    def outer(x: int) -> str:
        inner(x)
        return "done"

    lf = get_client()
    with lf.start_as_current_observation(name=f"root-{tag}", input={"start": 21}) as root:
        trace_id = root.trace_id
        root_id = root.id
        outer(21)
        root.update(output="root-done")
    return {"trace_id": trace_id, "root_id": root_id}


def flow_types(tag: str, _llm: str | None) -> dict[str, Any]:
    lf = get_client()
    traces: dict[str, str] = {}
    for as_type in OBSERVATION_TYPES:
        extra: dict[str, Any] = {}
        if as_type in ("generation", "embedding"):
            extra = {
                "model": "gpt-4o", "model_parameters": {"temperature": 0.2, "max_tokens": 64},
                "usage_details": {"input": 10, "output": 5},
                "cost_details": {"input": 0.001, "output": 0.002}, "version": "gen-v1",
            }
        with lf.start_as_current_observation(name=f"{as_type}-{tag}", as_type=as_type, input={"q": as_type},
                                             **extra) as obs:
            traces[as_type] = obs.trace_id
            obs.update(output={"a": as_type}, metadata={**RAW_METADATA, "kind": as_type}, level="WARNING",
                       status_message=f"{as_type} warned")
            lf.create_event(name=f"event-{as_type}-{tag}", input="evt-in", output="evt-out",
                            metadata="just a string")
    return {"traces": traces}


def flow_propagate(tag: str, _llm: str | None) -> dict[str, Any]:
    lf = get_client()
    trace_ids = []
    for i in range(2):
        with lf.start_as_current_observation(name=f"request-{i}") as root:
            trace_ids.append(root.trace_id)
            with propagate_attributes(session_id=f"sess-{tag}", user_id=f"user-{tag}", tags=["a", "b"],
                                      metadata={"tenant": "acme", "order": "1234", "note": '"q"'},
                                      version="v7", trace_name=f"checkout-{tag}"):
                with lf.start_as_current_observation(name="step", as_type="tool") as step:
                    step.update(output={"step": i})
                lf.set_current_trace_io(input={"cart": i}, output=f"paid-{i}")
    return {"trace_ids": trace_ids}


def flow_openai(tag: str, llm: str | None) -> dict[str, Any]:
    from langfuse.openai import openai

    client = openai.OpenAI(base_url=llm, api_key="test-key")
    lf = get_client()
    with lf.start_as_current_observation(name=f"app-{tag}") as root:
        trace_id = root.trace_id
        chat = client.chat.completions.create(model="gpt-4o", name="chat", temperature=0.3, max_tokens=50,
                                              messages=[{"role": "user", "content": "hello there"}])
        stream = client.chat.completions.create(model="gpt-4o", name="stream", stream=True,
                                                stream_options={"include_usage": True},
                                                messages=[{"role": "user", "content": "count to three"}])
        streamed = "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
    return {"trace_id": trace_id, "chat": chat.choices[0].message.content, "streamed": streamed}


def flow_scores(tag: str, _llm: str | None) -> dict[str, Any]:
    lf = get_client()
    with lf.start_as_current_observation(name=f"scored-{tag}", as_type="generation") as gen:
        trace_id, obs_id = gen.trace_id, gen.id
        gen.score(name="relevance", value=0.25)
        gen.score_trace(name="helpful", value=0, data_type="BOOLEAN")
    lf.create_score(name="accuracy", value=0.87, trace_id=trace_id, observation_id=obs_id, comment="ok",
                    metadata={"judge": "human", "round": 2})
    lf.create_score(name="passed", value=1, data_type="BOOLEAN", trace_id=trace_id)
    lf.create_score(name="tone", value="friendly", data_type="CATEGORICAL", trace_id=trace_id)
    lf.create_score(name="note", value="short and clear", data_type="TEXT", trace_id=trace_id)
    lf.create_score(name="fix", value="the corrected answer", data_type="CORRECTION", trace_id=trace_id,
                    observation_id=obs_id)
    lf.create_score(name="session-rating", value=4, session_id=f"sess-{tag}")
    return {"trace_id": trace_id, "observation_id": obs_id}


def flow_dataset(tag: str, _llm: str | None) -> dict[str, Any]:
    """A dataset experiment as SDK 4.14 runs it: run items through the API, traces over OTLP,
    item scores from evaluators."""
    from langfuse import Evaluation

    lf = get_client()
    name = f"ds-{tag}"
    lf.create_dataset(name=name, description="sdk4 dataset")
    lf.create_dataset_item(dataset_name=name, input={"q": "2+2"}, expected_output="4")
    lf.create_dataset_item(dataset_name=name, input={"q": "3+3"}, expected_output="6")
    dataset = lf.get_dataset(name)

    def task(*, item, **_: Any) -> str:
        return str(eval(item.input["q"]))  # noqa: S307 - the test's own arithmetic

    def exact(*, output, expected_output, **_: Any) -> Evaluation:
        return Evaluation(name="exact", value=1.0 if output == expected_output else 0.0)

    result = dataset.run_experiment(name=f"exp-{tag}", run_name=f"run-{tag}", task=task, evaluators=[exact])
    return {"dataset": name, "run": f"run-{tag}", "items": len(result.item_results)}


FLOWS = {name[len("flow_"):]: fn for name, fn in globals().items() if name.startswith("flow_")}


def main() -> None:
    flow, tag = sys.argv[1], sys.argv[2]
    llm = sys.argv[3] if len(sys.argv) > 3 else None
    result = FLOWS[flow](tag, llm)
    client = get_client()
    client.flush()
    client.shutdown()
    print(json.dumps({"sdk_version": langfuse.__version__, **result}))


if __name__ == "__main__":
    main()
