""""Coming soon" pages for the project sections not built yet, so the navigation never leads to a
404. Registered last: a module that serves one of these paths takes over automatically."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from owlscope.web.context import ProjectCtx, require_role
from owlscope.web.nav import nav_item
from owlscope.web.templating import render

router = APIRouter(include_in_schema=False)

SECTIONS: dict[str, str] = {}


def _placeholder(section: str):
    item = nav_item(section)

    def page(request: Request, ctx: ProjectCtx) -> Response:
        require_role(ctx, "VIEWER")
        return render(
            request, "placeholder.html",
            {"section": item, "description": SECTIONS[section], "active_nav": section},
        )

    page.__name__ = f"placeholder_{section}"
    return page


for _section in SECTIONS:
    router.add_api_route(f"/project/{{project_id}}/{_section}", _placeholder(_section), methods=["GET"])
