"""Scores: every score of the project (from SDKs, annotation and evaluators) in a table with filters
by name, source, data type, value, trace and time range (and the top bar's environment)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from owlscope.errors import InvalidRequest
from owlscope.tracing.scores import DATA_TYPES, SOURCES, list_scores_v2
from owlscope.tracing.trace_table import SCORE_OPERATORS
from owlscope.web import present
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, require_role
from owlscope.web.templating import render
from owlscope.web.views.traces import cached_filter_options
from owlscope.web.views.tracing_common import PRESETS, TimeRange, environment_filter, time_range, user_names

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


def score_query(request: Request, ctx: ProjectContext, *, name: str = "", source: str = "", data_type: str = "",
                op: str = ">=", value: str = "", trace: str = "") -> tuple[dict[str, Any], TimeRange, dict[str, Any]]:
    """The table's filters as `list_scores_v2` arguments, the time range, and the cleaned form values."""
    qp = request.query_params
    rng = time_range(qp.get("range"), qp.get("from"), qp.get("to"), default="all")
    source = source.upper() if source.upper() in SOURCES else ""
    data_type = data_type.upper() if data_type.upper() in DATA_TYPES else ""
    number = None
    if value.strip():
        try:
            number = float(value)
        except ValueError:
            raise InvalidRequest("The value filter must be a number") from None
        if not math.isfinite(number) or op not in SCORE_OPERATORS:
            raise InvalidRequest("The value filter needs an operator and a finite number")
    query = dict(
        name=name.strip() or None, source=source or None, data_type=data_type or None, trace_id=trace.strip() or None,
        operator=op if number is not None else None, value=number,
        from_timestamp=rng.start.isoformat() if rng.start else None,
        to_timestamp=rng.end.isoformat() if rng.end else None,
        environment=environment_filter(ctx.environment) or None, fields="score",
    )
    form = {"name": name, "source": source, "data_type": data_type, "op": op, "value": value, "trace": trace,
            "number": number}
    return query, rng, form


@router.get("/project/{project_id}/scores")
def scores(request: Request, ctx: ProjectCtx, services: WebServices, name: str = "", source: str = "",
           data_type: str = "", op: str = ">=", value: str = "", trace: str = "", page: int = 1) -> Response:
    require_role(ctx, "VIEWER")
    query, rng, form = score_query(request, ctx, name=name, source=source, data_type=data_type, op=op, value=value,
                                   trace=trace)
    source, data_type, number = form["source"], form["data_type"], form.pop("number")
    page = max(page, 1)
    found = list_scores_v2(services.olap, ctx.project.id, page=page, limit=PAGE_SIZE, **query)
    meta = found["meta"]
    rows = [{**s, "timestamp": present.parse_iso(s["timestamp"])} for s in found["data"]]
    filtered = bool(name or source or data_type or number is not None or trace or rng.key != "all")
    values = {
        "rows": rows, "meta": meta, "range": rng, "presets": PRESETS, "page": page,
        "names": cached_filter_options(services, ctx.project.id)["scoreNames"],
        "sources": SOURCES, "data_types": DATA_TYPES, "ops": SCORE_OPERATORS, "filtered": filtered,
        "f": form,
        "authors": user_names(services, {s["authorUserId"] for s in rows if s.get("authorUserId")}),
        "active_nav": "scores",
    }
    return render(request, "scores/list.html", values)
