"""The environment selector (the project home is the dashboard, in dashboard.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope.web.context import ProjectCtx, WebServices, require_role
from owlscope.web.environments import SHOW_INTERNAL, set_environment_cookie, valid_environment
from owlscope.web.templating import redirect, safe_next

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]


@router.post("/project/{project_id}/environment")
def choose_environment(
    request: Request, ctx: ProjectCtx, services: WebServices, environment: FormStr = "", next: FormStr = "",
) -> Response:
    """Remember the environment for this project (empty = all but the internal ones, `*` = all) and go
    back to the page."""
    require_role(ctx, "VIEWER")
    response = redirect(request, safe_next(next, ctx.url))
    chosen = SHOW_INTERNAL if environment == SHOW_INTERNAL else valid_environment(environment)
    set_environment_cookie(
        response, project_id=ctx.project.id, environment=chosen,
        secure=services.settings.base_url.startswith("https://"),
    )
    return response
