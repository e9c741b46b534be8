"""The real `openai` client instrumented by `openinference-instrumentation-openai`, exporting over
OTLP/HTTP to the server, against the local fake OpenAI server.

Usage: python openinference_flow.py TAG OPENAI_BASE_URL   (LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY,
LANGFUSE_HOST set). Prints one JSON line with the ids of the spans it made.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from importlib.metadata import version

import openai
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def main(tag: str, base_url: str) -> None:
    auth = base64.b64encode(f"{os.environ['LANGFUSE_PUBLIC_KEY']}:{os.environ['LANGFUSE_SECRET_KEY']}".encode())
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
        endpoint=os.environ["LANGFUSE_HOST"] + "/api/public/otel/v1/traces",
        headers={"authorization": "Basic " + auth.decode()})))
    sent = InMemorySpanExporter()  # what was exported, to compare with what reads back
    provider.add_span_processor(SimpleSpanProcessor(sent))
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    client = openai.OpenAI(base_url=base_url, api_key="sk-fake")
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span(f"agent-{tag}", attributes={"openinference.span.kind": "AGENT",
                                                                  "input.value": f"question {tag}"}) as root:
        client.chat.completions.create(
            model="gpt-4o", temperature=0.5, max_tokens=64,
            messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": f"hello {tag}"}])
        stream = client.chat.completions.create(
            model="gpt-4o-mini", stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": f"stream {tag}"}])
        for _ in stream:
            pass
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"weather {tag}"}],
            tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object", "properties": {"query": {"type": "string"}}}}}])
        client.embeddings.create(model="text-embedding-3-small", input=[f"embed {tag}"])
        root.set_attribute("output.value", f"answer {tag}")
    provider.force_flush()
    spans = [{"name": s.name, "id": format(s.context.span_id, "016x"), "trace_id": format(s.context.trace_id, "032x"),
              "parent_id": format(s.parent.span_id, "016x") if s.parent else None} for s in sent.get_finished_spans()]
    print(json.dumps({"spans": spans, "root_id": format(root.get_span_context().span_id, "016x"),
                      "openinference_version": version("openinference-instrumentation-openai")}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
