"""Project settings, Scores tab: score configs (numeric with a range, categorical, boolean).

Everyone in the project may look; MEMBER and up create, edit and archive (as in Langfuse,
annotating needs configs). The rules live in owlscope.tracing_config.score_configs, which the
public API uses too; this module only turns form fields into its input.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope.errors import InvalidRequest, OwlscopeError
from owlscope.tracing_config.score_configs import (
    create_score_config,
    get_score_config,
    list_score_configs,
    update_score_config,
)
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render
from owlscope.wire import PageRequest

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]
DATA_TYPES = ("NUMERIC", "CATEGORICAL", "BOOLEAN")
PAGE_SIZE = 100


def parse_number(value: str, what: str) -> float | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise InvalidRequest(f"{what} must be a number") from None
    if not math.isfinite(number):
        raise InvalidRequest(f"{what} must be a finite number")
    return number


def parse_categories(text: str) -> list[dict[str, Any]]:
    """One category per line, `label` or `label = value`; lines without a value get their index."""
    categories: list[dict[str, Any]] = []
    for index, line in enumerate(ln for ln in (text or "").splitlines() if ln.strip()):
        label, sep, raw = line.rpartition("=") if "=" in line else (line, "", "")
        label = label.strip()
        value: float | int = index
        if sep:
            number = parse_number(raw, f"The value of category {label!r}")
            if number is None:
                raise InvalidRequest(f"Category {label!r} has an empty value after '='")
            value = int(number) if number.is_integer() else number
        categories.append({"label": label, "value": value})
    return categories


def _plain(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def format_categories(categories: list[dict[str, Any]] | None) -> str:
    return "\n".join(f"{c['label']} = {_plain(c['value'])}" for c in categories or [])


def _form_values(config: dict[str, Any] | None = None) -> dict[str, Any]:
    config = config or {}
    return {
        "name": config.get("name", ""), "data_type": config.get("dataType", "NUMERIC"),
        "min_value": _plain(config.get("minValue")),
        "max_value": _plain(config.get("maxValue")),
        "categories": format_categories(config.get("categories")) if config.get("dataType") == "CATEGORICAL" else "",
        "description": config.get("description") or "",
    }


def _request_from_form(
    *, name: str, data_type: str, min_value: str, max_value: str, categories: str, description: str, creating: bool
) -> dict[str, Any]:
    if creating and data_type not in DATA_TYPES:
        raise InvalidRequest("Choose a data type: numeric, categorical or boolean")
    data: dict[str, Any] = {"name": name.strip(), "description": description.strip() or None}
    if creating:
        data["dataType"] = data_type
    if data_type == "NUMERIC":
        data["minValue"] = parse_number(min_value, "Minimum")
        data["maxValue"] = parse_number(max_value, "Maximum")
    elif data_type == "CATEGORICAL":
        data["categories"] = parse_categories(categories)
    return data


def _list_page(request: Request, ctx: ProjectContext, services: WebServices, page: int = 1) -> Response:
    result = list_score_configs(services.sessions, project_id=ctx.project.id, page=PageRequest(max(page, 1), PAGE_SIZE))
    values = {"configs": result.data, "page": result, "tab": "scores", "active_nav": "settings"}
    return render(request, "project/settings_scores.html", values)


def _form_page(
    request: Request, *, config: dict[str, Any] | None, form: dict[str, Any], status: int = 200,
    error: str | None = None,
) -> Response:
    values = {
        "config": config, "form": form, "data_types": DATA_TYPES, "error": error, "tab": "scores",
        "active_nav": "settings",
    }
    return render(request, "project/score_config_form.html", values, status_code=status)


@router.get("/project/{project_id}/settings/scores")
def score_configs(request: Request, ctx: ProjectCtx, services: WebServices, page: int = 1) -> Response:
    require_role(ctx, "VIEWER")
    return _list_page(request, ctx, services, page)


@router.get("/project/{project_id}/settings/scores/new")
def score_config_new(request: Request, ctx: ProjectCtx) -> Response:
    require_role(ctx, "MEMBER")
    return _form_page(request, config=None, form=_form_values())


@router.post("/project/{project_id}/settings/scores")
def score_config_create(
    request: Request, ctx: ProjectCtx, services: WebServices, name: FormStr = "", data_type: FormStr = "",
    min_value: FormStr = "", max_value: FormStr = "", categories: FormStr = "", description: FormStr = "",
) -> Response:
    require_role(ctx, "MEMBER")
    form = {"name": name, "data_type": data_type, "min_value": min_value, "max_value": max_value,
            "categories": categories, "description": description}
    try:
        data = _request_from_form(**form, creating=True)
        created = create_score_config(services.sessions, project_id=ctx.project.id, data=data)
    except OwlscopeError as exc:
        return _form_page(request, config=None, form=form, status=exc.status, error=exc.message)
    flash(request, f"Score config {created['name']} created.")
    return redirect(request, f"{ctx.url}/settings/scores")


@router.get("/project/{project_id}/settings/scores/{config_id}/edit")
def score_config_edit(request: Request, config_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    config = get_score_config(services.sessions, project_id=ctx.project.id, config_id=config_id)
    return _form_page(request, config=config, form=_form_values(config))


@router.post("/project/{project_id}/settings/scores/{config_id}")
def score_config_update(
    request: Request, config_id: str, ctx: ProjectCtx, services: WebServices, name: FormStr = "",
    min_value: FormStr = "", max_value: FormStr = "", categories: FormStr = "", description: FormStr = "",
) -> Response:
    require_role(ctx, "MEMBER")
    config = get_score_config(services.sessions, project_id=ctx.project.id, config_id=config_id)
    form = {"name": name, "data_type": config["dataType"], "min_value": min_value, "max_value": max_value,
            "categories": categories, "description": description}
    try:
        data = _request_from_form(**form, creating=False)
        updated = update_score_config(services.sessions, project_id=ctx.project.id, config_id=config_id, data=data)
    except OwlscopeError as exc:
        return _form_page(request, config=config, form=form, status=exc.status, error=exc.message)
    flash(request, f"Score config {updated['name']} saved.")
    return redirect(request, f"{ctx.url}/settings/scores")


@router.post("/project/{project_id}/settings/scores/{config_id}/archive")
def score_config_archive(
    request: Request, config_id: str, ctx: ProjectCtx, services: WebServices, archived: FormStr = "1",
) -> Response:
    require_role(ctx, "MEMBER")
    archive = archived != "0"
    updated = update_score_config(
        services.sessions, project_id=ctx.project.id, config_id=config_id, data={"isArchived": archive}
    )
    flash(request, f"Score config {updated['name']} {'archived' if archive else 'restored'}.")
    return redirect(request, f"{ctx.url}/settings/scores")
