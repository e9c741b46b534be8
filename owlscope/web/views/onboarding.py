"""The start page and onboarding: a user without a project creates an organization and a project.

`/` sends a signed-in user to the project they used last (or their first); a user without any
membership goes to `/onboarding`, which also serves "New organization" from the switcher.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope.accounts.orgs import create_organization, create_project, list_user_projects
from owlscope.errors import Conflict, InvalidRequest
from owlscope.web.context import SESSION_LAST_PROJECT, CurrentUser, OptionalUser, WebServices
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]


@router.get("/")
def start(request: Request, user: OptionalUser, services: WebServices) -> Response:
    if user is None:
        return redirect(request, "/auth/sign-in")
    with services.sessions() as session:
        orgs = list_user_projects(session, user_id=user.id)
    projects = [p for entry in orgs for p, _ in entry.projects]
    if not projects:
        if orgs:  # member of an organization without (visible) projects
            return redirect(request, f"/organization/{orgs[0].org.id}/settings")
        return redirect(request, "/onboarding")
    last = request.session.get(SESSION_LAST_PROJECT)
    target = next((p for p in projects if p.id == last), projects[0])
    return redirect(request, f"/project/{target.id}")


@router.get("/onboarding")
def onboarding_page(request: Request, user: CurrentUser, services: WebServices) -> Response:
    with services.sessions() as session:
        first = not list_user_projects(session, user_id=user.id)
    return render(request, "onboarding.html", {"first": first, "org_name": "", "project_name": ""})


@router.post("/onboarding")
def onboarding(
    request: Request, user: CurrentUser, services: WebServices, org_name: FormStr = "", project_name: FormStr = "",
) -> Response:
    with services.sessions() as session:
        first = not list_user_projects(session, user_id=user.id)
    try:
        with services.sessions() as session, session.begin():
            org = create_organization(session, name=org_name, owner_id=user.id)
            project = create_project(session, org_id=org.id, name=project_name)
    except (InvalidRequest, Conflict) as exc:
        return render(
            request, "onboarding.html",
            {"first": first, "org_name": org_name, "project_name": project_name, "error": exc.message},
            status_code=exc.status,
        )
    flash(request, f"Created organization {org.name} and project {project.name}.")
    if first:
        return redirect(request, f"/project/{project.id}/settings/api-keys")
    return redirect(request, f"/project/{project.id}")
