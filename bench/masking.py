"""Masking benchmark: what the detectors cost per span, and end-to-end ingestion with them on and off.

1. In process, on the spans of `bench/ingest.py` (four per trace, 1–2 KB of input and output on the
   generation): the time `Masker.otlp` takes per span with every detector on (placeholders, then
   hashes), on text without personal data and on text with some in every question (`--pii`); and
   what the accept path adds when it masks (the masked request is re-encoded and gzipped again,
   where an unmasked one is stored as received). Legacy batch events (`Masker.events`) the same way.
2. End to end (unless --no-e2e): `bench/ingest.py` against a fresh `owlscope serve`, masking off
   and then `MASKING_DETECTORS=all`, on the same spans with personal data: spans/s from request to
   queryable for each.

    python bench/masking.py --spans 20000 --clients 4
    python bench/masking.py --spans 4000 --no-e2e          # the per-span costs only

Numbers on a loaded machine are upper bounds: compare the two runs of one invocation.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ingest import build_requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from owlscope.ingestion.masking import Masker, parse_detectors

HERE = Path(__file__).parent
CONFIGS = (("all detectors", "all"), ("all detectors, hashed", "all:hash"))


def _requests(bodies: list[bytes]) -> list[ExportTraceServiceRequest]:
    out = []
    for body in bodies:
        req = ExportTraceServiceRequest()
        req.ParseFromString(gzip.decompress(body))
        out.append(req)
    return out


def _spans(reqs: list[ExportTraceServiceRequest]) -> int:
    return sum(len(ss.spans) for r in reqs for rs in r.resource_spans for ss in rs.scope_spans)


def _best(bodies: list[bytes], work: Callable[[ExportTraceServiceRequest], object], rounds: int) -> float:
    """Seconds for the whole set, the best of `rounds` (each on freshly decoded requests: masking
    changes them in place)."""
    best = float("inf")
    for _ in range(rounds):
        reqs = _requests(bodies)
        start = time.perf_counter()
        for req in reqs:
            work(req)
        best = min(best, time.perf_counter() - start)
    return best


def _accept_extra(masker: Masker) -> Callable[[ExportTraceServiceRequest], object]:
    def work(req: ExportTraceServiceRequest) -> object:
        masker.otlp(req)
        return gzip.compress(req.SerializeToString(), compresslevel=1)

    return work


def per_span(n_spans: int, rounds: int) -> None:
    for pii in (False, True):
        bodies = build_requests(n_spans, pii=pii)
        n = _spans(_requests(bodies))
        print(f"\n{n} spans, {'with' if pii else 'without'} personal data in every question:")
        for label, spec in CONFIGS:
            masker = Masker(parse_detectors(spec), salt="bench-salt")
            alone = _best(bodies, masker.otlp, rounds)
            extra = _best(bodies, _accept_extra(masker), rounds)
            print(f"  {label:<22} masking {alone / n * 1e6:7.1f} µs/span ({n / alone:9,.0f} spans/s per core);"
                  f" with re-encode + gzip {extra / n * 1e6:7.1f} µs/span")
    events = _batch_events(n_spans // 4, pii=True)
    for label, spec in CONFIGS:
        masker = Masker(parse_detectors(spec), salt="bench-salt")
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            masker.events(events)
            best = min(best, time.perf_counter() - start)
        print(f"  batch events, {label:<13} {best / len(events) * 1e6:7.1f} µs/event ({len(events)} events)")


def _batch_events(n: int, pii: bool) -> list[dict]:
    from ingest import PII, WORDS

    text = " ".join(WORDS * 8) + (PII if pii else "")
    return [{"id": f"e{i}", "type": "generation-create", "timestamp": "2026-01-01T00:00:00Z",
             "body": {"id": f"g{i}", "traceId": f"t{i}", "name": "llm", "model": "gpt-4o",
                      "input": [{"role": "user", "content": text}], "output": {"content": text},
                      "metadata": {"customer": "acme", "note": text[:200]}}} for i in range(n)]


def end_to_end(n_spans: int, clients: int) -> dict[str, float]:
    found = {}
    for label, spec in (("masking off", ""), ("MASKING_DETECTORS=all", "all")):
        print(f"\n== {label}: bench/ingest.py --spans {n_spans} --clients {clients} --pii", flush=True)
        out = subprocess.run([sys.executable, str(HERE / "ingest.py"), "--spans", str(n_spans), "--clients",
                              str(clients), "--pii", "--masking", spec], capture_output=True, text=True, check=True)
        print(out.stdout.rstrip())
        accepted = re.search(r"in [\d.]+s: ([\d,]+) spans/s", out.stdout)
        e2e = re.search(r"end to end: ([\d,]+) spans/s", out.stdout)
        found[label] = {"accepted": float(accepted.group(1).replace(",", "")) if accepted else float("nan"),
                        "end_to_end": float(e2e.group(1).replace(",", "")) if e2e else float("nan")}
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=20_000, help="spans for the end-to-end runs")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--micro-spans", type=int, default=4_096, help="spans for the per-span costs")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-e2e", action="store_true", help="only the per-span costs")
    args = ap.parse_args()
    per_span(args.micro_spans, args.rounds)
    if not args.no_e2e:
        found = end_to_end(args.spans, args.clients)
        print("\nsummary (spans/s):", json.dumps(found))
        off, on = found["masking off"]["end_to_end"], found["MASKING_DETECTORS=all"]["end_to_end"]
        print(f"end to end with every detector on: {on:,.0f} spans/s vs {off:,.0f} off ({on / off - 1:+.0%})")


if __name__ == "__main__":
    main()
