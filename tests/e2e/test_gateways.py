"""Gateways and instrumentations that speak OTLP, against a real server, read back through the API:
LiteLLM's `langfuse_otel` callback (answers from `mock_response`, no provider called) and
OpenInference's OpenAI instrumentation around the real `openai` client and the local fake OpenAI
server. Each runs in its own interpreter (tests/support/client_scripts/): both install process-wide
OpenTelemetry state and patch the `openai` module, which must not leak into other tests."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import skip_or_fail
from support.fake_openai import FakeOpenAI
from support.sdk_reads import read_trace

SCRIPTS = Path(__file__).resolve().parents[1] / "support" / "client_scripts"


def run_script(sdk_server, script: str, *args: str, needs: str) -> dict:
    if importlib.util.find_spec(needs) is None:
        skip_or_fail(f"{needs} is not installed (pip install '.[dev]')")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "OTEL_"))}
    env.update(LANGFUSE_PUBLIC_KEY=sdk_server.public_key, LANGFUSE_SECRET_KEY=sdk_server.secret_key,
               LANGFUSE_HOST=sdk_server.url, PYTHONPATH="")
    proc = subprocess.run([sys.executable, str(SCRIPTS / script), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}\n{proc.stderr[-5000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def trace_named(sdk_server, name: str, n_obs: int) -> dict:
    r = sdk_server.wait_for("/api/public/traces", lambda r: r.status_code == 200 and len(r.json()["data"]) == 1,
                            name=name)
    return read_trace(sdk_server, r.json()["data"][0]["id"], n_obs)


def as_text(params: dict) -> dict:
    """Model parameters compared as text (Langfuse returns every value as a string)."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}


def test_litellm_langfuse_otel_callback(sdk_server) -> None:
    tag = uuid.uuid4().hex[:8]
    out = run_script(sdk_server, "litellm_flow.py", tag, needs="litellm")

    # A plain completion: trace attributes from the call's metadata, one generation with a child span
    # (LiteLLM's raw provider response).
    trace = trace_named(sdk_server, f"litellm-{tag}", 2)
    assert trace["userId"] == f"user-{tag}" and trace["sessionId"] == f"session-{tag}"
    assert sorted(trace["tags"]) == sorted(["gateway", tag])
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": f"hello {tag}"}]
    assert trace["input"] == messages
    gens = [o for o in trace["observations"] if o["type"] == "GENERATION"]
    assert len(gens) == 1
    gen = gens[0]
    assert gen["name"] == f"gen-{tag}" and gen["model"] == "gpt-4o" and gen["parentObservationId"] is None
    assert gen["input"] == messages
    assert gen["output"] == {"role": "assistant", "content": f"hi {tag}"}
    assert as_text(gen["modelParameters"]) == {"temperature": "0.3", "max_tokens": "50"}
    usage = out["plain"]["usage"]
    assert gen["usageDetails"] == {"input": usage["prompt_tokens"], "output": usage["completion_tokens"],
                                   "total": usage["prompt_tokens"] + usage["completion_tokens"]}
    assert gen["calculatedTotalCost"] == pytest.approx(out["plain"]["cost"])  # as LiteLLM priced it
    assert gen["costDetails"]["input"] == pytest.approx(usage["prompt_tokens"] * 2.5e-6)
    assert gen["completionStartTime"] is not None
    others = [o for o in trace["observations"] if o["id"] != gen["id"]]
    assert others and all(o["parentObservationId"] == gen["id"] for o in others)

    # A streamed completion: the assembled text and the usage of the last chunk.
    trace = trace_named(sdk_server, f"litellm-stream-{tag}", 1)
    gen = next(o for o in trace["observations"] if o["type"] == "GENERATION")
    assert gen["name"] == f"stream-{tag}" and gen["model"] == "gpt-4o"
    assert gen["output"] == {"role": "assistant", "content": out["stream"]["output"]}
    assert gen["usageDetails"]["output"] > 0 and gen["usageDetails"]["input"] > 0
    assert gen["calculatedTotalCost"] > 0

    # Under the application's own open span: LiteLLM records the call onto that span, in the
    # application's trace, with its raw-response span below it.
    obs = read_trace(sdk_server, out["app_trace_id"], 2)["observations"]
    by_id = {o["id"]: o for o in obs}
    assert by_id[out["app_span_id"]]["parentObservationId"] is None
    assert all(o["parentObservationId"] in by_id for o in obs if o["id"] != out["app_span_id"])
    nested = [o for o in obs if o["type"] == "GENERATION"]
    assert len(nested) == 1 and nested[0]["model"] == "gpt-4o-mini"
    assert nested[0]["usageDetails"]["input"] == out["in_app_span"]["usage"]["prompt_tokens"]
    assert nested[0]["calculatedTotalCost"] == pytest.approx(out["in_app_span"]["cost"])
    assert nested[0]["output"] == {"role": "assistant", "content": f"nested {tag}"}


def test_openinference_openai_instrumentation(sdk_server) -> None:
    tag = uuid.uuid4().hex[:8]
    with FakeOpenAI() as llm:
        out = run_script(sdk_server, "openinference_flow.py", tag, llm.base_url,
                         needs="openinference.instrumentation.openai")
        assert len(llm.requests) == 4  # three chats and one embedding reached the server
    spans = out["spans"]
    trace_id = spans[0]["trace_id"]
    # the root span is exported last: wait for its trace fields too
    trace = sdk_server.wait_for(f"/api/public/traces/{trace_id}", lambda r: r.status_code == 200 and len(
        r.json()["observations"]) >= len(spans) and r.json()["name"] is not None).json()
    obs = trace["observations"]
    # the hierarchy as exported: same ids, same parents
    assert {(o["id"], o["parentObservationId"]) for o in obs} == {(s["id"], s["parent_id"]) for s in spans}
    by_id = {o["id"]: o for o in obs}
    root = by_id[out["root_id"]]
    assert root["type"] == "AGENT" and root["name"] == f"agent-{tag}"
    assert root["input"] == f"question {tag}" and root["output"] == f"answer {tag}"  # text/plain stays text
    assert trace["name"] == f"agent-{tag}" and trace["input"] == f"question {tag}"

    chats = sorted((o for o in obs if o["name"] == "ChatCompletion"), key=lambda o: o["startTime"])
    chat, streamed, tool = chats
    assert [o["type"] for o in chats] == ["GENERATION"] * 3
    assert (chat["model"], streamed["model"], tool["model"]) == ("gpt-4o", "gpt-4o-mini", "gpt-4o")
    # the fake server counts words: "Answer briefly.\nhello TAG" is 4 prompt tokens, 1 of them cached;
    # "echo: hello TAG" is 3 completion tokens
    assert chat["usageDetails"] == {"input": 3, "input_cached_tokens": 1, "input_audio_tokens": 0, "output": 3,
                                    "output_reasoning_tokens": 0, "total": 7}
    # gpt-4o: $2.50 / $1.25 (cached) / $10 per million tokens
    assert chat["costDetails"]["input"] == pytest.approx(3 * 2.5e-6)
    assert chat["costDetails"]["input_cached_tokens"] == pytest.approx(1.25e-6)
    assert chat["costDetails"]["output"] == pytest.approx(3 * 1e-5)
    assert chat["calculatedTotalCost"] == pytest.approx(3 * 2.5e-6 + 1.25e-6 + 3 * 1e-5)
    params = as_text(chat["modelParameters"])
    assert params["temperature"] == "0.5" and params["max_tokens"] == "64"
    chat_in, chat_out = chat["input"], chat["output"]
    assert chat_in["messages"] == [{"role": "system", "content": "Answer briefly."},
                                   {"role": "user", "content": f"hello {tag}"}]
    assert chat_out["choices"][0]["message"]["content"] == f"echo: hello {tag}"
    assert streamed["usageDetails"]["output"] == 3 and streamed["calculatedTotalCost"] > 0
    assert streamed["output"]["choices"][0]["message"]["content"] == f"echo: stream {tag}"
    call = tool["output"]["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"

    emb = next(o for o in obs if o["name"] == "CreateEmbeddings")
    assert emb["type"] == "EMBEDDING" and emb["model"] == "text-embedding-3-small"
    assert emb["usageDetails"]["input"] == 2 and emb["calculatedTotalCost"] == pytest.approx(2 * 2e-8)
    assert all(o["parentObservationId"] == root["id"] for o in chats + [emb])
