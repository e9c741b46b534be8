"""Benchmark: decode + map of an OTLP export (512 SDK-v5-like spans with 1-2 KB input/output).

Run: python bench/map_otlp.py [--spans 512] [--rounds 20]
Prints spans/s for decode (gunzip + protobuf parse), map, and both.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from owlscope.ingestion.otel import decode_otlp, map_otlp


def _kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        v = AnyValue(bool_value=value)
    elif isinstance(value, int):
        v = AnyValue(int_value=value)
    elif isinstance(value, list):
        v = AnyValue()
        v.array_value.values.extend(AnyValue(string_value=x) for x in value)
    else:
        v = AnyValue(string_value=value)
    return KeyValue(key=key, value=v)


def build_request(n_spans: int, seed: int = 7) -> ExportTraceServiceRequest:
    rnd = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "tokens", "model", "answer", "question", "context"]

    def text(n: int) -> str:
        return " ".join(rnd.choice(words) for _ in range(n // 6))

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for k, v in {"telemetry.sdk.language": "python", "telemetry.sdk.name": "opentelemetry",
                 "telemetry.sdk.version": "1.45.2", "service.name": "bench", "langfuse.release": "rel-1"}.items():
        rs.resource.attributes.append(_kv(k, v))
    ss = rs.scope_spans.add()
    ss.scope.name = "langfuse-sdk"
    ss.scope.version = "5.0.4"
    ss.scope.attributes.append(_kv("public_key", "pk-lf-bench"))
    t0 = 1_795_768_145_000_000_000
    spans_per_trace = 8
    for i in range(n_spans):
        trace_idx = i // spans_per_trace
        span = ss.spans.add()
        span.trace_id = trace_idx.to_bytes(16, "big") or b"\x01" * 16
        span.trace_id = (trace_idx + 1).to_bytes(16, "big")
        span.span_id = (i + 1).to_bytes(8, "big")
        is_root = i % spans_per_trace == 0
        if not is_root:
            span.parent_span_id = (trace_idx * spans_per_trace + 1).to_bytes(8, "big")
        span.name = "llm-call" if i % 2 else "step"
        span.kind = 1
        span.start_time_unix_nano = t0 + i * 1_000_000
        span.end_time_unix_nano = t0 + i * 1_000_000 + 500_000
        attrs = {
            "user.id": f"user-{trace_idx % 50}", "session.id": f"sess-{trace_idx % 20}",
            "langfuse.trace.name": "bench-trace", "langfuse.trace.tags": ["bench", "v5"],
            "langfuse.trace.metadata.tenant": json.dumps("acme"), "langfuse.release": "rel-1",
            "langfuse.version": "1", "langfuse.environment": "production",
            "langfuse.observation.input": json.dumps([{"role": "user", "content": text(rnd.randint(1000, 2000))}]),
            "langfuse.observation.output": json.dumps({"role": "assistant", "content": text(rnd.randint(1000, 2000))}),
            "langfuse.observation.metadata.request_id": json.dumps(f"req-{i}"),
            "langfuse.observation.metadata.attempt": json.dumps(1),
        }
        if i % 2:
            attrs.update({
                "langfuse.observation.type": "generation",
                "langfuse.observation.model.name": "gpt-4o-mini",
                "langfuse.observation.model.parameters": json.dumps({"temperature": 0.2, "max_tokens": 256}),
                "langfuse.observation.usage_details": json.dumps({
                    "prompt_tokens": 420, "completion_tokens": 120, "total_tokens": 540,
                    "prompt_tokens_details": {"cached_tokens": 128, "audio_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 0}}),
                "langfuse.observation.completion_start_time": json.dumps("2026-11-27T08:29:06.773114Z"),
                "langfuse.observation.prompt.name": "chat-prompt",
                "langfuse.observation.prompt.version": 3,
            })
        else:
            attrs["langfuse.observation.type"] = "span"
        span.attributes.extend(_kv(k, v) for k, v in attrs.items())
    return req


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spans", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()

    req = build_request(args.spans)
    raw = req.SerializeToString()
    body = gzip.compress(raw, compresslevel=6)
    print(f"{args.spans} spans: {len(raw) / 1024:.0f} KiB protobuf, {len(body) / 1024:.0f} KiB gzip")

    decode_otlp(body, "application/x-protobuf", "gzip")  # warm up
    best_dec = best_map = best_all = float("inf")
    for _ in range(args.rounds):
        t = time.perf_counter()
        decoded = decode_otlp(body, "application/x-protobuf", "gzip")
        t1 = time.perf_counter()
        rows = map_otlp(decoded, "bench-project", "5.0.4")
        t2 = time.perf_counter()
        best_dec = min(best_dec, t1 - t)
        best_map = min(best_map, t2 - t1)
        best_all = min(best_all, t2 - t)
    assert len(rows.observations) == args.spans
    n = args.spans
    print(f"decode: {n / best_dec:>9,.0f} spans/s ({best_dec / n * 1e6:.1f} us/span)")
    print(f"map:    {n / best_map:>9,.0f} spans/s ({best_map / n * 1e6:.1f} us/span)")
    print(f"both:   {n / best_all:>9,.0f} spans/s ({best_all / n * 1e6:.1f} us/span)")


if __name__ == "__main__":
    main()
