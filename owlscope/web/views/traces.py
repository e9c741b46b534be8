"""Traces: the table (time range, search, filters, sorting, cursor paging) and the trace page (the
observation tree with timeline bars; each observation's input, output, metadata, model, usage, cost,
prompt, level and status; scores, annotation and comments on the trace and on each observation).

The table and the page call the same read functions as the public API (owlscope.tracing), scoped by
the project and by the top bar's environment.
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope.errors import InvalidRequest, NotFound
from owlscope.services import Services
from owlscope.tracing.sharing import share_state
from owlscope.tracing.trace_table import (
    AGGREGATE_ORDERS,
    LEVELS,
    SCORE_OPERATORS,
    SEARCH_TYPES,
    SORTABLE,
    TraceFilters,
    filter_options,
    list_trace_table,
)
from owlscope.tracing.traces import get_trace
from owlscope.web import numbers
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, require_role
from owlscope.web.templating import is_htmx, redirect, render
from owlscope.web.urls import with_query
from owlscope.web.views.annotations import Subject, comments_context, panel_context
from owlscope.web.views.trace_layout import trace_view_values
from owlscope.web.views.tracing_common import (
    PRESETS,
    TimeRange,
    environment_filter,
    multi,
    time_range,
    user_names,
)

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


def cached_filter_options(services: Services, project_id: str) -> dict[str, list[str]]:
    """Filter suggestions, cached a minute per project (they only help people pick values)."""
    return services.read_caches.filter_options.get_or_load(project_id, lambda: filter_options(services.olap, project_id))


def _float(value: str, what: str) -> float | None:
    if not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidRequest(f"{what} must be a number") from None


def filters_from_request(request: Request, ctx: ProjectContext) -> tuple[TraceFilters, TimeRange]:
    qp = request.query_params
    rng = time_range(qp.get("range"), qp.get("from"), qp.get("to"), default="all")
    score_name = qp.get("score_name", "").strip() or None
    f = TraceFilters(
        search=qp.get("q", "").strip() or None,
        search_type=qp.get("search", "ids") or "ids",
        name=multi(request, "name"),
        user_id=qp.get("user", "").strip() or None,
        session_id=qp.get("session", "").strip() or None,
        tags=multi(request, "tag"),
        environment=environment_filter(ctx.environment, multi(request, "env")),
        hide_internal=ctx.hide_internal(*multi(request, "env")),
        level=[lv.upper() for lv in multi(request, "level")],
        release=qp.get("release", "").strip() or None,
        version=qp.get("version", "").strip() or None,
        score_name=score_name,
        score_op=qp.get("score_op", ">=") if score_name else None,
        score_value=_float(qp.get("score_value", ""), "The score value") if score_name else None,
        start=rng.start, end=rng.end,
    )
    return f, rng


def active_chips(request: Request, f: TraceFilters, ctx: ProjectContext) -> list[dict[str, str]]:
    """The filters in effect, each with a link that removes it."""
    chips = []
    qp = request.query_params

    def drop(name: str, value: str | None = None) -> str:
        if value is None:
            return with_query(request, **{name: None})
        rest = [v for v in multi(request, name) if v != value]
        return with_query(request, **{name: rest or None})

    if f.search:
        label = "Full text" if f.search_type == "text" else "Search"
        chips.append({"label": f"{label}: {f.search}", "href": with_query(request, q=None, search=None)})
    for n in f.name:
        chips.append({"label": f"Name: {n}", "href": drop("name", n)})
    if f.user_id:
        chips.append({"label": f"User: {f.user_id}", "href": drop("user")})
    if f.session_id:
        chips.append({"label": f"Session: {f.session_id}", "href": drop("session")})
    for t in f.tags:
        chips.append({"label": f"Tag: {t}", "href": drop("tag", t)})
    if not ctx.environment:
        for e in f.environment:
            chips.append({"label": f"Environment: {e}", "href": drop("env", e)})
    for lv in multi(request, "level"):
        chips.append({"label": f"Level: {lv.upper()}", "href": drop("level", lv)})
    if f.release:
        chips.append({"label": f"Release: {f.release}", "href": drop("release")})
    if f.version:
        chips.append({"label": f"Version: {f.version}", "href": drop("version")})
    if f.score_name:
        chips.append({"label": f"Score {f.score_name} {qp.get('score_op', '>=')} {numbers.compact(f.score_value)}",
                      "href": with_query(request, score_name=None, score_op=None, score_value=None)})
    return chips


def sort_links(request: Request, order: str) -> dict[str, dict[str, str]]:
    field, _, direction = order.partition(".")
    out = {}
    for name in SORTABLE:
        if name == field:
            new = f"{name}.{'asc' if direction == 'desc' else 'desc'}"
            out[name] = {"href": with_query(request, sort=new), "dir": direction}
        else:
            first = "desc" if name == "timestamp" or name in AGGREGATE_ORDERS else "asc"
            out[name] = {"href": with_query(request, sort=f"{name}.{first}"),
                         "dir": ""}
    return out


# ---- columns and saved views ------------------------------------------------------------------
# The optional columns (time, name, user, session, latency, tokens and cost are always shown). The
# choice comes from the URL (`cols`, repeated; an empty `cols=` keeps none) and is then remembered in
# a cookie, which answers when the URL has none.
OPTIONAL_COLUMNS = {"input": "Input", "output": "Output", "scores": "Scores", "tags": "Tags",
                    "environment": "Env", "level": "Level", "release": "Release", "version": "Version"}
DEFAULT_COLUMNS = ("scores", "environment", "level")
COLUMNS_COOKIE = "owlscope_trace_columns"
COOKIE_AGE = 365 * 24 * 3600
# Saved views: a name and the table's URL (filters, columns, sort), kept per project in a cookie;
# a view is shared by sharing its URL.
MAX_VIEWS, MAX_VIEW_NAME, MAX_VIEWS_BYTES = 20, 60, 3000


def chosen_columns(request: Request) -> tuple[list[str], bool]:
    """The optional columns to show, and whether the URL chose them (then they are to be remembered)."""
    if "cols" in request.query_params:
        return [c for c in dict.fromkeys(request.query_params.getlist("cols")) if c in OPTIONAL_COLUMNS], True
    saved = request.cookies.get(COLUMNS_COOKIE)
    if saved is not None:
        return [c for c in saved.split(".") if c in OPTIONAL_COLUMNS], False
    return list(DEFAULT_COLUMNS), False


def views_cookie(project_id: str) -> str:
    return f"owlscope_trace_views_{project_id}"


def saved_views(request: Request, project_id: str) -> list[dict[str, str]]:
    """The project's saved views in this browser, [{name, url}] (an unreadable cookie reads as none)."""
    raw = request.cookies.get(views_cookie(project_id))
    if not raw:
        return []
    try:
        items = orjson.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, binascii.Error):
        return []
    if not isinstance(items, list):
        return []
    return [{"name": i[0], "url": i[1]} for i in items
            if isinstance(i, list) and len(i) == 2 and all(isinstance(x, str) for x in i)]


def _store_views(response: Response, project_id: str, views: list[dict[str, str]]) -> None:
    value = base64.urlsafe_b64encode(orjson.dumps([[v["name"], v["url"]] for v in views])).decode()
    if len(value) > MAX_VIEWS_BYTES:
        raise InvalidRequest("Too many or too long saved views: delete one first")
    response.set_cookie(views_cookie(project_id), value, max_age=COOKIE_AGE, path=f"/project/{project_id}",
                        httponly=True, samesite="lax")


@router.post("/project/{project_id}/traces/views")
def save_view(request: Request, ctx: ProjectCtx, name: Annotated[str, Form()] = "",
              url: Annotated[str, Form()] = "") -> Response:
    """Save the table's current URL under a name (a view of that name is replaced), then open it."""
    require_role(ctx, "VIEWER")
    name = " ".join(name.split())
    base = f"/project/{ctx.project.id}/traces"
    if not name or len(name) > MAX_VIEW_NAME:
        raise InvalidRequest(f"A view needs a name of 1 to {MAX_VIEW_NAME} characters")
    if url.partition("?")[0] != base:
        raise InvalidRequest("A view is a URL of this project's traces table")
    views = [v for v in saved_views(request, ctx.project.id) if v["name"] != name]
    if len(views) >= MAX_VIEWS:
        raise InvalidRequest(f"At most {MAX_VIEWS} saved views: delete one first")
    views.append({"name": name, "url": url})
    response = redirect(request, url)
    _store_views(response, ctx.project.id, sorted(views, key=lambda v: v["name"].lower()))
    return response


@router.post("/project/{project_id}/traces/views/delete")
def delete_view(request: Request, ctx: ProjectCtx, name: Annotated[str, Form()] = "") -> Response:
    require_role(ctx, "VIEWER")
    views = [v for v in saved_views(request, ctx.project.id) if v["name"] != name]
    response = redirect(request, f"/project/{ctx.project.id}/traces")
    _store_views(response, ctx.project.id, views)
    return response


@router.get("/project/{project_id}/traces")
def traces(request: Request, ctx: ProjectCtx, services: WebServices, sort: str = "timestamp.desc",
           cursor: str = "", total: int | None = None, n: int = 1) -> Response:
    require_role(ctx, "VIEWER")
    f, rng = filters_from_request(request, ctx)
    if sort.partition(".")[0] not in SORTABLE:
        sort = "timestamp.desc"
    columns, chosen = chosen_columns(request)
    page = list_trace_table(services.olap, ctx.project.id, f, order_by=sort, cursor=cursor or None,
                            limit=PAGE_SIZE, io_preview="input" in columns or "output" in columns)
    total = page.total if page.total is not None else total
    n = max(n, 1)
    values: dict[str, Any] = {
        "rows": page.rows, "total": total, "filters": f, "range": rng, "presets": PRESETS, "sort": sort,
        "sort_links": sort_links(request, sort), "chips": active_chips(request, f, ctx),
        "first_row": (n - 1) * PAGE_SIZE + 1, "page_number": n,
        "next_href": with_query(request, cursor=page.next_cursor, total=total, n=n + 1) if page.next_cursor
        else None,
        "first_href": with_query(request) if cursor else None,
        "levels": LEVELS, "score_ops": SCORE_OPERATORS, "q": request.query_params,
        "selected_levels": {lv.upper() for lv in multi(request, "level")},
        "columns": columns, "optional_columns": OPTIONAL_COLUMNS,
        "fixed_layout": bool(set(columns) - set(DEFAULT_COLUMNS)), "search_types": SEARCH_TYPES,
        "views": saved_views(request, ctx.project.id),
        "view_url": with_query(request, cols=columns or [""]),
        "active_nav": "traces",
    }
    if is_htmx(request) and request.headers.get("hx-target") == "trace-results":
        response = render(request, "traces/_results.html", values)
    else:
        values["options"] = cached_filter_options(services, ctx.project.id)
        response = render(request, "traces/list.html", values)
    if chosen:
        response.set_cookie(COLUMNS_COOKIE, ".".join(columns) or "-", max_age=COOKIE_AGE, path="/",
                            httponly=True, samesite="lax")
    return response


# ---- bulk actions on the table's checked rows -------------------------------------------------
MAX_EXPORT = 500


@router.post("/project/{project_id}/traces/export")
def export_traces(request: Request, ctx: ProjectCtx, services: WebServices,
                  trace_id: Annotated[list[str], Form()] = []) -> Response:  # noqa: B006
    """The checked traces (with their observations and scores) as one JSON file to download."""
    require_role(ctx, "VIEWER")
    ids = list(dict.fromkeys(t for t in trace_id if t))
    if not ids:
        raise InvalidRequest("Select the traces to export")
    if len(ids) > MAX_EXPORT:
        raise InvalidRequest(f"Export at most {MAX_EXPORT} traces at once")
    traces = [t for t in (get_trace(services.olap, ctx.project.id, i) for i in ids) if t is not None]
    if not traces:
        raise NotFound("None of the selected traces was found")
    body = orjson.dumps(traces, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
    name = f"traces-{len(traces)}.json"
    return Response(body, media_type="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# ---- the trace page --------------------------------------------------------------------------
def load_trace(services: Services, project_id: str, trace_id: str) -> dict[str, Any]:
    trace = get_trace(services.olap, project_id, trace_id)
    if trace is None:
        raise NotFound("Trace not found. It may not have arrived yet, or it belongs to another project.")
    return trace


def trace_summary(trace: dict[str, Any]) -> dict[str, Any]:
    usage = defaultdict(int)
    levels = defaultdict(int)
    for o in trace["observations"]:
        for k, v in (o.get("usageDetails") or {}).items():
            usage[k] += v
        levels[o["level"]] += 1
    total = usage.get("total") or sum(v for k, v in usage.items() if k in ("input", "output"))
    return {"input": usage.get("input", 0), "output": usage.get("output", 0), "total": total,
            "errors": levels.get("ERROR", 0), "warnings": levels.get("WARNING", 0)}


def selected_detail(trace: dict[str, Any], observation_id: str | None) -> dict[str, Any]:
    """What the detail pane shows: the trace itself or one of its observations, with its scores."""
    obs = None
    if observation_id:
        obs = next((o for o in trace["observations"] if o["id"] == observation_id), None)
        if obs is None:
            raise NotFound("Observation not found in this trace")
    scores = [s for s in trace["scores"] if (s.get("observationId") == observation_id if obs
                                            else not s.get("observationId"))]
    return {"obs": obs, "scores": scores}


def detail_values(services: Services, ctx: ProjectContext, trace: dict[str, Any], observation_id: str | None,
                  ) -> dict[str, Any]:
    detail = selected_detail(trace, observation_id)
    obs = detail["obs"]
    subject = (Subject("observation", obs["id"], trace["id"], obs["environment"]) if obs
               else Subject("trace", trace["id"], trace["id"], trace["environment"]))
    scores = [{**s, "sessionId": None} for s in detail["scores"]]
    return {
        "detail": detail, "subject": subject,
        "panel": panel_context(services, ctx, subject, scores),
        "thread": comments_context(services, ctx, subject),
        "authors": _authors(services, detail["scores"]),
    }


def _authors(services: Services, scores: list[dict[str, Any]]) -> dict[str, str]:
    return user_names(services, {s.get("authorUserId") for s in scores if s.get("authorUserId")})


@router.get("/project/{project_id}/traces/{trace_id}")
def trace_page(request: Request, trace_id: str, ctx: ProjectCtx, services: WebServices,
               observation: str = "") -> Response:
    require_role(ctx, "VIEWER")
    trace = load_trace(services, ctx.project.id, trace_id)
    share = share_state(services.sessions, project_id=ctx.project.id, kind="TRACE", object_id=trace_id,
                        sdk_public=trace["public"])
    values = {
        "trace": trace, **trace_view_values(trace), "summary": trace_summary(trace),
        "selected": observation or None, "share": share, "share_kind": "TRACE", "share_id": trace_id,
        "public_view": False, "base": ctx.url, "active_nav": "traces",
        "share_url": public_url(services, request, "traces", trace_id, ctx.project.id),
        **trace_links(ctx.url, trace_id),
        **detail_values(services, ctx, trace, observation or None),
    }
    return render(request, "traces/detail.html", values)


@router.get("/project/{project_id}/traces/{trace_id}/observations/{observation_id}")
def observation_detail(request: Request, trace_id: str, observation_id: str, ctx: ProjectCtx,
                       services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    if not is_htmx(request):
        return redirect(request, f"{ctx.url}/traces/{trace_id}?observation={observation_id}")
    trace = load_trace(services, ctx.project.id, trace_id)
    values = {"trace": trace, "public_view": False, "base": ctx.url,
              **detail_values(services, ctx, trace, observation_id)}
    return render(request, "traces/_detail.html", values)


@router.get("/project/{project_id}/traces/{trace_id}/overview")
def trace_detail(request: Request, trace_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    if not is_htmx(request):
        return redirect(request, f"{ctx.url}/traces/{trace_id}")
    trace = load_trace(services, ctx.project.id, trace_id)
    values = {"trace": trace, "public_view": False, "base": ctx.url, **detail_values(services, ctx, trace, None)}
    return render(request, "traces/_detail.html", values)


def trace_links(project_url: str, trace_id: str) -> dict[str, str]:
    """Where the tree's rows lead on a project page (the public page has its own, see sharing)."""
    t = f"{project_url}/traces/{quote(trace_id, safe='')}"
    return {"page_base": t, "page_sep": "?", "partial_base": f"{t}/observations/", "partial_suffix": "",
            "overview_partial": f"{t}/overview"}


def public_url(services: Services, request: Request, kind: str, object_id: str, project_id: str) -> str:
    """The absolute public link of a trace or session ("traces" or "sessions")."""
    base = (services.settings.public_url or str(request.base_url)).rstrip("/")
    return f"{base}/public/{kind}/{quote(object_id, safe='')}?project={quote(project_id, safe='')}"
