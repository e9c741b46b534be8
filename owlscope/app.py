"""The application factory: `create_app(settings)` builds a FastAPI app; services are built in the
lifespan, so importing this module touches no engine, file or setting."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from owlscope import __version__
from owlscope.api.mcp import mcp_sessions
from owlscope.api.routes import ROUTERS as API_ROUTERS
from owlscope.config import Settings, load_settings
from owlscope.data_retention import start_retention_loop
from owlscope.errors import OwlscopeError
from owlscope.services import Services, build_services
from owlscope.telemetry import MetricsMiddleware
from owlscope.web import install_ui
from owlscope.web.errors import ui_error_handler, ui_http_handler
from owlscope.worker.tasks import start_worker, stop_worker

log = logging.getLogger("owlscope")

_HTTP_ERRORS = {
    400: "InvalidRequestError", 401: "UnauthorizedError", 403: "AccessDeniedError",
    404: "LangfuseNotFoundError", 405: "MethodNotAllowedError", 409: "ConflictError",
    413: "PayloadTooLargeError", 415: "UnsupportedMediaTypeError", 422: "InvalidRequestError",
    429: "TooManyRequestsError", 503: "ServiceUnavailableError",
}


def _error(status: int, message: str, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message, "error": error}, status_code=status, headers=headers)


def install_error_handlers(
    app: FastAPI, *,
    error_page: Callable[[Request, OwlscopeError], Response] | None = None,
    http_error_page: Callable[[Request, StarletteHTTPException], Response] | None = None,
) -> None:
    """Every error leaves the API as JSON {"message", "error"}; on other paths the pages given
    (the UI's) render it."""

    @app.exception_handler(OwlscopeError)
    async def _domain(request: Request, exc: OwlscopeError) -> Response:
        if error_page is not None and not request.url.path.startswith("/api/"):
            return error_page(request, exc)
        return _error(exc.status, exc.message, exc.error, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return _error(400, "; ".join(parts) or "invalid request", "InvalidRequestError")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if http_error_page is not None and not request.url.path.startswith("/api/"):
            return http_error_page(request, exc)
        return _error(exc.status_code, str(exc.detail), _HTTP_ERRORS.get(exc.status_code, "Error"),
                      getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal error; see the server log", "InternalServerError")


def create_app(
    settings: Settings | None = None, *, services: Services | None = None, run_worker: bool | None = None,
) -> FastAPI:
    """Build the app. With `run_worker` (default: the setting) the queue consumer, the batch
    flusher and the sweeper run in this process: that is `owlscope serve`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        svc = services or build_services(settings or load_settings())
        app.state.services = svc
        worker = svc.settings.run_worker if run_worker is None else run_worker
        retention = None
        if worker:
            start_worker(svc)
            retention = start_retention_loop(svc)
        grpc_server = None
        try:
            if svc.settings.otlp_grpc_port:
                from owlscope.api.otlp_grpc import start_otlp_grpc

                grpc_server = start_otlp_grpc(svc, host=svc.settings.host, port=svc.settings.otlp_grpc_port)
            async with mcp_sessions(app):
                yield
        finally:
            if grpc_server is not None:
                grpc_server.stop(grace=5).wait()
            if retention is not None:
                retention.set()
            if worker:
                stop_worker(svc)
            if own:
                svc.close()

    app = FastAPI(title="Owlscope", version=__version__, lifespan=lifespan, docs_url="/api/docs",
                  openapi_url="/api/openapi.json", redoc_url=None)
    install_error_handlers(app, error_page=ui_error_handler, http_error_page=ui_http_handler)
    app.add_middleware(MetricsMiddleware)
    for router in API_ROUTERS:
        app.include_router(router)
    install_ui(app)
    return app
