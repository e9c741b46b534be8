"""A poison record must not hold back anyone's data: values are clamped at mapping time, a failing
insert is bisected so the good blobs land, and the poison blob is parked in events/failed/ with
its reason, shown to the project's admins."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
from unit.otlp_builders import make_request, make_span

from owlscope.pipeline import blobs
from reliability.helpers import failed_keys, pending_keys, project_api
from support.web import WebUser

HUGE = 9223372036854775807


def _event(etype: str, body: dict) -> dict:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"id": str(uuid.uuid4()), "type": etype, "timestamp": now, "body": body}


def _generation(trace_id: str, usage: dict) -> dict:
    return _event("generation-create", {"id": str(uuid.uuid4()), "traceId": trace_id, "name": "g",
                                        "model": "gpt-4o", "usageDetails": usage})


def test_usage_that_overflows_uint64_is_clamped_and_stored(server) -> None:
    srv = server()
    api = project_api(srv)
    trace_id = str(uuid.uuid4())
    gen = _generation(trace_id, {"input": HUGE, "output": HUGE, "cache": HUGE})
    api.ingest([_event("trace-create", {"id": trace_id, "name": "big"}), gen])
    span = make_span("otel-gen", trace_id=uuid.uuid4().hex, span_id=uuid.uuid4().hex[:16], attributes={
        "langfuse.observation.type": "generation",
        "langfuse.observation.usage_details": orjson.dumps({"input": HUGE, "output": HUGE, "x": HUGE}).decode(),
    })
    assert api.otlp(make_request([span])).status_code == 200

    obs = api.wait_for(f"/api/public/observations/{gen['body']['id']}").json()
    assert obs["usageDetails"]["input"] == 2**53 - 1
    assert obs["usageDetails"]["total"] == 2**53 - 1
    assert api.trace(trace_id, 1)["name"] == "big"
    api.wait_for("/api/public/observations", lambda r: r.status_code == 200 and any(
        o["name"] == "otel-gen" for o in r.json()["data"]))
    assert failed_keys(srv.services, api.project_id) == []


def test_an_insert_failure_is_bisected_the_poison_blob_is_parked_and_shown(server, monkeypatch) -> None:
    import owlscope.pipeline.process as process

    srv = server(run_worker=False)
    victim, poisoner = project_api(srv, "victim"), project_api(srv, "poisoner")
    # Without the clamp (as before it existed) this usage overflows the UInt64 column at insert.
    monkeypatch.setattr(process, "clamp_rows", lambda rows: rows)
    good_traces = [str(uuid.uuid4()) for _ in range(4)]
    for tid in good_traces[:2]:
        victim.ingest([_event("trace-create", {"id": tid, "name": "good"})])
    poison_trace = str(uuid.uuid4())
    poisoner.ingest([_event("trace-create", {"id": poison_trace}),
                     _generation(poison_trace, {"a": HUGE, "b": HUGE, "c": HUGE})])
    for tid in good_traces[2:]:
        victim.ingest([_event("trace-create", {"id": tid, "name": "good"})])

    processor = srv.services.processor
    for key in pending_keys(srv.services, victim.project_id) + pending_keys(srv.services, poisoner.project_id):
        processor.process_key(key)  # all five blobs are buffered for one insert
    processor.flush()

    assert pending_keys(srv.services, victim.project_id) == []
    for tid in good_traces:
        assert victim.trace(tid)["name"] == "good"
    assert pending_keys(srv.services, poisoner.project_id) == []
    [parked] = failed_keys(srv.services, poisoner.project_id)
    header = blobs.failure(srv.services.blobs.get(parked))
    assert header["kind"] == "batch" and "cannot insert" in header["error"]
    assert processor.failed_blobs == 1
    # the parked blob keeps the original request, decodable for a replay
    assert len(orjson.loads(blobs.unpack(*_payload(srv.services.blobs.get(parked))))) == 2


def _payload(data: bytes) -> tuple[bytes, str | None]:
    env = blobs.decode(data)
    return env.payload, env.content_encoding


def test_a_blob_with_a_wrongly_typed_header_is_parked_and_the_others_land(server) -> None:
    srv = server(run_worker=False)
    api = project_api(srv)
    trace_id = str(uuid.uuid4())
    api.ingest([_event("trace-create", {"id": trace_id, "name": "fine"})])
    bad_key = blobs.new_key(api.project_id, "batch")
    header = {"kind": "batch", "project_id": 12345, "received_at": 1.0}
    srv.services.blobs.put(bad_key, orjson.dumps(header) + b"\n" + orjson.dumps(
        [_event("trace-create", {"id": str(uuid.uuid4())})]))
    for key in pending_keys(srv.services, api.project_id):
        srv.services.processor.process_key(key)
    srv.services.processor.flush()
    assert api.trace(trace_id)["name"] == "fine"
    assert failed_keys(srv.services, api.project_id) == [blobs.moved(bad_key, blobs.FAILED)]
    error = blobs.failure(srv.services.blobs.get(blobs.moved(bad_key, blobs.FAILED)))["error"]
    assert "project_id" in error


def test_admins_see_failed_blobs_with_their_reason_in_project_settings(server) -> None:
    srv = server(run_worker=False)
    admin = WebUser(srv.app)
    admin.sign_up("admin@example.com")
    project_id = admin.onboard("Org", "Project")
    page = admin.get(f"/project/{project_id}/settings")
    assert page.status_code == 200 and "No failed events." in page.text
    key = blobs.new_key(project_id, "batch")
    srv.services.blobs.put(blobs.moved(key, blobs.FAILED),
                           blobs.with_error(b'{"kind":"batch"}\n[]', "cannot insert: Value out of range"))
    page = admin.get(f"/project/{project_id}/settings")
    assert "Ingestion failures" in page.text
    assert "cannot insert: Value out of range" in page.text
    assert 'data-failure-count>1<' in page.text
    metrics = admin.get("/metrics").text  # and operators see it on the Prometheus endpoint
    assert "owlscope_ingest_failed_blobs 1.0" in metrics


def test_a_request_bigger_than_one_insert_is_inserted_in_slices(server, monkeypatch) -> None:
    import owlscope.pipeline.process as process

    monkeypatch.setattr(process, "FLUSH_ROWS", 100)
    srv = server(run_worker=False)
    api = project_api(srv)
    sizes: list[int] = []
    olap = srv.services.olap
    original = olap.insert_arrow
    monkeypatch.setattr(olap, "insert_arrow", lambda table, data, **kw: (sizes.append(data.num_rows),
                                                                         original(table, data, **kw))[1])
    spans = 350
    trace_id = uuid.uuid4().hex
    req = make_request([make_span(f"s{i}", trace_id=trace_id, span_id=f"{i + 1:016x}") for i in range(spans)])
    assert api.otlp(req, gz=True).status_code == 200
    [key] = pending_keys(srv.services, api.project_id)
    srv.services.processor.process_key(key)
    srv.services.processor.flush()
    assert max(sizes) <= 100 and len(sizes) >= 4
    r = api.wait_for("/api/public/observations", lambda r: r.status_code == 200
                     and r.json()["meta"]["totalItems"] == spans, traceId=trace_id, limit=1)
    assert r.json()["meta"]["totalItems"] == spans
