"""Hostile request bodies: deep nesting, odd batch shapes, decompression bombs. Each is refused
with a 4xx JSON error or stored so that every read still works; never a 500."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from unit.otlp_builders import make_request, make_span

from owlscope.ingestion.limits import MAX_JSON_DEPTH, deep_dumps
from reliability.helpers import project_api
from support.web import PASSWORD, WebUser


def nested(depth: int, leaf: object = "bottom") -> object:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def depth_of(value: object) -> int:
    depth = 0
    while isinstance(value, dict | list):
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
        depth += 1
    return depth


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


READS = ("/api/public/traces", "/api/public/observations")


@pytest.mark.parametrize("clamp", [True, False], ids=["capped-at-ingestion", "stored-before-the-cap"])
def test_deeply_nested_input_never_breaks_reads(server, monkeypatch, clamp) -> None:
    import owlscope.pipeline.process as process

    if not clamp:  # data stored by an older version: reads must still serialise it
        monkeypatch.setattr(process, "clamp_rows", lambda rows: rows)
    srv = server()
    api = project_api(srv, email="owner@example.com", password=PASSWORD)
    trace_id = uuid.uuid4().hex
    deep = deep_dumps(nested(300))
    span = make_span("deep", trace_id=trace_id, span_id=uuid.uuid4().hex[:16], attributes={
        "langfuse.observation.input": deep, "langfuse.trace.input": deep,
        "langfuse.observation.metadata.deep": deep,
    })
    assert api.otlp(make_request([span])).status_code == 200
    trace = api.trace(trace_id, 1)
    for path in READS:
        r = api.get(path, traceId=trace_id)
        assert r.status_code == 200, r.text[:300]
    [obs] = trace["observations"]
    assert depth_of(obs["input"]) <= MAX_JSON_DEPTH + 1
    assert depth_of(trace["input"]) <= MAX_JSON_DEPTH + 1
    # the levels below the cap are kept, as text
    bottom = obs["input"]
    while isinstance(bottom, dict | list):
        bottom = next(iter(bottom.values())) if isinstance(bottom, dict) else bottom[0]
    assert isinstance(bottom, str) and '"bottom"' in bottom
    assert api.get(f"/api/public/observations/{obs['id']}").status_code == 200
    owner = WebUser(srv.app)
    assert owner.sign_in("owner@example.com").status_code == 303
    page = owner.get(f"/project/{api.project_id}/traces/{trace_id}")
    assert page.status_code == 200 and "deep" in page.text


@pytest.mark.parametrize("depth", [253, 300, 1024])
def test_over_deep_json_in_ingestion_bodies_is_a_400_not_a_500(server, depth) -> None:
    srv = server()
    api = project_api(srv)
    trace_id = str(uuid.uuid4())
    ok = {"id": "ok", "type": "trace-create", "timestamp": _now(), "body": {"id": trace_id, "name": "ok"}}
    deep = {"id": "deep", "type": "span-create", "timestamp": _now(),
            "body": {"traceId": trace_id, "input": nested(depth)}}
    with httpx.Client(base_url=api.url, auth=api.auth, timeout=30) as client:
        r = client.post("/api/public/ingestion", content=deep_dumps({"batch": [ok, deep]}),
                        headers={"content-type": "application/json"})
        assert r.status_code in (207, 400), r.text[:300]
        body = r.json()
        if r.status_code == 207:
            assert [s["id"] for s in body["successes"]] == ["ok"]
            assert [e["id"] for e in body["errors"]] == ["deep"]
            assert "nested" in body["errors"][0]["message"]
        else:
            assert "nested" in body["message"] or "depth" in body["message"]
        score = {"traceId": trace_id, "name": "s", "value": 1, "metadata": nested(depth)}
        r = client.post("/api/public/scores", content=deep_dumps(score),
                        headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text[:300]
        assert "nested" in r.json()["message"] or "depth" in r.json()["message"]
        # the connection is kept alive after a refusal
        assert client.get("/api/public/health").status_code == 200


@pytest.mark.parametrize("payload", [
    {"batch": [{"type": {}}]}, {"batch": [{"type": []}]}, [], {"batch": {}}, {"batch": [[]]},
    {"batch": [{"type": "trace-create", "body": []}]}, "batch", 7, None,
    {"batch": [{"id": {}, "type": "trace-create", "timestamp": {}, "body": {}}]},
], ids=lambda p: orjson.dumps(p).decode()[:40])
def test_bad_batch_shapes_are_a_400_not_a_500(server, payload) -> None:
    srv = server()
    api = project_api(srv)
    with httpx.Client(base_url=api.url, auth=api.auth, timeout=30) as client:
        r = client.post("/api/public/ingestion", content=orjson.dumps(payload),
                        headers={"content-type": "application/json"})
        assert r.status_code in (207, 400), r.text[:300]
        if r.status_code == 400:
            assert set(r.json()) >= {"message", "error"}
        else:
            assert r.json()["successes"] == [] and r.json()["errors"]
        assert client.get("/api/public/health").status_code == 200
        assert r.headers.get("connection", "keep-alive").lower() != "close"


def test_a_protobuf_bomb_is_refused_fast_with_413_naming_the_limit(server) -> None:
    import gzip

    srv = server()
    api = project_api(srv)
    bomb = gzip.compress(b"\x0a\x00" * 30_000_000)  # 61 KB: 30 million empty ResourceSpans
    r = api.post("/api/public/otel/v1/traces", content=bomb,
                 headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"})
    assert r.status_code == 413, r.text[:300]  # counted on the wire: bench/request_memory.py for the cost
    assert "50000" in r.json()["message"] and r.json()["error"]
    # a large but legitimate export still goes through
    trace_id = uuid.uuid4().hex
    spans = [make_span(f"s{i}", trace_id=trace_id, span_id=f"{i + 1:016x}") for i in range(2000)]
    assert api.otlp(make_request(spans), gz=True).status_code == 200


def test_too_many_spans_and_too_large_decoded_bodies_are_413(server) -> None:
    import gzip

    srv = server(otlp_max_spans=100)
    api = project_api(srv)
    trace_id = uuid.uuid4().hex
    spans = [make_span(f"s{i}", trace_id=trace_id, span_id=f"{i + 1:016x}") for i in range(101)]
    for fmt in ("protobuf", "json"):
        r = api.otlp(make_request(spans), fmt=fmt)
        assert r.status_code == 413 and "100 spans" in r.json()["message"], r.text[:300]
    assert api.otlp(make_request(spans[:98])).status_code == 200  # 98 spans + 1 resource + 1 scope
    zeros = gzip.compress(b"\x00" * (65 * 1024 * 1024))
    r = api.post("/api/public/otel/v1/traces", content=zeros,
                 headers={"content-type": "application/x-protobuf", "content-encoding": "gzip"})
    assert r.status_code == 413 and "bytes" in r.json()["message"]
