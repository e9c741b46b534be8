"""The write side over raw HTTP against a real server, on both stacks (embedded: SQLite, chDB, SQLite
queue, local blobs; scale-out: PostgreSQL, ClickHouse over HTTP, Redis, S3): merging of
out-of-order and duplicate pieces, replays, every refusal (400/401/413/429/503) and project
isolation — all checked through the read API."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from unit.otlp_builders import make_request, make_span

from conftest import LiveServer, create_project_key, free_port
from owlscope.pipeline import blobs
from support.ingest_http import Api

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
NS = 1_000_000_000


def iso(seconds: float = 0) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hex_id(n_bytes: int) -> str:
    """A random OTLP id: 16 bytes for a trace, 8 for a span, as hex."""
    return uuid.uuid4().hex[: n_bytes * 2]


def event(etype: str, body: dict, ts: float = 0, event_id: str | None = None) -> dict:
    return {"id": event_id or str(uuid.uuid4()), "type": etype, "timestamp": iso(ts), "body": body}


@pytest.fixture
def serve(make_settings, stack):
    """serve(**settings) -> a running LiveServer on this test's stack (with a queue of its own, see
    make_settings), stopped at teardown."""
    started: list[LiveServer] = []

    def start(*, run_worker: bool = True, **overrides) -> LiveServer:
        srv = LiveServer(make_settings(stack, **overrides), run_worker=run_worker).__enter__()
        started.append(srv)
        return srv

    yield start
    for srv in reversed(started):
        queue = srv.services.queue
        srv.__exit__(None, None, None)
        queue.flush()  # leave no keys behind in the shared Redis


@pytest.fixture
def api(serve) -> Api:
    srv = serve()
    return Api(srv, create_project_key(srv.services, org_name="org-a", project_name="proj-a"))


def pending_blobs(services, project_id: str) -> list[str]:
    return [b.key for b in services.blobs.list(f"{blobs.PENDING}{project_id}/")]


def processed_blobs(services, project_id: str) -> list[str]:
    return [b.key for b in services.blobs.list(f"{blobs.PROCESSED}{project_id}/")]


def wait_processed(services, project_id: str, n: int, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        keys = processed_blobs(services, project_id)
        if len(keys) >= n and not pending_blobs(services, project_id):
            return keys
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(keys)} processed blobs, pending: {pending_blobs(services, project_id)}")
        time.sleep(0.05)


def assert_json_error(r: httpx.Response, status: int, error: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["error"] == error and body["message"], body
    return body


# ---- merging: out of order, duplicates, replays -------------------------------------------------
def test_update_before_create_in_separate_requests_merges(api: Api) -> None:
    services, pid = api.srv.services, api.project_id
    trace_id, gen_id = str(uuid.uuid4()), str(uuid.uuid4())
    # the updates (later event times) arrive first, each in its own request, and are stored first
    api.ingest([event("generation-update", {
        "id": gen_id, "traceId": trace_id, "endTime": iso(3), "output": {"answer": 42},
        "usageDetails": {"input": 10, "output": 5}, "level": "WARNING", "metadata": {"step": "update"},
    }, ts=3)])
    wait_processed(services, pid, 1)
    api.ingest([event("trace-create", {"id": trace_id, "name": "late-name", "userId": "u2"}, ts=4)])
    wait_processed(services, pid, 2)
    api.ingest([
        event("trace-create", {"id": trace_id, "name": "first-name", "userId": "u1", "sessionId": "s1",
                               "tags": ["x"], "input": {"q": 1}}, ts=0),
        event("generation-create", {
            "id": gen_id, "traceId": trace_id, "name": "llm", "startTime": iso(1), "model": "gpt-4o",
            "input": [{"role": "user", "content": "hi"}], "output": "stale", "level": "DEBUG",
            "metadata": {"step": "create"},
        }, ts=1),
    ])
    wait_processed(services, pid, 3)
    trace = api.trace(trace_id, 1)
    assert trace["name"] == "late-name" and trace["userId"] == "u2"  # the later event wins...
    assert trace["sessionId"] == "s1" and trace["tags"] == ["x"]  # ...but never with a null
    assert trace["input"] == {"q": 1}
    gen = api.get(f"/api/public/observations/{gen_id}").json()
    assert gen["type"] == "GENERATION" and gen["name"] == "llm" and gen["model"] == "gpt-4o"
    assert gen["startTime"] == iso(1) and gen["endTime"] == iso(3)
    assert gen["input"] == [{"role": "user", "content": "hi"}]
    assert gen["output"] == {"answer": 42} and gen["level"] == "WARNING"  # update's ts is later
    assert gen["usageDetails"] == {"input": 10, "output": 5, "total": 15}
    assert gen["metadata"] == {"step": "update"}
    assert api.total("/api/public/observations", traceId=trace_id) == 1


def test_same_batch_twice_stores_no_duplicates(api: Api) -> None:
    trace_id, span_id, score_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    name = f"dup-{uuid.uuid4().hex[:8]}"
    batch = [
        event("trace-create", {"id": trace_id, "name": name, "sessionId": f"sess-{name}"}),
        event("span-create", {"id": span_id, "traceId": trace_id, "name": "work", "startTime": iso(0),
                               "endTime": iso(1)}, ts=0),
        event("event-create", {"id": f"{span_id}-evt", "traceId": trace_id,
                                "parentObservationId": span_id, "name": "ping"}, ts=0.5),
        event("score-create", {"id": score_id, "traceId": trace_id, "name": "quality", "value": 0.5}),
    ]
    first, second = api.ingest(batch), api.ingest(batch)
    assert [s["status"] for s in first["successes"]] == [201] * 4 and first["errors"] == []
    assert second == first
    wait_processed(api.srv.services, api.project_id, 2)
    api.trace(trace_id, 2)
    api.wait_for("/api/public/v2/scores", lambda r: len(r.json()["data"]) >= 1, traceId=trace_id)
    assert api.total("/api/public/traces", name=name) == 1
    assert api.total("/api/public/observations", traceId=trace_id) == 2
    assert api.total("/api/public/v2/scores", traceId=trace_id) == 1
    assert api.total("/api/public/sessions") == 1
    v2 = api.get("/api/public/v2/observations", traceId=trace_id).json()["data"]
    assert sorted(o["id"] for o in v2) == sorted([span_id, f"{span_id}-evt"])
    assert len(api.trace(trace_id)["observations"]) == 2


def test_blob_processed_twice_leaves_no_duplicates(api: Api) -> None:
    services, pid = api.srv.services, api.project_id
    trace_id, gen_id = str(uuid.uuid4()), str(uuid.uuid4())
    api.ingest([
        event("trace-create", {"id": trace_id, "name": "replayed", "tags": ["t"]}),
        event("generation-create", {"id": gen_id, "traceId": trace_id, "name": "g", "model": "gpt-4o",
                                     "usageDetails": {"input": 100, "output": 10}}),
        event("score-create", {"traceId": trace_id, "name": "s", "value": 1}),
    ])
    (key,) = wait_processed(services, pid, 1)
    before = api.trace(trace_id, 1)
    api.wait_for("/api/public/v2/scores", lambda r: len(r.json()["data"]) == 1, traceId=trace_id)

    pending_key = blobs.PENDING + key[len(blobs.PROCESSED):]
    services.blobs.rename(key, pending_key)  # as if the move after the insert had been lost
    rows_before = services.processor.flushed_rows
    services.processor.process_key(pending_key)
    services.processor.flush()
    assert services.processor.flushed_rows - rows_before == 3  # the replay really inserted again
    assert processed_blobs(services, pid) == [key] and pending_blobs(services, pid) == []

    after = api.trace(trace_id, 1)
    assert after["observations"] == before["observations"]
    assert after["totalCost"] == pytest.approx(before["totalCost"])
    assert after["tags"] == ["t"]
    assert api.total("/api/public/observations", traceId=trace_id) == 1
    assert api.total("/api/public/v2/scores", traceId=trace_id) == 1
    assert api.total("/api/public/traces", name="replayed") == 1


def test_sweeper_reenqueues_a_blob_whose_job_was_lost(serve) -> None:
    from owlscope.worker.tasks import start_worker, stop_worker

    srv = serve(run_worker=False, sweeper_grace_seconds=1)
    api = Api(srv, create_project_key(srv.services))
    services = srv.services
    trace_id = str(uuid.uuid4())
    api.ingest([event("trace-create", {"id": trace_id, "name": "recovered"})])
    assert len(pending_blobs(services, api.project_id)) == 1  # durable before the answer
    services.queue.flush()  # the job is lost (huey's dequeue is destructive)
    time.sleep(0.15)  # the pending count is cached for 100 ms
    assert services.queue.pending() == 0
    start_worker(services)  # a worker that starts enqueues what an earlier one left pending
    try:
        assert api.trace(trace_id)["name"] == "recovered"
        wait_processed(services, api.project_id, 1)
        stop_worker(services)  # no consumer and no background sweeper: this process sweeps by hand
        swept_id = str(uuid.uuid4())
        api.ingest([event("trace-create", {"id": swept_id, "name": "swept"})])
        services.queue.flush()  # its job is lost...
        services.queue.enqueue("ingest_blob", "events/pending/none/0-x.batch")  # ...under a backlog
        time.sleep(1.2)
        assert services.queue.pending() > 0
        assert services.processor.sweep() == 1  # a non-empty queue does not stop the sweeper
        assert services.processor.sweep() == 0  # enqueued once per grace period
        start_worker(services)
        assert api.trace(swept_id)["name"] == "swept"
        wait_processed(services, api.project_id, 2)
        assert services.processor.sweep(grace_seconds=0) == 0
    finally:
        stop_worker(services)


# ---- refusals -----------------------------------------------------------------------------------
def test_invalid_events_are_400_entries_in_the_207_and_the_valid_ones_are_stored(api: Api) -> None:
    trace_id = str(uuid.uuid4())
    batch = [
        event("trace-create", {"id": trace_id, "name": "ok"}, event_id="good-trace"),
        event("nonsense-create", {"id": "x"}, event_id="bad-type"),
        event("span-create", {"id": "no-trace", "name": "orphan"}, event_id="bad-no-trace-id"),
        event("generation-create", {"traceId": trace_id, "level": "LOUD"}, event_id="bad-level"),
        event("span-create", {"traceId": trace_id, "startTime": "yesterday"}, event_id="bad-time"),
        event("score-create", {"traceId": trace_id, "name": "s", "value": "high", "dataType": "NUMERIC"},
              event_id="bad-score"),
        {"id": "bad-envelope", "type": "trace-create", "body": {"id": "t"}},  # no timestamp
        "not an object",
        event("span-create", {"id": "good-span-id", "traceId": trace_id, "name": "fine"}, event_id="good-span"),
    ]
    r = api.post("/api/public/ingestion", json={"batch": batch})
    assert r.status_code == 207
    body = r.json()
    assert [s["id"] for s in body["successes"]] == ["good-trace", "good-span"]
    assert all(s["status"] == 201 for s in body["successes"])
    errors = {e["id"]: e for e in body["errors"]}
    assert set(errors) == {"bad-type", "bad-no-trace-id", "bad-level", "bad-time", "bad-score", "bad-envelope",
                           "unknown"}
    for e in body["errors"]:
        assert e["status"] == 400 and e["error"] == "InvalidRequestError" and e["message"]
    assert "traceId" in errors["bad-no-trace-id"]["message"]
    assert "level" in errors["bad-level"]["message"]
    trace = api.trace(trace_id, 1)
    assert trace["name"] == "ok" and [o["id"] for o in trace["observations"]] == ["good-span-id"]
    assert api.total("/api/public/v2/scores", traceId=trace_id) == 0

    # a batch with nothing valid stores nothing and still answers 207
    r = api.post("/api/public/ingestion", json={"batch": [batch[1]]})
    assert r.status_code == 207 and r.json()["successes"] == [] and len(r.json()["errors"]) == 1
    assert len(processed_blobs(api.srv.services, api.project_id)) + len(
        pending_blobs(api.srv.services, api.project_id)) == 1


def test_oversize_body_is_413_json_and_stores_nothing(serve) -> None:
    srv = serve(ingest_max_body_mb=1)
    api = Api(srv, create_project_key(srv.services))
    big = "x" * (1024 * 1024 + 10)
    r = api.post("/api/public/ingestion", json={"batch": [event("trace-create", {"name": big})]})
    assert_json_error(r, 413, "PayloadTooLargeError")
    r = api.post("/api/public/scores", json={"traceId": "t", "name": "n", "value": big})
    assert_json_error(r, 413, "PayloadTooLargeError")

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(20):
            yield b"\0" * 100_000

    r = api.post("/api/public/otel/v1/traces", content=chunks(), headers={"content-type": "application/x-protobuf"})
    assert_json_error(r, 413, "PayloadTooLargeError")
    assert pending_blobs(srv.services, api.project_id) == [] == processed_blobs(srv.services, api.project_id)
    # just under the limit is fine
    r = api.post("/api/public/ingestion", json={"batch": [event("trace-create", {"name": "x" * 1000})]})
    assert r.status_code == 207 and len(r.json()["successes"]) == 1


def test_malformed_json_is_400(api: Api) -> None:
    for path in ("/api/public/ingestion", "/api/public/scores"):
        r = api.post(path, content=b'{"batch": [', headers={"content-type": "application/json"})
        assert_json_error(r, 400, "InvalidRequestError")
    for body in ({"events": []}, {"batch": {"id": 1}}, [1, 2], "batch"):
        r = api.post("/api/public/ingestion", json=body)
        assert_json_error(r, 400, "InvalidRequestError")
    for body in ({"name": "no-value", "traceId": "t"}, [{"name": "a", "value": 1, "traceId": "t"}, 5], 7):
        r = api.post("/api/public/scores", json=body)
        assert_json_error(r, 400, "InvalidRequestError")
    assert pending_blobs(api.srv.services, api.project_id) == [] == processed_blobs(api.srv.services, api.project_id)


def test_wrong_content_for_otlp_is_400(api: Api) -> None:
    url = "/api/public/otel/v1/traces"
    good = make_request([make_span("s", trace_id=hex_id(16), span_id=hex_id(8))]).SerializeToString()
    cases = [
        (b"\x0a\xff\xff\xff\xff\x0fgarbage", {"content-type": "application/x-protobuf"}),
        (b'{"resourceSpans": [', {"content-type": "application/json"}),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "1"}]}]}]}',
         {"content-type": "application/json"}),
        (good, {"content-type": "application/x-protobuf", "content-encoding": "gzip"}),  # not gzip
        (good, {"content-type": "text/plain"}),
        (good, {"content-type": "application/x-protobuf", "content-encoding": "br"}),
    ]
    for body, headers in cases:
        r = api.post(url, content=body, headers=headers)
        assert_json_error(r, 400, "InvalidRequestError")
    bad_id = make_request([make_span("s", trace_id="00" * 16, span_id=hex_id(8))]).SerializeToString()
    assert_json_error(api.post(url, content=bad_id, headers={"content-type": "application/x-protobuf"}), 400,
                      "InvalidRequestError")
    assert pending_blobs(api.srv.services, api.project_id) == [] == processed_blobs(api.srv.services, api.project_id)


def test_missing_or_wrong_key_is_401_json(api: Api) -> None:
    pk, sk = api.auth
    wrong = [None, (pk, "sk-lf-wrong"), ("pk-lf-unknown", sk), (pk, "")]
    calls = [
        ("POST", "/api/public/ingestion", {"json": {"batch": [event("trace-create", {"name": "x"})]}}),
        ("POST", "/api/public/otel/v1/traces", {"content": b"", "headers": {"content-type": "application/x-protobuf"}}),
        ("POST", "/api/public/scores", {"json": {"traceId": "t", "name": "n", "value": 1}}),
        ("GET", "/api/public/traces", {}),
    ]
    for auth in wrong:
        for method, path, kw in calls:
            r = httpx.request(method, f"{api.url}{path}", auth=auth, timeout=30, **kw)
            assert_json_error(r, 401, "UnauthorizedError")
    r = httpx.get(f"{api.url}/api/public/traces", headers={"authorization": "Bearer " + sk}, timeout=30)
    assert_json_error(r, 401, "UnauthorizedError")
    assert pending_blobs(api.srv.services, api.project_id) == [] == processed_blobs(api.srv.services, api.project_id)


def test_full_queue_is_429_with_retry_after(serve) -> None:
    srv = serve(run_worker=False, queue_max_pending=1)
    api = Api(srv, create_project_key(srv.services))
    assert api.post("/api/public/ingestion", json={"batch": [event("trace-create", {"name": "a"})]}).status_code == 207
    time.sleep(0.15)  # the pending count is cached for 100 ms
    requests = [
        lambda: api.post("/api/public/ingestion", json={"batch": [event("trace-create", {"name": "b"})]}),
        lambda: api.otlp(make_request([make_span("s", trace_id=hex_id(16), span_id=hex_id(8))])),
        lambda: api.post("/api/public/scores", json={"traceId": "t", "name": "n", "value": 1}),
    ]
    for send in requests:
        r = send()
        assert_json_error(r, 429, "TooManyRequestsError")
        assert int(r.headers["retry-after"]) >= 1
    assert len(pending_blobs(srv.services, api.project_id)) == 1  # refused requests stored nothing


def test_unreachable_blob_store_is_503_with_retry_after(serve) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    srv = serve(s3_bucket="nowhere", s3_endpoint=closed, s3_access_key_id="x", s3_secret_access_key="y",
                s3_force_path_style=True, blob_url=None)
    api = Api(srv, create_project_key(srv.services))
    assert srv.services.blobs.location == "s3://nowhere"
    r = api.post("/api/public/ingestion", json={"batch": [event("trace-create", {"name": "lost"})]})
    assert_json_error(r, 503, "ServiceUnavailableError")
    assert int(r.headers["retry-after"]) >= 1
    r = api.otlp(make_request([make_span("s", trace_id=hex_id(16), span_id=hex_id(8))]))
    assert_json_error(r, 503, "ServiceUnavailableError")
    assert srv.services.queue.pending() == 0  # nothing enqueued for what was not stored


# ---- OTLP and scores ----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["protobuf", "json"])
def test_otlp_protobuf_and_json_gzip_and_plain(api: Api, fmt: str) -> None:
    t0 = int(T0.timestamp()) * NS
    for gz in (False, True):
        trace_id, root_id, gen_id = hex_id(16), hex_id(8), hex_id(8)
        root = make_span("root", trace_id=trace_id, span_id=root_id, start_ns=t0, end_ns=t0 + 2 * NS, attributes={
            "langfuse.trace.name": f"otlp-{fmt}-{gz}", "user.id": "u-otlp", "langfuse.trace.tags": ["k"],
            "langfuse.observation.input": '{"q": "hi"}', "langfuse.trace.metadata.tenant": '"acme"'})
        gen = make_span("llm", trace_id=trace_id, span_id=gen_id, parent_id=root_id, start_ns=t0 + NS // 2,
                        end_ns=t0 + NS, attributes={
                            "langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o",
                            "langfuse.observation.usage_details": '{"input": 7, "output": 3}',
                            "langfuse.observation.output": '"hello"'})
        req = make_request([root, gen], scope_name="langfuse-sdk", scope_version="5.0.4")
        r = api.otlp(req, fmt=fmt, gz=gz)
        assert r.status_code == 200, r.text
        if fmt == "json":
            assert r.json() == {"partialSuccess": {}}
        else:
            assert r.headers["content-type"].startswith("application/x-protobuf")
        trace = api.trace(trace_id, 2)
        assert trace["name"] == f"otlp-{fmt}-{gz}" and trace["userId"] == "u-otlp" and trace["tags"] == ["k"]
        assert trace["metadata"]["tenant"] == "acme"
        assert trace["input"] == {"q": "hi"}  # the root span's
        obs = {o["name"]: o for o in trace["observations"]}
        assert obs["llm"]["type"] == "GENERATION" and obs["llm"]["parentObservationId"] == root_id
        assert obs["llm"]["output"] == "hello" and obs["llm"]["usageDetails"] == {"input": 7, "output": 3, "total": 10}
        assert obs["llm"]["startTime"] == iso(0.5) and obs["llm"]["endTime"] == iso(1)
        assert obs["root"]["parentObservationId"] is None


def test_scores_single_object_is_200_and_array_is_202(api: Api) -> None:
    trace_id = str(uuid.uuid4())
    r = api.post("/api/public/scores", json={"traceId": trace_id, "name": "single", "value": 0.9, "comment": "c"})
    assert r.status_code == 200, r.text
    single_id = r.json()["id"]
    assert set(r.json()) == {"id"}
    given = str(uuid.uuid4())
    r = api.post("/api/public/scores", json=[
        {"id": given, "traceId": trace_id, "name": "flag", "value": 1, "dataType": "BOOLEAN"},
        {"traceId": trace_id, "name": "label", "value": "good", "dataType": "CATEGORICAL"},
    ])
    assert r.status_code == 202, r.text
    assert r.json()["ids"][0] == given and len(r.json()["ids"]) == 2
    scores = api.wait_for("/api/public/v2/scores", lambda r: len(r.json()["data"]) == 3,
                          traceId=trace_id).json()["data"]
    by_name = {s["name"]: s for s in scores}
    assert len(by_name) == 3, scores
    assert by_name["single"]["id"] == single_id and by_name["single"]["value"] == pytest.approx(0.9)
    assert by_name["single"]["comment"] == "c" and by_name["single"]["dataType"] == "NUMERIC"
    assert by_name["flag"]["id"] == given and by_name["flag"]["value"] == 1
    assert by_name["label"]["stringValue"] == "good"
    one = api.get(f"/api/public/v2/scores/{single_id}")
    assert one.status_code == 200 and one.json()["traceId"] == trace_id
    # one invalid score in an array refuses the whole array
    r = api.post("/api/public/scores", json=[{"traceId": trace_id, "name": "ok", "value": 1},
                                             {"traceId": trace_id, "name": "bad", "value": "x", "dataType": "NUMERIC"}])
    assert_json_error(r, 400, "InvalidRequestError")
    time.sleep(0.3)
    assert api.total("/api/public/v2/scores", traceId=trace_id) == 3


def test_trace_attributes_spread_over_spans_merge_whatever_the_order(api: Api) -> None:
    t0 = int(T0.timestamp()) * NS

    def requests(trace_id: str) -> list:
        root_id, c1, c2 = hex_id(8), hex_id(8), hex_id(8)
        env = {"langfuse.environment": "staging"}
        early = make_span("c1", trace_id=trace_id, span_id=c1, parent_id=root_id, start_ns=t0 + NS,
                          end_ns=t0 + 2 * NS, attributes={**env, "user.id": "u-early", "langfuse.trace.name": "early",
                                                          "langfuse.trace.tags": ["a"], "langfuse.release": "r1"})
        middle = make_span("c2", trace_id=trace_id, span_id=c2, parent_id=root_id, start_ns=t0 + 3 * NS,
                           end_ns=t0 + 4 * NS, attributes={**env, "user.id": "u-late", "session.id": "s-merge",
                                                           "langfuse.trace.tags": ["b", "c"],
                                                           "langfuse.trace.public": True})
        root = make_span("root", trace_id=trace_id, span_id=root_id, start_ns=t0, end_ns=t0 + 10 * NS,
                         attributes={**env, "langfuse.trace.name": "final", "langfuse.trace.tags": ["a"],
                                     "langfuse.version": "v9"})
        return [make_request([s], scope_name="langfuse-sdk", scope_version="5.0.4") for s in (early, middle, root)]

    traces = {}
    for order in itertools.permutations(range(3)):
        trace_id = hex_id(16)
        reqs = requests(trace_id)
        for i in order:
            assert api.otlp(reqs[i]).status_code == 200
        traces[order] = trace_id
    for order, trace_id in traces.items():
        t = api.trace(trace_id, 3)
        got = {k: t[k] for k in ("name", "userId", "sessionId", "release", "version", "environment", "public")}
        assert got == {"name": "final", "userId": "u-late", "sessionId": "s-merge", "release": "r1",
                       "version": "v9", "environment": "staging", "public": True}, order
        assert sorted(t["tags"]) == ["a", "b", "c"], order
        assert t["timestamp"] == iso(0) and t["latency"] == pytest.approx(10), order
    assert api.total("/api/public/traces", userId="u-late") == 6
    session = api.get("/api/public/sessions/s-merge").json()
    assert sorted(x["id"] for x in session["traces"]) == sorted(traces.values())


def test_metadata_of_pieces_merges_key_by_key(api: Api) -> None:
    trace_id, span_id = str(uuid.uuid4()), str(uuid.uuid4())
    api.ingest([event("trace-create", {"id": trace_id, "metadata": {"a": 1}}, ts=0),
                event("span-create", {"id": span_id, "traceId": trace_id, "metadata": {"x": 1}}, ts=0)])
    api.ingest([event("trace-create", {"id": trace_id, "metadata": {"b": 2}}, ts=1),
                event("span-update", {"id": span_id, "traceId": trace_id, "metadata": {"y": 2}}, ts=1)])
    api.wait_for(f"/api/public/traces/{trace_id}", lambda r: r.status_code == 200 and r.json()["metadata"] and
                 "b" in r.json()["metadata"])
    trace = api.trace(trace_id, 1)
    assert trace["metadata"] == {"a": 1, "b": 2}
    assert trace["observations"][0]["metadata"] == {"x": 1, "y": 2}


# ---- isolation ----------------------------------------------------------------------------------
@pytest.fixture
def two_projects(serve) -> tuple[Api, Api]:
    srv = serve()
    a = Api(srv, create_project_key(srv.services, org_name="org-a", project_name="proj-a"))
    b = Api(srv, create_project_key(srv.services, org_name="org-b", project_name="proj-b"))
    assert a.project_id != b.project_id
    return a, b


def _ingest_b(b: Api) -> dict[str, Any]:
    ids = {"trace": uuid.uuid4().hex, "obs": str(uuid.uuid4()), "score": str(uuid.uuid4()),
           "session": f"sess-b-{uuid.uuid4().hex[:6]}", "name": f"b-{uuid.uuid4().hex[:6]}"}
    b.ingest([
        event("trace-create", {"id": ids["trace"], "name": ids["name"], "sessionId": ids["session"],
                               "userId": "user-b"}),
        event("span-create", {"id": ids["obs"], "traceId": ids["trace"], "name": "b-span"}),
        event("score-create", {"id": ids["score"], "traceId": ids["trace"], "name": "b-score", "value": 1}),
    ])
    b.trace(ids["trace"], 1)
    b.wait_for(f"/api/public/v2/scores/{ids['score']}")
    return ids


def test_a_key_reads_nothing_of_project_b(two_projects) -> None:
    a, b = two_projects
    ids = _ingest_b(b)
    a.ingest([event("trace-create", {"id": str(uuid.uuid4()), "name": "a-own", "sessionId": "sess-a",
                                     "userId": "user-a"})])
    a.wait_for("/api/public/traces", lambda r: len(r.json()["data"]) == 1)
    for path in (f"/api/public/traces/{ids['trace']}", f"/api/public/observations/{ids['obs']}",
                 f"/api/public/sessions/{ids['session']}", f"/api/public/v2/scores/{ids['score']}"):
        assert_json_error(a.get(path), 404, "LangfuseNotFoundError")
        assert b.get(path).status_code == 200, path
    lists = {
        "/api/public/traces": {}, "/api/public/observations": {}, "/api/public/v2/observations": {},
        "/api/public/sessions": {}, "/api/public/v2/scores": {},
    }
    for path, params in lists.items():
        text = a.get(path, **params).text
        for v in (ids["trace"], ids["obs"], ids["score"], ids["session"], ids["name"]):
            assert v not in text, (path, v)
    assert a.get("/api/public/traces", userId="user-b").json()["data"] == []
    assert a.get("/api/public/observations", traceId=ids["trace"]).json()["data"] == []
    assert a.get("/api/public/v2/scores", traceId=ids["trace"]).json()["data"] == []
    assert [t["name"] for t in a.get("/api/public/traces").json()["data"]] == ["a-own"]


def test_a_key_cannot_write_into_project_b(two_projects) -> None:
    a, b = two_projects
    ids = _ingest_b(b)
    before = b.get(f"/api/public/traces/{ids['trace']}").json()
    foreign_obs = str(uuid.uuid4())
    a.ingest([
        event("trace-create", {"id": ids["trace"], "name": "hijacked", "userId": "user-a"}, ts=60),
        event("span-update", {"id": ids["obs"], "traceId": ids["trace"], "name": "hijacked-span"}, ts=60),
        event("span-create", {"id": foreign_obs, "traceId": ids["trace"], "name": "a-span"}, ts=60),
        event("score-create", {"id": ids["score"], "traceId": ids["trace"], "name": "a-score", "value": 0}, ts=60),
    ])
    a.wait_for("/api/public/v2/scores", lambda r: len(r.json()["data"]) == 1)
    in_a = a.trace(ids["trace"], 2)  # lands in A, as A's own record
    assert in_a["name"] == "hijacked" and in_a["userId"] == "user-a"
    assert sorted(o["id"] for o in in_a["observations"]) == sorted([ids["obs"], foreign_obs])
    wait_processed(a.srv.services, a.project_id, 1)
    after = b.get(f"/api/public/traces/{ids['trace']}").json()
    assert after == before
    assert after["name"] == ids["name"] and [o["name"] for o in after["observations"]] == ["b-span"]
    assert b.get(f"/api/public/v2/scores/{ids['score']}").json()["name"] == "b-score"
    assert b.get(f"/api/public/observations/{foreign_obs}").status_code == 404
    # OTLP with A's key on B's trace id: the same
    span = make_span("otlp-a", trace_id=ids["trace"], span_id=hex_id(8),
                     attributes={"langfuse.trace.name": "otlp-hijack"})
    assert a.otlp(make_request([span], scope_name="langfuse-sdk", scope_version="5.0.4")).status_code == 200
    a.wait_for(f"/api/public/traces/{ids['trace']}", lambda r: len(r.json()["observations"]) == 3)
    wait_processed(a.srv.services, a.project_id, 2)
    assert b.get(f"/api/public/traces/{ids['trace']}").json() == before
