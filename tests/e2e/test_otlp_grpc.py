"""OTLP over gRPC (OTLP_GRPC_PORT) against a live server: the OpenTelemetry SDK's gRPC exporter
sends spans that read back through the public API as over HTTP, on both stacks; each refusal has its
gRPC status code and stores nothing."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import uuid

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from unit.otlp_builders import make_request, make_span

from conftest import LiveServer, create_project_key, free_port
from owlscope.pipeline import blobs
from support.ingest_http import Api

NS = 1_000_000_000


def basic(pk: str, sk: str) -> str:
    return "Basic " + base64.b64encode(f"{pk}:{sk}".encode()).decode()


@pytest.fixture
def serve(make_settings):
    """serve(stack, **settings) -> a running LiveServer with the gRPC receiver on a free port."""
    started: list[LiveServer] = []

    def start(stack: str = "embedded", *, run_worker: bool = True, **overrides) -> LiveServer:
        srv = LiveServer(make_settings(stack, otlp_grpc_port=free_port(), **overrides), run_worker=run_worker)
        started.append(srv.__enter__())
        return srv

    yield start
    for srv in reversed(started):
        queue = srv.services.queue
        srv.__exit__(None, None, None)
        queue.flush()


def grpc_target(srv: LiveServer) -> str:
    return f"127.0.0.1:{srv.settings.otlp_grpc_port}"


def export_raw(srv: LiveServer, body: bytes, metadata: tuple = ()) -> grpc.RpcError | None:
    """One Export call with the generated stub's method path and `body` sent as is; the error, if any."""
    with grpc.insecure_channel(grpc_target(srv)) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        try:
            answer = export(body, metadata=metadata, timeout=30)
        except grpc.RpcError as exc:
            return exc
    assert trace_service_pb2.ExportTraceServiceResponse.FromString(answer) == \
        trace_service_pb2.ExportTraceServiceResponse()
    return None


def stored(srv: LiveServer, project_id: str) -> list[str]:
    """Every blob kept for the project, pending or processed."""
    return [b.key for prefix in (blobs.PENDING, blobs.PROCESSED)
            for b in srv.services.blobs.list(f"{prefix}{project_id}/")]


@pytest.mark.parametrize("stack", ["embedded", "scaleout"])
def test_otel_grpc_exporter_spans_read_back_through_the_api(serve, stack: str) -> None:
    srv = serve(stack)
    api = Api(srv, create_project_key(srv.services))
    exporter = OTLPSpanExporter(endpoint=f"http://{grpc_target(srv)}", insecure=True,
                                headers=(("authorization", basic(*api.auth)),),
                                compression=grpc.Compression.Gzip)
    provider = TracerProvider(resource=Resource.create({"service.name": "grpc-app",
                                                        "deployment.environment.name": "staging"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("grpc-test-app", "1.2.3")
    with tracer.start_as_current_span("handle-request", attributes={
        "langfuse.trace.name": "grpc-trace", "user.id": "u-grpc", "session.id": "s-grpc",
        "langfuse.observation.input": '{"question": "why gRPC?"}',
    }) as root:
        with tracer.start_as_current_span("chat gpt-4o", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.request.temperature": 0.2, "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 500,
            "gen_ai.input.messages": '[{"role": "user", "content": "why gRPC?"}]',
            "gen_ai.output.messages": '[{"role": "assistant", "content": "binary and fast"}]',
        }) as gen:
            pass
        with tracer.start_as_current_span("lookup", attributes={"gen_ai.tool.name": "search"}):
            pass
    assert provider.force_flush(30_000)
    trace_id = format(root.get_span_context().trace_id, "032x")
    root_id = format(root.get_span_context().span_id, "016x")
    gen_id = format(gen.get_span_context().span_id, "016x")

    trace = api.trace(trace_id, 3)
    assert trace["name"] == "grpc-trace" and trace["userId"] == "u-grpc" and trace["sessionId"] == "s-grpc"
    assert trace["environment"] == "staging" and trace["input"] == {"question": "why gRPC?"}
    obs = {o["name"]: o for o in trace["observations"]}
    assert obs["handle-request"]["id"] == root_id and obs["handle-request"]["parentObservationId"] is None
    llm = obs["chat gpt-4o"]
    assert llm["id"] == gen_id and llm["parentObservationId"] == root_id and llm["type"] == "GENERATION"
    assert llm["model"] == "gpt-4o"
    assert llm["usageDetails"] == {"input": 1000, "output": 500, "total": 1500}
    # gpt-4o at $2.50 / $10 per million tokens (the bundled model prices)
    assert llm["costDetails"]["input"] == pytest.approx(0.0025)
    assert llm["costDetails"]["output"] == pytest.approx(0.005)
    assert llm["calculatedTotalCost"] == pytest.approx(0.0075)
    assert llm["input"] == [{"role": "user", "content": "why gRPC?"}]
    assert llm["output"] == [{"role": "assistant", "content": "binary and fast"}]
    # a tool span is named after its tool
    assert obs["search"]["type"] == "TOOL" and obs["search"]["parentObservationId"] == root_id
    provider.shutdown()


def test_wrong_or_missing_auth_is_unauthenticated_and_stores_nothing(serve) -> None:
    srv = serve()
    api = Api(srv, create_project_key(srv.services))
    pk, sk = api.auth
    body = make_request([make_span("s", trace_id=uuid.uuid4().hex, span_id=uuid.uuid4().hex[:16])]
                        ).SerializeToString()
    for metadata in [(), (("authorization", basic(pk, "sk-lf-wrong")),), (("authorization", basic("pk-lf-x", sk)),),
                     (("authorization", f"Bearer {sk}"),), (("authorization", "Basic !!"),)]:
        err = export_raw(srv, body, metadata)
        assert err is not None and err.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
        assert err.details()
    # the SDK exporter reports the failure without retrying it
    exporter = OTLPSpanExporter(endpoint=f"http://{grpc_target(srv)}", insecure=True,
                                headers=(("authorization", basic(pk, "sk-lf-wrong")),))
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    span = tracer.start_span("refused")
    span.end()
    started = time.monotonic()
    assert exporter.export([span]) == SpanExportResult.FAILURE
    assert time.monotonic() - started < 5
    exporter.shutdown()
    assert stored(srv, api.project_id) == []
    # the right key on the same server is accepted
    assert export_raw(srv, body, (("authorization", basic(pk, sk)),)) is None
    assert len(stored(srv, api.project_id)) == 1


def test_malformed_request_is_invalid_argument(serve) -> None:
    srv = serve()
    api = Api(srv, create_project_key(srv.services))
    auth = (("authorization", basic(*api.auth)),)
    bad_id = make_request([make_span("s", trace_id="00" * 16, span_id=uuid.uuid4().hex[:16])])
    for body in (b"\x0a\xff\xff\xff\xff\x0fgarbage", bad_id.SerializeToString()):
        err = export_raw(srv, body, auth)
        assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stored(srv, api.project_id) == []
    # an export without spans is answered and stores nothing, as over HTTP
    assert export_raw(srv, trace_service_pb2.ExportTraceServiceRequest().SerializeToString(), auth) is None
    assert stored(srv, api.project_id) == []


def test_full_queue_is_resource_exhausted_with_retry_info(serve) -> None:
    from google.rpc import error_details_pb2, status_pb2

    srv = serve(run_worker=False, queue_max_pending=1)
    api = Api(srv, create_project_key(srv.services))
    auth = (("authorization", basic(*api.auth)),)

    def body() -> bytes:
        return make_request([make_span("s", trace_id=uuid.uuid4().hex, span_id=uuid.uuid4().hex[:16])]
                            ).SerializeToString()

    assert export_raw(srv, body(), auth) is None
    time.sleep(0.15)  # the pending count is cached for 100 ms
    err = export_raw(srv, body(), auth)
    assert err is not None and err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(err.trailing_metadata())
    retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert retry.retry_delay.seconds >= 1
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0] and status.details[0].Is(retry.DESCRIPTOR)
    assert len(stored(srv, api.project_id)) == 1  # the refused request stored nothing


def test_oversize_request_is_resource_exhausted(serve) -> None:
    srv = serve(ingest_max_body_mb=1)
    api = Api(srv, create_project_key(srv.services))
    big = make_span("big", trace_id=uuid.uuid4().hex, span_id=uuid.uuid4().hex[:16],
                    attributes={"langfuse.observation.input": "x" * (1024 * 1024 + 10)})
    err = export_raw(srv, make_request([big]).SerializeToString(), (("authorization", basic(*api.auth)),))
    assert err is not None and err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stored(srv, api.project_id) == []


def test_unreachable_blob_store_is_unavailable(serve) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    srv = serve(s3_bucket="nowhere", s3_endpoint=closed, s3_access_key_id="x", s3_secret_access_key="y",
                s3_force_path_style=True, blob_url=None)
    api = Api(srv, create_project_key(srv.services))
    body = make_request([make_span("s", trace_id=uuid.uuid4().hex, span_id=uuid.uuid4().hex[:16])]
                        ).SerializeToString()
    err = export_raw(srv, body, (("authorization", basic(*api.auth)),))
    assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE
    assert "google.rpc.retryinfo-bin" in dict(err.trailing_metadata())
    assert srv.services.queue.pending() == 0


def test_serve_with_the_flag_receives_over_grpc_and_stops_cleanly(tmp_path) -> None:
    port, grpc_port = free_port(), free_port()
    pk, sk = "pk-lf-grpc-cli", "sk-lf-grpc-cli"
    env = {**os.environ, "OWLSCOPE_DATA_DIR": str(tmp_path / "data"), "LANGFUSE_INIT_ORG_ID": "org-grpc",
           "LANGFUSE_INIT_PROJECT_ID": "proj-grpc", "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": pk,
           "LANGFUSE_INIT_PROJECT_SECRET_KEY": sk}
    proc = subprocess.Popen(
        [sys.executable, "-m", "owlscope.cli.main", "serve", "--port", str(port), "--otlp-grpc-port", str(grpc_port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180  # starting is fast, but not on a saturated machine
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/api/public/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not become healthy"
            time.sleep(0.1)
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
            endpoint=f"127.0.0.1:{grpc_port}", insecure=True, headers=(("authorization", basic(pk, sk)),))))
        with provider.get_tracer("cli").start_as_current_span("over-grpc") as span:
            pass
        assert provider.force_flush(30_000)
        provider.shutdown()
        trace_id = format(span.get_span_context().trace_id, "032x")
        deadline = time.monotonic() + 60
        while (r := httpx.get(f"{url}/api/public/traces/{trace_id}", auth=(pk, sk))).status_code != 200:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.1)
        assert r.json()["name"] == "over-grpc"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"OTLP gRPC on 127.0.0.1:{grpc_port}" in (proc.stdout.read() if proc.stdout else "")


def test_receiver_is_off_by_default_and_set_by_flag_or_setting(monkeypatch, tmp_path) -> None:
    from owlscope.cli.main import _settings, build_parser

    monkeypatch.delenv("OTLP_GRPC_PORT", raising=False)
    for command in ("serve", "web"):
        args = build_parser().parse_args([command, "--data-dir", str(tmp_path)])
        assert _settings(args).otlp_grpc_port is None
        args = build_parser().parse_args([command, "--data-dir", str(tmp_path), "--otlp-grpc-port", "4317"])
        assert _settings(args).otlp_grpc_port == 4317
    monkeypatch.setenv("OTLP_GRPC_PORT", "14317")
    assert _settings(build_parser().parse_args(["serve", "--data-dir", str(tmp_path)])).otlp_grpc_port == 14317
