"""Route classes for routers whose errors have their own envelope (the unstable evaluation API,
SCIM): domain and validation errors raised in a route or its dependencies are rendered by the
router's two functions instead of the app-wide `{message, error}` handlers."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

from owlscope.errors import OwlscopeError


def error_route_class(
    on_error: Callable[[OwlscopeError], Response], on_invalid: Callable[[RequestValidationError], Response],
) -> type[APIRoute]:
    class ErrorRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    return await handler(request)
                except OwlscopeError as exc:
                    return on_error(exc)
                except RequestValidationError as exc:
                    return on_invalid(exc)

            return route

    return ErrorRoute
