"""The tools of the MCP server at /api/public/mcp (owlscope.api.mcp is its HTTP edge), built on the
official `mcp` SDK.

Tools read traces, observations, sessions and scores, manage prompt versions and labels, list
datasets and add items. Each calls the same domain and read-model functions as the REST routes, for
the key's project only. A request without valid keys is answered 401 before it reaches the MCP
session manager; the authenticated project travels in the ASGI scope to the tool's context.

This module is imported at the first MCP request (owlscope.api.mcp), not with the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request

from owlscope import tracing
from owlscope.api.deps import ProjectAuth
from owlscope.datasets.items import upsert_item
from owlscope.datasets.store import list_datasets
from owlscope.errors import NotFound, OwlscopeError
from owlscope.pipeline.masking import masker_for
from owlscope.prompts import parse_create
from owlscope.services import Services
from owlscope.wire import PageRequest

AUTH = "owlscope.auth"  # where the edge (owlscope.api.mcp) puts the authenticated project in the scope
MAX_LIMIT = 100

server = FastMCP(
    "Owlscope",
    instructions="Read traces, observations, sessions and scores of the project of the API key; manage its "
                 "prompt versions and labels; list its datasets and add items.",
    stateless_http=True, json_response=True, log_level="WARNING",
)


def _scope(ctx: Context) -> tuple[Services, ProjectAuth]:
    request: Request = ctx.request_context.request  # the HTTP request this call came in
    return request.app.state.services, request.scope[AUTH]


async def _call(ctx: Context, fn: Callable[[Services, str], Any]) -> Any:
    """Run a (blocking) domain call for the key's project in a worker thread; domain errors become
    tool errors with their message."""
    services, auth = _scope(ctx)
    try:
        return await anyio.to_thread.run_sync(fn, services, auth.project_id)
    except OwlscopeError as exc:
        raise ValueError(exc.message) from exc


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


def _found(value: Any, what: str) -> Any:
    if value is None:
        raise NotFound(f"{what} not found")
    return value


# ---- tracing -------------------------------------------------------------------------------------------
@server.tool()
async def search_traces(ctx: Context, name: str | None = None, user_id: str | None = None,
                        session_id: str | None = None, tags: list[str] | None = None,
                        from_timestamp: str | None = None, to_timestamp: str | None = None,
                        page: int = 1, limit: int = 20) -> dict[str, Any]:
    """Traces of the project, newest first (filters are optional; timestamps ISO 8601)."""
    return await _call(ctx, lambda s, p: tracing.list_traces(
        s.olap, p, page=page, limit=_limit(limit), name=name, user_id=user_id, session_id=session_id, tags=tags,
        from_timestamp=from_timestamp, to_timestamp=to_timestamp, fields="core,metrics"))


@server.tool()
async def get_trace(ctx: Context, trace_id: str) -> dict[str, Any]:
    """One trace with its observations and scores."""
    return await _call(ctx, lambda s, p: _found(tracing.get_trace(s.olap, p, trace_id), f"Trace {trace_id}"))


@server.tool()
async def search_observations(ctx: Context, trace_id: str | None = None, name: str | None = None,
                              type: str | None = None, level: str | None = None, user_id: str | None = None,
                              page: int = 1, limit: int = 20) -> dict[str, Any]:
    """Observations (spans, generations, events), newest first."""
    return await _call(ctx, lambda s, p: tracing.list_observations(
        s.olap, p, page=page, limit=_limit(limit), trace_id=trace_id, name=name, type=type, level=level,
        user_id=user_id))


@server.tool()
async def get_observation(ctx: Context, observation_id: str) -> dict[str, Any]:
    """One observation."""
    return await _call(ctx, lambda s, p: _found(tracing.get_observation(s.olap, p, observation_id),
                                                 f"Observation {observation_id}"))


@server.tool()
async def list_sessions(ctx: Context, page: int = 1, limit: int = 20) -> dict[str, Any]:
    """Sessions, newest first."""
    return await _call(ctx, lambda s, p: tracing.list_sessions(s.olap, p, page=page, limit=_limit(limit)))


@server.tool()
async def get_session(ctx: Context, session_id: str) -> dict[str, Any]:
    """One session with its traces."""
    return await _call(ctx, lambda s, p: _found(tracing.get_session(s.olap, p, session_id),
                                                 f"Session {session_id}"))


@server.tool()
async def search_scores(ctx: Context, trace_id: str | None = None, name: str | None = None,
                        session_id: str | None = None, page: int = 1, limit: int = 20) -> dict[str, Any]:
    """Scores, newest first."""
    return await _call(ctx, lambda s, p: tracing.list_scores_v2(
        s.olap, p, page=page, limit=_limit(limit), trace_id=trace_id, name=name, session_id=session_id))


# ---- prompts -------------------------------------------------------------------------------------------
@server.tool()
async def list_prompts(ctx: Context, name: str | None = None, label: str | None = None, tag: str | None = None,
                       page: int = 1, limit: int = 20) -> dict[str, Any]:
    """Prompt names with their versions and labels."""
    return await _call(ctx, lambda s, p: s.prompts.list(p, name=name, label=label, tag=tag, page=page,
                                                         limit=_limit(limit)))


@server.tool()
async def get_prompt(ctx: Context, name: str, version: int | None = None, label: str | None = None
                     ) -> dict[str, Any]:
    """One prompt version (by version or label; neither: the `production` label), references resolved."""
    return await _call(ctx, lambda s, p: s.prompts.get(p, name, version=version, label=label))


@server.tool()
async def create_prompt_version(ctx: Context, name: str, prompt: str | list[dict[str, Any]], type: str = "text",
                                labels: list[str] | None = None, config: dict[str, Any] | None = None,
                                tags: list[str] | None = None, commit_message: str | None = None
                                ) -> dict[str, Any]:
    """A new version of a prompt (`text`: a string; `chat`: a list of {role, content} messages)."""
    body = {"name": name, "prompt": prompt, "type": type, "labels": labels or [], "config": config or {},
            "tags": tags, "commitMessage": commit_message}
    return await _call(ctx, lambda s, p: s.prompts.create(p, parse_create(body), created_by="MCP"))


@server.tool()
async def set_prompt_labels(ctx: Context, name: str, version: int, labels: list[str]) -> dict[str, Any]:
    """Put labels (e.g. production) on a version; they move off any other version of the prompt."""
    return await _call(ctx, lambda s, p: s.prompts.update_labels(p, name, version, labels))


# ---- datasets ------------------------------------------------------------------------------------------
@server.tool(name="list_datasets")
async def list_datasets_tool(ctx: Context, page: int = 1, limit: int = 20) -> dict[str, Any]:
    """Datasets of the project."""
    def read(s: Services, p: str) -> dict[str, Any]:
        data, meta = list_datasets(s.sessions, project_id=p, paging=PageRequest.of(page, _limit(limit)))
        return {"data": data, "meta": meta}

    return await _call(ctx, read)


@server.tool()
async def add_dataset_item(ctx: Context, dataset_name: str, input: Any = None, expected_output: Any = None,
                           metadata: Any = None, source_trace_id: str | None = None) -> dict[str, Any]:
    """Add an item to a dataset (masked like items sent to the API)."""
    def add(s: Services, p: str) -> dict[str, Any]:
        return upsert_item(s.sessions, masker=masker_for(s, p), project_id=p, dataset_name=dataset_name,
                           input=input, expected_output=expected_output, metadata=metadata,
                           source_trace_id=source_trace_id)

    return await _call(ctx, add)


def session_manager() -> StreamableHTTPSessionManager:
    """A session manager for these tools (stateless, JSON responses); the edge runs it."""
    return StreamableHTTPSessionManager(app=server._mcp_server, json_response=True, stateless=True)
