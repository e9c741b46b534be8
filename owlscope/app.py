"""The application factory: `create_app(settings)` builds a FastAPI app; services are built in the
lifespan, so importing this module touches no engine, file or setting."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from owlscope import __version__
from owlscope.config import Settings, load_settings
from owlscope.errors import OwlscopeError
from owlscope.services import Services, build_services

log = logging.getLogger("owlscope")

_HTTP_ERRORS = {
    400: "InvalidRequestError", 401: "UnauthorizedError", 403: "AccessDeniedError",
    404: "LangfuseNotFoundError", 405: "MethodNotAllowedError", 409: "ConflictError",
    413: "PayloadTooLargeError", 415: "UnsupportedMediaTypeError", 422: "InvalidRequestError",
    429: "TooManyRequestsError", 503: "ServiceUnavailableError",
}


def _error(status: int, message: str, error: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": message, "error": error}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves the API as JSON {"message", "error"}; the UI renders its own pages."""

    @app.exception_handler(OwlscopeError)
    async def _domain(request: Request, exc: OwlscopeError) -> JSONResponse:
        handler = getattr(request.app.state, "ui_error_handler", None)
        if handler is not None and not request.url.path.startswith("/api/"):
            return handler(request, exc)
        return _error(exc.status, exc.message, exc.error, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return _error(400, "; ".join(parts) or "invalid request", "InvalidRequestError")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        handler = getattr(request.app.state, "ui_http_handler", None)
        if handler is not None and not request.url.path.startswith("/api/"):
            return handler(request, exc)
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
        from owlscope.worker.tasks import start_worker, stop_worker

        own = services is None
        svc = services or build_services(settings or load_settings())
        app.state.services = svc
        worker = svc.settings.run_worker if run_worker is None else run_worker
        if worker:
            start_worker(svc)
        try:
            yield
        finally:
            if worker:
                stop_worker(svc)
            if own:
                svc.close()

    app = FastAPI(title="Owlscope", version=__version__, lifespan=lifespan, docs_url="/api/docs",
                  openapi_url="/api/openapi.json", redoc_url=None)
    install_error_handlers(app)
    from owlscope.ops.metrics import MetricsMiddleware

    app.add_middleware(MetricsMiddleware)
    from owlscope.api import routers

    for router in routers():
        app.include_router(router)
    try:
        from owlscope.web import install_ui
    except ImportError:
        pass
    else:
        install_ui(app)
    return app
