"""The project's home page (a placeholder the dashboard will replace) and the environment selector."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlalchemy import func, select
from starlette.responses import Response

from owlscope.storage.oltp.models import ApiKey, ScoreConfig
from owlscope.web.context import ProjectCtx, WebServices, require_role
from owlscope.web.environments import set_environment_cookie, valid_environment
from owlscope.web.templating import redirect, render, safe_next

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]


@router.get("/project/{project_id}")
def project_home(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    with services.sessions() as session:
        key_count = session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.project_id == ctx.project.id))
        config_count = session.scalar(
            select(func.count()).select_from(ScoreConfig).where(ScoreConfig.project_id == ctx.project.id)
        )
    host = (services.settings.public_url or str(request.base_url)).rstrip("/")
    values = {"key_count": key_count or 0, "config_count": config_count or 0, "host": host, "active_nav": "dashboard"}
    return render(request, "project/home.html", values)


@router.post("/project/{project_id}/environment")
def choose_environment(
    request: Request, ctx: ProjectCtx, services: WebServices, environment: FormStr = "", next: FormStr = "",
) -> Response:
    """Remember the environment for this project (empty = all) and go back to the page."""
    require_role(ctx, "VIEWER")
    response = redirect(request, safe_next(next, ctx.url))
    set_environment_cookie(
        response, project_id=ctx.project.id, environment=valid_environment(environment),
        secure=services.settings.base_url.startswith("https://"),
    )
    return response
