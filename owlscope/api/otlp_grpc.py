"""OTLP over gRPC: `TraceService/Export` on its own port (OTLP_GRPC_PORT, off by default).

Same contract as `POST /api/public/otel/v1/traces`: Basic auth with the project's keys in the
`authorization` metadata, and the request goes through the same accept path (validated, stored as
one blob before the answer, then processed by the worker). The service is the one described by
opentelemetry-proto's `trace_service.proto`, but registered with a pass-through deserializer
instead of the generated `add_TraceServiceServicer_to_server`: the accept path takes the message
bytes (already decompressed by gRPC), validates them by decoding, and stores them as sent, exactly
as over HTTP, without a parse and re-serialization in between.

Domain errors become gRPC status codes. Backpressure (429/503 over HTTP) is RESOURCE_EXHAUSTED /
UNAVAILABLE with a RetryInfo, in the status details (read by the Collector) and in the
`google.rpc.retryinfo-bin` trailer (read by the OpenTelemetry SDK exporters).
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from owlscope.api.deps import authenticate_header
from owlscope.errors import (
    InvalidRequest,
    OwlscopeError,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
)
from owlscope.pipeline.accept import accept_otlp

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.otlp_grpc")

_SERVICE = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"]
_STATUS = {
    Unauthorized: grpc.StatusCode.UNAUTHENTICATED,
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    PayloadTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    TooManyRequests: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ServiceUnavailable: grpc.StatusCode.UNAVAILABLE,
}
# Requests handled at once; more are refused by gRPC itself with RESOURCE_EXHAUSTED.
MAX_CONCURRENT_RPCS = 64


def status_code(exc: OwlscopeError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return grpc.StatusCode.INTERNAL


def _retry_trailers(code: grpc.StatusCode, message: str, seconds: int) -> list[tuple[str, bytes]]:
    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds))
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return [("grpc-status-details-bin", status.SerializeToString()),
            ("google.rpc.retryinfo-bin", info.SerializeToString())]


class TraceReceiver:
    """The `Export` handler, bound to one process's services."""

    def __init__(self, services: Services):
        self.services = services

    def export(self, body: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = dict(context.invocation_metadata())
        try:
            auth = authenticate_header(self.services, str(metadata.get("authorization", "")))
            accept_otlp(
                self.services, project_id=auth.project_id, body=body, content_type="application/x-protobuf",
                content_encoding=None, sdk_version=_text(metadata.get("x-langfuse-sdk-version")),
            )
        except OwlscopeError as exc:
            code = status_code(exc)
            retry_after = exc.headers.get("Retry-After")
            if retry_after and retry_after.isdigit():
                context.set_trailing_metadata(_retry_trailers(code, exc.message, int(retry_after)))
            context.abort(code, exc.message)
        except Exception:
            log.exception("OTLP gRPC export failed")
            context.abort(grpc.StatusCode.INTERNAL, "internal error; see the server log")
        # An empty ExportTraceServiceResponse: all spans accepted (as the HTTP endpoint answers).
        return b""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def start_otlp_grpc(services: Services, *, host: str, port: int) -> grpc.Server:
    """Start the receiver on host:port (in its own threads) and return the running server."""
    receiver = TraceReceiver(services)
    handler = grpc.method_handlers_generic_handler(_SERVICE.full_name, {
        "Export": grpc.unary_unary_rpc_method_handler(receiver.export),  # raw bytes in and out
    })
    limit = services.settings.max_body_bytes
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp-grpc"),
        handlers=(handler,), maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
        options=[("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0)],
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        server.add_insecure_port(address)
    except RuntimeError as exc:
        raise RuntimeError(f"cannot listen for OTLP gRPC on {address} (OTLP_GRPC_PORT): {exc}") from exc
    server.start()
    log.info("OTLP gRPC receiver listening on %s", address)
    return server
