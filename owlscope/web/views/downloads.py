"""Downloads of what a table's current filters select, streamed as CSV, JSON or JSONL: the traces
table (and the observations of its traces), sessions, scores and a dataset's items. The rows come
from `integrations.downloads`, one page at a time, so a large download never sits in memory."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import StreamingResponse

from owlscope.errors import InvalidRequest
from owlscope.integrations import downloads
from owlscope.integrations.encode import MEDIA_TYPES, encode, file_name
from owlscope.tracing.trace_table import SORTABLE
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, require_role
from owlscope.web.views import dataset_parts as parts
from owlscope.web.views.scores import score_query
from owlscope.web.views.sessions import session_query
from owlscope.web.views.traces import filters_from_request

router = APIRouter(include_in_schema=False)


def _stream(rows: Iterator[dict[str, Any]], fmt: str, stem: str, ctx: ProjectContext) -> StreamingResponse:
    fmt = fmt.upper()
    if fmt not in MEDIA_TYPES:
        raise InvalidRequest("format must be csv, json or jsonl")
    # Read the first page now: a bad filter is a 400 page, not a download cut short.
    chunks = encode(rows, fmt)
    first = next(chunks, b"")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name = file_name(f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', stem)}-{stamp}", fmt)
    return StreamingResponse(itertools.chain([first], chunks), media_type=MEDIA_TYPES[fmt],
                             headers={"Content-Disposition": f'attachment; filename="{name}"',
                                      "Cache-Control": "no-store"})


def _trace_args(request: Request, ctx: ProjectContext, sort: str) -> tuple[Any, str]:
    filters, _ = filters_from_request(request, ctx)
    return filters, sort if sort.partition(".")[0] in SORTABLE else "timestamp.desc"


@router.get("/project/{project_id}/traces/download")
def traces_download(request: Request, ctx: ProjectCtx, services: WebServices, format: str = "csv",
                    sort: str = "timestamp.desc") -> StreamingResponse:
    require_role(ctx, "VIEWER")
    filters, order = _trace_args(request, ctx, sort)
    return _stream(downloads.traces(services.olap, ctx.project.id, filters, order_by=order), format, "traces", ctx)


@router.get("/project/{project_id}/traces/observations/download")
def trace_observations_download(request: Request, ctx: ProjectCtx, services: WebServices, format: str = "csv",
                                sort: str = "timestamp.desc") -> StreamingResponse:
    require_role(ctx, "VIEWER")
    filters, order = _trace_args(request, ctx, sort)
    return _stream(downloads.trace_observations(services.olap, ctx.project.id, filters, order_by=order), format,
                   "observations", ctx)


@router.get("/project/{project_id}/sessions/download")
def sessions_download(request: Request, ctx: ProjectCtx, services: WebServices,
                      format: str = "csv") -> StreamingResponse:
    require_role(ctx, "VIEWER")
    query, _ = session_query(request, ctx)
    return _stream(downloads.sessions(services.olap, ctx.project.id, **query), format, "sessions", ctx)


@router.get("/project/{project_id}/scores/download")
def scores_download(request: Request, ctx: ProjectCtx, services: WebServices, format: str = "csv", name: str = "",
                    source: str = "", data_type: str = "", op: str = ">=", value: str = "",
                    trace: str = "") -> StreamingResponse:
    require_role(ctx, "VIEWER")
    query, _, _ = score_query(request, ctx, name=name, source=source, data_type=data_type, op=op, value=value,
                              trace=trace)
    return _stream(downloads.scores(services.olap, ctx.project.id, **query), format, "scores", ctx)


@router.get("/project/{project_id}/datasets/{dataset_id}/download")
def dataset_items_download(request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices,
                           format: str = "csv", status: str = "active") -> StreamingResponse:
    require_role(ctx, "VIEWER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    status = status if status in ("active", "archived", "all") else "active"
    rows = downloads.dataset_items(services.sessions, ctx.project.id, ds["name"],
                                   status=None if status == "all" else status.upper())
    return _stream(rows, format, f"{ds['name']}-items", ctx)
