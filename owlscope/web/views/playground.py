"""The playground page: messages, variables, tools and structured output run against the project's
LLM connections in 1 to 4 columns side by side, each answer streamed over server-sent events.

`GET /project/<id>/playground` starts empty, from a prompt version (`?prompt=NAME&version=N` or
`&label=L`) or from a traced generation (`?observation=ID`: span replay). The page's script posts
JSON to:
- `POST .../playground/run`: one column's run; answers `text/event-stream` (`delta`, `tool_call`,
  `done`, `error` events) or, for bad input, a 4xx JSON `{"message", "error"}` before streaming;
- `POST .../playground/save-prompt`: a new prompt version (name, commit message, labels);
- `POST .../playground/save-item`: a dataset item from a column's run.

MEMBER and up (runs spend the project's provider keys). The rules live in owlscope.playground.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from owlscope.datasets.store import list_datasets
from owlscope.errors import InvalidRequest, OwlscopeError
from owlscope.evals.judge import DEFAULT_MODELS
from owlscope.playground import (
    MAX_COLUMNS,
    empty_state,
    from_observation,
    from_prompt,
    parse_run,
    save_dataset_item,
    save_prompt_version,
    stream_run,
)
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, require_role
from owlscope.web.templating import render
from owlscope.web.views.llm_connections import all_connections

router = APIRouter(include_in_schema=False)


def _int(value: str, what: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"{what} must be a whole number") from None


def connection_choices(services: WebServices, project_id: str) -> list[dict[str, Any]]:
    """Each connection with the model names to offer (its custom models, then the usual default)."""
    out = []
    for c in all_connections(services, project_id):
        models = list(c["customModels"])
        if c["withDefaultModels"] and DEFAULT_MODELS.get(c["adapter"]) not in models:
            models.append(DEFAULT_MODELS.get(c["adapter"], ""))
        out.append({"provider": c["provider"], "adapter": c["adapter"], "models": [m for m in models if m]})
    return out


@router.get("/project/{project_id}/playground")
def playground_page(request: Request, ctx: ProjectCtx, services: WebServices, prompt: str = "",
                    version: str = "", label: str = "", observation: str = "") -> Response:
    require_role(ctx, "MEMBER")
    if observation:
        state = from_observation(services, ctx.project.id, observation)
    elif prompt:
        number = _int(version, "version")
        state = from_prompt(services, ctx.project.id, prompt, version=number,
                            label=label or (None if number is not None else "latest"))
    else:
        state = empty_state()
    datasets, _meta = list_datasets(services.sessions, project_id=ctx.project.id)
    connections = connection_choices(services, ctx.project.id)
    return render(request, "playground/page.html", {
        "state": state, "connections": connections, "datasets": [d["name"] for d in datasets],
        "max_columns": MAX_COLUMNS, "active_nav": "playground",
        "boot": {"state": state, "connections": connections, "maxColumns": MAX_COLUMNS,
                 "base": f"{ctx.url}/playground", "projectUrl": ctx.url},
    })


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise InvalidRequest("the request body must be JSON") from None


def _error(exc: OwlscopeError) -> JSONResponse:
    return JSONResponse({"message": exc.message, "error": exc.error}, status_code=exc.status, headers=exc.headers)


def _sse(events: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    yield b": started\n\n"  # the headers and a first byte go out at once
    for e in events:
        name = e.pop("event")
        yield f"event: {name}\ndata: {json.dumps(e, default=str)}\n\n".encode()


async def _call(request: Request, ctx: ProjectContext, work: Callable[[Any], Any]) -> Any:
    require_role(ctx, "MEMBER")
    body = await _json_body(request)
    return await run_in_threadpool(work, body)


@router.post("/project/{project_id}/playground/run")
async def playground_run(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    def start(body: Any) -> Iterator[dict[str, Any]]:
        return stream_run(services, ctx.project.id, parse_run(body), user_id=ctx.user.id)

    try:
        events = await _call(request, ctx, start)
    except OwlscopeError as exc:
        return _error(exc)
    return StreamingResponse(_sse(events), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


@router.post("/project/{project_id}/playground/save-prompt")
async def playground_save_prompt(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    def save(body: Any) -> dict[str, Any]:
        return save_prompt_version(services, ctx.project.id, body, created_by=ctx.user.email)

    try:
        created = await _call(request, ctx, save)
    except OwlscopeError as exc:
        return _error(exc)
    url = f"{ctx.url}/prompts/{quote(created['name'], safe='/')}?version={created['version']}"
    return JSONResponse({"name": created["name"], "version": created["version"], "labels": created["labels"],
                         "url": url})


@router.post("/project/{project_id}/playground/save-item")
async def playground_save_item(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    def save(body: Any) -> dict[str, Any]:
        return save_dataset_item(services, ctx.project.id, body)

    try:
        item = await _call(request, ctx, save)
    except OwlscopeError as exc:
        return _error(exc)
    return JSONResponse({"id": item["id"], "datasetId": item["datasetId"], "datasetName": item["datasetName"],
                         "url": f"{ctx.url}/datasets/{item['datasetId']}"})
