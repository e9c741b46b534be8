"""GET /metrics against a live server on both stacks: ingestion counters, the queue backlog seen
while no worker runs and drained once one does, flush latency and rows inserted, HTTP latency by
route template, and evaluator executions by status."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
from integration.test_evals_execution import faithfulness, live
from prometheus_client.parser import text_string_to_metric_families

from conftest import LiveServer, create_project_key, free_port
from owlscope.worker.tasks import start_worker


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{url}/metrics", timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def trace_events(n: int) -> list[dict]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return [{"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": now,
             "body": {"id": f"m-{uuid.uuid4().hex}", "name": "metrics"}} for _ in range(n)]


def test_metrics_follow_ingestion_from_backlog_to_rows(make_settings, stack) -> None:
    with LiveServer(make_settings(stack), run_worker=False) as srv:
        key = create_project_key(srv.services)
        auth = (key["public_key"], key["secret_key"])
        before = scrape(srv.url)

        r = httpx.post(f"{srv.url}/api/public/ingestion", json={"batch": trace_events(3)}, auth=auth, timeout=30)
        assert r.status_code == 207
        assert httpx.post(f"{srv.url}/api/public/ingestion", json={"batch": []},
                          auth=("pk-lf-x", "sk-lf-y"), timeout=30).status_code == 401
        time.sleep(1.1)
        backlog = scrape(srv.url)
        assert value(backlog, "owlscope_queue_depth", backend=srv.services.queue.backend) == 1
        assert value(backlog, "owlscope_ingest_pending_blobs") == 1
        assert value(backlog, "owlscope_queue_oldest_job_age_seconds") >= 1.0
        for status, delta in (("207", 1), ("401", 1)):
            assert value(backlog, "owlscope_ingest_requests_total", route="/api/public/ingestion", status=status) \
                - value(before, "owlscope_ingest_requests_total", route="/api/public/ingestion", status=status) == delta
        assert value(backlog, "owlscope_ingest_events_accepted_total", kind="batch") \
            - value(before, "owlscope_ingest_events_accepted_total", kind="batch") == 3

        start_worker(srv.services)
        trace_id = r.json()["successes"][0]["id"]
        assert trace_id
        deadline = time.monotonic() + 30
        # the blob is done when its rows are buffered; the rows reach the engine at the next flush
        while value(after := scrape(srv.url), "owlscope_ingest_pending_blobs") != 0 or \
                value(after, "owlscope_olap_rows_inserted_total", table="trace_events") \
                - value(before, "owlscope_olap_rows_inserted_total", table="trace_events") < 3:
            assert time.monotonic() < deadline, "backlog never drained"
            time.sleep(0.1)
        assert value(after, "owlscope_queue_depth", backend=srv.services.queue.backend) == 0
        assert value(after, "owlscope_queue_oldest_job_age_seconds") == 0
        assert value(after, "owlscope_olap_rows_inserted_total", table="trace_events") \
            - value(before, "owlscope_olap_rows_inserted_total", table="trace_events") == 3
        assert value(after, "owlscope_ingest_flush_duration_seconds_count") \
            > value(before, "owlscope_ingest_flush_duration_seconds_count")

        # latency is labelled by route template, never by the raw path with its ids
        some_id = f"t-{uuid.uuid4().hex}"
        assert httpx.get(f"{srv.url}/api/public/traces/{some_id}", auth=auth, timeout=30).status_code == 404
        latest = scrape(srv.url)
        assert value(latest, "owlscope_http_request_duration_seconds_count",
                     method="GET", route="/api/public/traces/{trace_id}", status="404") >= 1
        assert not any(some_id in str(labels) for (_, labels) in latest)
        assert value(latest, "owlscope_http_request_duration_seconds_count",
                     method="POST", route="/api/public/ingestion", status="207") >= 1


def test_evaluator_executions_are_counted_by_status(make_settings) -> None:
    with live(make_settings) as env:
        before = scrape(env.srv.url)
        env.connect()
        ev = faithfulness(env)
        env.traces([{"id": f"t-{i}", "name": "qa", "input": "q", "output": "a",
                     "metadata": {"reference_context": "a"}} for i in range(2)])
        env.settled(ev.id, 2)
        after = scrape(env.srv.url)
        assert value(after, "owlscope_evaluator_executions_total", status="completed") \
            - value(before, "owlscope_evaluator_executions_total", status="completed") == 2


def test_worker_metrics_port_and_the_container_health_check(make_settings, monkeypatch) -> None:
    from owlscope.cli.main import main
    from owlscope.ops.metrics import serve_worker_metrics

    with LiveServer(make_settings(), run_worker=False) as srv:
        monkeypatch.setenv("PORT", str(srv.port))
        assert main(["healthcheck"]) == 0  # the web process answers
        port = free_port()
        server = serve_worker_metrics(srv.services, port)
        try:
            samples = scrape(f"http://127.0.0.1:{port}")
            assert ("owlscope_queue_depth", (("backend", "sqlite"),)) in samples
            assert any(name == "owlscope_olap_rows_inserted_total" or name.startswith("python_")
                       for name, _ in samples)
            # a worker has no web port: the check falls back to its metrics port
            monkeypatch.setenv("PORT", str(free_port()))
            monkeypatch.setenv("METRICS_PORT", str(port))
            assert main(["healthcheck"]) == 0
        finally:
            server.shutdown()
        assert main(["healthcheck"]) == 1  # nothing answers any more
