"""Memory and CPU of one OTLP request on the accept path, under the request limits.

Each case runs in a fresh process and prints the peak resident memory the request added (VmHWM
after minus before) and the CPU time it took:

- `bomb`: gzip(b"\\x0a\\x00" * 30_000_000), 61 KB of empty ResourceSpans (refused by the span limit);
- `max-spans`: OTLP_MAX_SPANS small spans in one request (accepted: decoded and mapped);
- `max-size`: one request whose body decompresses to just under the 64 MB limit (a few large spans).

    python bench/request_memory.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

CASE = r'''
import gzip, resource, sys, time
from owlscope.ingestion.errors import InvalidPayload
from owlscope.ingestion.limits import clamp_rows
from owlscope.ingestion.otel import map_otlp
from owlscope.ingestion.otlp_decode import DEFAULT_MAX_SPANS, decode_otlp
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
case, path = sys.argv[1], sys.argv[2]
if len(sys.argv) > 3:  # setup: write the body
    make = True
else:
    make = False
if not make:
    body = open(path, "rb").read()
elif case == "bomb":
    body = gzip.compress(b"\x0a\x00" * 30_000_000)
else:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    n, size = (DEFAULT_MAX_SPANS - 2, 40) if case == "max-spans" else (60, 1_000_000)
    for i in range(n):
        s = spans.add(trace_id=b"\x01" * 16, span_id=(i + 1).to_bytes(8, "big"), name=f"s{i}",
                      start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_001_000_000_000)
        kv = s.attributes.add(key="langfuse.observation.input")
        kv.value.string_value = "x" * size
    body = gzip.compress(req.SerializeToString(), 1)
if make:
    open(path, "wb").write(body)
    raise SystemExit(0)
before, cpu = hwm(), time.process_time()
try:
    rows = clamp_rows(map_otlp(decode_otlp(body, "application/x-protobuf", "gzip"), "p"))
    outcome = f"accepted, {len(rows)} rows"
except InvalidPayload as exc:
    outcome = f"refused: {exc.message[:60]}"
print(f"{case:10} body {len(body) / 1e6:7.2f} MB  peak +{hwm() - before:7.0f} MB  cpu {time.process_time() - cpu:6.2f} s  {outcome}")
'''


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for case in ("bomb", "max-spans", "max-size"):
            path = str(Path(tmp) / case)
            subprocess.run([sys.executable, "-c", CASE, case, path, "make"], check=True)
            subprocess.run([sys.executable, "-c", CASE, case, path], check=True)


if __name__ == "__main__":
    main()
