"""The MCP server at /api/public/mcp: streamable HTTP (stateless, JSON responses), Basic auth with
a project's API keys, built on the official `mcp` SDK. This module is its HTTP edge; the tools are
in owlscope.api.mcp_tools.

A request without valid keys is answered 401 before it reaches the MCP session manager; the
authenticated project travels in the ASGI scope to the tool's context.

Wiring: `router` (in api/routes.py) routes the path to `McpEndpoint`; the app's lifespan enters
`mcp_sessions(app)`, which keeps one session manager per app (on `app.state`). The `mcp` SDK and the
tools are loaded at the first MCP request, not with the server (~15 MiB that a server nobody asks
over MCP would hold for nothing): the session manager then runs in a task of the lifespan until
the app stops.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from owlscope.api.deps import authenticate_header
from owlscope.errors import OwlscopeError
from owlscope.services import Services

PATH = "/api/public/mcp"
log = logging.getLogger(__name__)


class McpSessions:
    """The MCP session manager of one app, started at the first request that needs it."""

    def __init__(self) -> None:
        self._wanted = anyio.Event()
        self._ready = anyio.Event()
        self.manager: Any = None
        self.auth_key = ""

    async def run(self) -> None:
        """Wait for the first MCP request, then run the session manager until cancelled."""
        await self._wanted.wait()
        try:
            tools = await anyio.to_thread.run_sync(importlib.import_module, "owlscope.api.mcp_tools")
            manager = tools.session_manager()
        except Exception:
            log.exception("the MCP server could not start")
            self._ready.set()
            return
        async with manager.run():
            self.manager, self.auth_key = manager, tools.AUTH
            self._ready.set()
            await anyio.sleep_forever()

    async def get(self) -> Any:
        self._wanted.set()
        await self._ready.wait()
        return self.manager


class McpEndpoint:
    """ASGI endpoint: authenticate, then hand the request to the app's MCP session manager."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        services: Services = request.app.state.services
        try:
            auth = await run_in_threadpool(authenticate_header, services, request.headers.get("authorization", ""))
        except OwlscopeError as exc:
            await JSONResponse({"message": exc.message, "error": exc.error}, status_code=exc.status,
                               headers={"WWW-Authenticate": 'Basic realm="owlscope"'})(scope, receive, send)
            return
        sessions: McpSessions = request.app.state.mcp_sessions
        manager = await sessions.get()
        if manager is None:
            await JSONResponse({"message": "The MCP server could not start; see the server log",
                                "error": "ServiceUnavailable"}, status_code=503)(scope, receive, send)
            return
        scope[sessions.auth_key] = auth
        await manager.handle_request(scope, receive, send)


@asynccontextmanager
async def mcp_sessions(app: FastAPI) -> AsyncIterator[None]:
    """Keep the app's MCP session manager (started at the first MCP request) for the life of the app."""
    sessions = McpSessions()
    app.state.mcp_sessions = sessions
    async with anyio.create_task_group() as tg:
        tg.start_soon(sessions.run)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()


router = APIRouter()
router.add_route(PATH, McpEndpoint(), methods=["GET", "POST", "DELETE"], include_in_schema=False)
