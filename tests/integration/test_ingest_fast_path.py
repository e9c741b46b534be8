"""`owlscope serve` processes the OTLP requests it accepts itself: the decoded request is handed to
its worker (the blob is not read and decoded again), small requests go ahead of bulk ones, and
every stage's time is counted on /metrics. On both stacks."""

from __future__ import annotations

import re
import threading
import time
import uuid

import pytest
from reliability.helpers import pending_keys
from unit.otlp_builders import make_request, make_span

import owlscope.pipeline.process as process
from conftest import LiveServer, create_project_key
from owlscope.ingestion.rows import Rows
from owlscope.telemetry import STAGE_ITEMS
from support.ingest_http import Api


@pytest.fixture
def serve(make_settings, stack):
    started: list[LiveServer] = []

    def start(*, run_worker: bool = True, **overrides) -> LiveServer:
        srv = LiveServer(make_settings(stack, **overrides), run_worker=run_worker).__enter__()
        started.append(srv)
        return srv

    yield start
    for srv in reversed(started):
        queue = srv.services.queue
        srv.__exit__(None, None, None)
        queue.flush()


def _items(stage: str) -> float:
    return STAGE_ITEMS.labels(stage)._value.get()


def _spans(trace_id: str, n: int) -> list:
    root = uuid.uuid4().hex[:16]
    spans = [make_span("root", trace_id=trace_id, span_id=root, attributes={"langfuse.observation.input": '"q"'})]
    spans += [make_span(f"child-{i}", trace_id=trace_id, span_id=uuid.uuid4().hex[:16], parent_id=root,
                        attributes={"langfuse.observation.type": "generation", "gen_ai.request.model": "gpt-4o",
                                    "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 2})
              for i in range(n - 1)]
    return spans


def test_an_accepted_request_is_decoded_once(serve) -> None:
    srv = serve()
    api = Api(srv, create_project_key(srv.services))
    handoff = srv.services.processor.handoff
    hits, worker_decoded, mapped = handoff.hits, _items("decode"), _items("map")
    trace_id = uuid.uuid4().hex
    r = api.otlp(make_request(_spans(trace_id, 120)), gz=True, sdk_version="5.0.4")
    assert r.status_code == 200, r.text
    trace = api.trace(trace_id, 120)
    assert len(trace["observations"]) == 120 and trace["totalCost"] > 0
    assert handoff.hits == hits + 1
    assert _items("decode") == worker_decoded  # the worker did not decode the blob again
    assert _items("map") >= mapped + 120
    metrics = api.get("/metrics").text
    for stage in ("accept_decode", "accept_store", "map", "price", "arrow", "insert"):
        assert re.search(rf'owlscope_ingest_stage_seconds_total\{{clock="cpu",stage="{stage}"\}} [0-9.e+-]+', metrics) \
            or re.search(rf'owlscope_ingest_stage_seconds_total\{{stage="{stage}",clock="cpu"\}} [0-9.e+-]+', metrics), stage


def test_without_the_handoff_the_worker_reads_the_blob(serve) -> None:
    srv = serve(handoff_max_spans=0)
    api = Api(srv, create_project_key(srv.services))
    decoded = _items("decode")
    trace_id = uuid.uuid4().hex
    assert api.otlp(make_request(_spans(trace_id, 3))).status_code == 200
    assert len(api.trace(trace_id, 3)["observations"]) == 3
    assert _items("decode") >= decoded + 3


def test_jobs_go_through_the_shared_queue_when_asked(serve) -> None:
    srv = serve(local_ingest_threads=0)
    api = Api(srv, create_project_key(srv.services))
    assert srv.services.processor.submit("events/pending/x/1-y.otel", 1) is False
    trace_id = uuid.uuid4().hex
    assert api.otlp(make_request(_spans(trace_id, 3))).status_code == 200
    assert len(api.trace(trace_id, 3)["observations"]) == 3


def test_small_requests_go_ahead_of_bulk_ones(serve) -> None:
    srv = serve(run_worker=False)
    processor = srv.services.processor
    processor._local_on = True  # accepting, no thread consuming yet: the order is observable
    try:
        processor.submit("bulk-1", 200)
        processor.submit("small", 3)
        processor.submit("bulk-2", 200)
        order = [processor._local.get_nowait()[2] for _ in range(3)]
    finally:
        processor._local_on = False
    assert order == ["small", "bulk-1", "bulk-2"]


def test_a_small_request_is_not_held_behind_a_running_bulk_insert(serve) -> None:
    """While a bulk insert runs (here: the bulk lane's lock held, as a long insert holds it), the
    rows of a small request go in beside it and are readable, and a backup's pause stops both."""
    srv = serve()
    api = Api(srv, create_project_key(srv.services))
    processor = srv.services.processor
    with processor._flush_lock:
        trace_id = uuid.uuid4().hex
        r = api.otlp(make_request(_spans(trace_id, 3)), gz=True, sdk_version="5.0.4")
        assert r.status_code == 200, r.text
        trace = api.trace(trace_id, 3)  # readable before the bulk insert is over
        assert {o["name"] for o in trace["observations"]} == {"root", "child-0", "child-1"}
    with processor.paused():
        paused_id = uuid.uuid4().hex
        assert api.otlp(make_request(_spans(paused_id, 2)), gz=True, sdk_version="5.0.4").status_code == 200
        with pytest.raises(AssertionError):
            api.wait_for(f"/api/public/traces/{paused_id}", timeout=1.5)
    assert len(api.trace(paused_id, 2)["observations"]) == 2


def test_small_requests_are_inserted_before_the_bulk_rows_buffered_with_them(serve, monkeypatch) -> None:
    srv = serve(run_worker=False)
    processor = srv.services.processor
    calls: list[list[str]] = []
    monkeypatch.setattr(processor, "_insert_group", lambda group: calls.append([k for k, _ in group]) or group)
    monkeypatch.setattr(processor, "_move_processed", lambda keys: None)
    with processor._lock:
        processor._pending = [("bulk-1", Rows()), ("small", Rows()), ("bulk-2", Rows())]
        processor._buffered_at = [0.0, 0.0, 0.0]
        processor._interactive = {"small"}
    processor.flush()
    assert calls == [["small"], ["bulk-1", "bulk-2"]]


def test_a_full_buffer_is_left_to_the_flusher_until_it_holds_two_inserts(serve, monkeypatch) -> None:
    """A job thread that fills the buffer wakes the flusher and goes on (mapping overlaps the
    running insert); once the buffer holds two inserts' worth, the job thread waits for the running
    insert and inserts the buffer itself, so the buffer stays bounded."""
    monkeypatch.setattr(process, "FLUSH_ROWS", 100)
    srv = serve(run_worker=False)
    api = Api(srv, create_project_key(srv.services))
    traces = [uuid.uuid4().hex for _ in range(2)]
    for trace_id in traces:
        assert api.otlp(make_request(_spans(trace_id, 60)), gz=True, sdk_version="5.0.4").status_code == 200
    first, second = sorted(pending_keys(srv.services, api.project_id))
    processor = srv.services.processor
    processor._flusher_running = True  # as while the flush loop runs
    processor._wake.clear()
    try:
        with processor._flush_lock:  # an insert is running
            job = threading.Thread(target=processor.process_key, args=(first,))
            job.start()
            job.join(10)
            assert not job.is_alive()  # 120 rows, a full buffer under the cap: the job went on
            assert processor._wake.is_set() and processor._buffered_rows == 120
            job = threading.Thread(target=processor.process_key, args=(second,))
            job.start()
            job.join(1.0)
            assert job.is_alive()  # 240 rows, at the cap: waits for the running insert
        job.join(30)
        assert not job.is_alive() and processor._buffered_rows == 0  # then inserted the buffer itself
    finally:
        processor._flusher_running = False
    for trace_id in traces:
        assert len(api.trace(trace_id, 60)["observations"]) == 60


def _count_inserts(processor, monkeypatch) -> list[list[str]]:
    calls: list[list[str]] = []
    original = processor._insert_group

    def counted(group):
        calls.append([k for k, _ in group])
        return original(group)

    monkeypatch.setattr(processor, "_insert_group", counted)
    return calls


def test_bulk_requests_arriving_one_by_one_wait_for_the_interval_and_share_one_insert(serve, monkeypatch) -> None:
    """An insert costs the engine a part in every table it writes and the merges after it, whatever
    its size: bulk requests arriving one at a time (the worker idle between them) are buffered until
    the flush interval and go in as one insert, not one insert each."""
    srv = serve(flush_interval_ms=2000)
    api = Api(srv, create_project_key(srv.services))
    calls = _count_inserts(srv.services.processor, monkeypatch)
    traces = [uuid.uuid4().hex for _ in range(3)]
    sent = time.monotonic()
    for trace_id in traces:
        assert api.otlp(make_request(_spans(trace_id, 60)), gz=True, sdk_version="5.0.4").status_code == 200
        time.sleep(0.2)  # the worker maps the request and goes idle before the next one
    assert api.get(f"/api/public/traces/{traces[0]}").status_code == 404  # still buffered
    for trace_id in traces:
        assert len(api.trace(trace_id, 60)["observations"]) == 60
    assert time.monotonic() - sent >= 1.5
    assert len(calls) == 1 and len(calls[0]) == 3, calls


def test_an_idle_worker_inserts_a_large_buffer_and_a_small_request_at_once(serve, monkeypatch) -> None:
    """The tail of a burst (an idle worker holding IDLE_FLUSH_ROWS rows or more) and the rows of a
    small request do not wait for the flush interval."""
    monkeypatch.setattr(process, "IDLE_FLUSH_ROWS", 100)
    srv = serve(flush_interval_ms=30_000)
    api = Api(srv, create_project_key(srv.services))
    large = uuid.uuid4().hex
    assert api.otlp(make_request(_spans(large, 60)), gz=True, sdk_version="5.0.4").status_code == 200
    assert len(api.wait_for(f"/api/public/traces/{large}", timeout=10).json()["observations"]) == 60
    for small in (uuid.uuid4().hex, uuid.uuid4().hex):  # one after the other, each at once (no small gap)
        assert api.otlp(make_request(_spans(small, 3)), gz=True, sdk_version="5.0.4").status_code == 200
        assert len(api.wait_for(f"/api/public/traces/{small}", timeout=10).json()["observations"]) == 3
    monkeypatch.setattr(process, "IDLE_FLUSH_ROWS", 10_000)  # now 120 rows are a few: they wait
    waiting = uuid.uuid4().hex
    assert api.otlp(make_request(_spans(waiting, 60)), gz=True, sdk_version="5.0.4").status_code == 200
    with pytest.raises(AssertionError):
        api.wait_for(f"/api/public/traces/{waiting}", timeout=2)


def test_with_a_small_flush_gap_small_requests_coming_faster_share_an_insert(serve, monkeypatch) -> None:
    """INGEST_SMALL_FLUSH_GAP_MS: the first small request after a quiet spell goes in at once; the
    ones coming faster than the gap (many clients each exporting a few spans) wait for it and share
    one insert."""
    srv = serve(flush_interval_ms=30_000, small_flush_gap_ms=2_000)
    api = Api(srv, create_project_key(srv.services))
    calls = _count_inserts(srv.services.processor, monkeypatch)
    first = uuid.uuid4().hex
    assert api.otlp(make_request(_spans(first, 3)), gz=True, sdk_version="5.0.4").status_code == 200
    assert len(api.wait_for(f"/api/public/traces/{first}", timeout=1.5).json()["observations"]) == 3
    others = [uuid.uuid4().hex for _ in range(3)]
    for trace_id in others:
        assert api.otlp(make_request(_spans(trace_id, 3)), gz=True, sdk_version="5.0.4").status_code == 200
    assert api.get(f"/api/public/traces/{others[0]}").status_code == 404  # waiting for the gap
    for trace_id in others:
        assert len(api.trace(trace_id, 3)["observations"]) == 3
    assert [len(c) for c in calls] == [1, 3], calls


def test_inserts_are_bounded_by_rows_and_by_characters_of_text() -> None:
    def blob(name: str, rows: int, chars: int) -> tuple[str, Rows]:
        r = Rows(text_chars=chars)
        r.scores.extend([None] * rows)  # only counted here
        return name, r

    pending = [blob("a", 10, 500), blob("b", 10, 600), blob("c", 50, 10), blob("d", 45, 10), blob("e", 1, 2000)]
    groups = [[name for name, _ in g] for g in process._groups(pending, max_rows=100, max_chars=1000)]
    assert groups == [["a"], ["b", "c"], ["d"], ["e"]]  # b+c+d: 105 rows; a+b: 1,100 characters; e alone
