"""LiteLLM with its `langfuse_otel` callback, answering from `mock_response` (no provider is called).

Usage: python litellm_flow.py TAG   (LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY, LANGFUSE_HOST set)
Prints one JSON line: what LiteLLM reported for each call, and the ids of the application's span.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from importlib.metadata import version

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # the bundled prices; no download

import litellm
from litellm.litellm_core_utils.thread_pool_executor import executor
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def call(**kw) -> dict:
    r = litellm.completion(**kw)
    if kw.get("stream"):
        chunks = list(r)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return {"output": text}
    return {"output": r.choices[0].message.content, "cost": r._hidden_params.get("response_cost"),
            "usage": {"prompt_tokens": r.usage.prompt_tokens, "completion_tokens": r.usage.completion_tokens}}


def main(tag: str) -> None:
    # The application's own OpenTelemetry setup, exporting to the same server over OTLP/HTTP.
    auth = base64.b64encode(f"{os.environ['LANGFUSE_PUBLIC_KEY']}:{os.environ['LANGFUSE_SECRET_KEY']}".encode())
    app = TracerProvider()
    app.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
        endpoint=os.environ["LANGFUSE_HOST"] + "/api/public/otel/v1/traces",
        headers={"authorization": "Basic " + auth.decode()})))
    trace.set_tracer_provider(app)
    litellm.callbacks = ["langfuse_otel"]
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": f"hello {tag}"}]
    out: dict = {"litellm_version": version("litellm")}
    out["plain"] = call(
        model="gpt-4o", messages=messages, mock_response=f"hi {tag}", temperature=0.3, max_tokens=50,
        metadata={"trace_name": f"litellm-{tag}", "trace_user_id": f"user-{tag}", "session_id": f"session-{tag}",
                  "tags": ["gateway", tag], "generation_name": f"gen-{tag}"})
    out["stream"] = call(model="gpt-4o", messages=messages, mock_response=f"streamed answer {tag}", stream=True,
                         stream_options={"include_usage": True},
                         metadata={"trace_name": f"litellm-stream-{tag}", "generation_name": f"stream-{tag}"})
    with app.get_tracer("app").start_as_current_span(f"agent-{tag}") as span:
        out["in_app_span"] = call(model="gpt-4o-mini", messages=messages, mock_response=f"nested {tag}",
                                  metadata={"generation_name": f"nested-{tag}"})
        ctx = span.get_span_context()
        out["app_trace_id"], out["app_span_id"] = format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
        # LiteLLM logs on its own threads after the call returns, and records a call made under an
        # open span onto that span: keep it open until the logging is done.
        executor.shutdown(wait=True)
    for cb in litellm.callbacks:
        provider = getattr(cb, "_tracer_provider", None)
        if provider is not None:
            provider.force_flush()
    app.force_flush()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
