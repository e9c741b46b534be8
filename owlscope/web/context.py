"""Who is asking, and in which organization and project: the UI's typed dependencies.

    @router.get("/project/{project_id}/traces")
    def traces(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
        require_role(ctx, "VIEWER")            # every page and action names its minimum role
        env = ctx.environment                  # or current_environment(request)
        ...

`ProjectCtx` resolves the signed-in user, the project from the path and the user's effective
role in it. A user without access gets the same 404 as for a project that does not exist, so
nothing about another organization's project is revealed. Not signed in: a redirect to the
sign-in page (see errors.py). The context is also kept on `request.state.ctx`, so the layout
and error pages can show the project's navigation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from owlscope import audit
from owlscope.accounts.orgs import list_user_projects, org_role, project_role, role_at_least
from owlscope.accounts.users import find_user, password_fingerprint
from owlscope.audit import Actor, user_actor
from owlscope.auth.sessions import is_revoked, new_session_id, revoke
from owlscope.errors import Forbidden, NotFound, Unauthorized
from owlscope.services import Services
from owlscope.storage.oltp.models import Organization, Project, Role, User
from owlscope.web.environments import current_environment, is_internal, list_environments, shows_internal
from owlscope.web.nav import org_nav, project_nav
from owlscope.web.session_data import SESSION_MAX_AGE, csrf_token, pop_flashes

SESSION_USER = "uid"
SESSION_FINGERPRINT = "pf"
SESSION_ID = "sid"
SESSION_SEEN = "seen"
SESSION_LAST_PROJECT = "lp"
# Re-sign the session cookie at most this often, so an active user's session keeps rolling.
SESSION_REFRESH_SECONDS = 24 * 3600


class SignInRequired(Unauthorized):
    """Raised by the UI dependencies when nobody is signed in: rendered as a redirect."""


def get_services(request: Request) -> Services:
    return request.app.state.services


async def _services(request: Request) -> Services:
    # `async`: a plain `def` dependency costs a worker-thread hop per request.
    return request.app.state.services


WebServices = Annotated[Services, Depends(_services)]


def session_secret(services: Services) -> str:
    secret = services.settings.session_secret
    if not secret:
        raise RuntimeError("SESSION_SECRET is not set (load settings with load_settings())")
    return secret


# ---- the signed-in user -----------------------------------------------------------------------
def sign_in_session(request: Request, user: User) -> None:
    """Start a fresh session for `user` (a new CSRF token, nothing carried over)."""
    services = get_services(request)
    last_project = request.session.get(SESSION_LAST_PROJECT)
    request.session.clear()
    request.session[SESSION_USER] = user.id
    request.session[SESSION_FINGERPRINT] = password_fingerprint(session_secret(services), user.password_hash)
    request.session[SESSION_SEEN] = int(time.time())
    request.session[SESSION_ID] = new_session_id()
    if last_project:
        request.session[SESSION_LAST_PROJECT] = last_project
    request.state.user = user


def sign_out_session(request: Request) -> None:
    revoke(get_services(request).sessions, request.session.get(SESSION_ID), max_age_seconds=SESSION_MAX_AGE)
    request.session.clear()
    request.state.user = None


def optional_user(request: Request) -> User | None:
    """The signed-in user, or None. The session names the user and a fingerprint of their
    password hash: a changed password ends every other session."""
    if hasattr(request.state, "user"):
        return request.state.user
    user: User | None = None
    if "session" in request.scope:
        uid = request.session.get(SESSION_USER)
        if uid:
            services = get_services(request)
            with services.sessions() as session:
                found = session.get(User, str(uid))
                if found is not None and is_revoked(session, request.session.get(SESSION_ID)):
                    found = None  # signed out (or a cookie from before session ids)
            fingerprint = request.session.get(SESSION_FINGERPRINT, "")
            # No password hash (an account that signs in only with SSO) has a fingerprint too.
            if found is not None and fingerprint == password_fingerprint(
                session_secret(services), found.password_hash
            ):
                user = found
                now = int(time.time())
                if now - int(request.session.get(SESSION_SEEN, 0)) > SESSION_REFRESH_SECONDS:
                    request.session[SESSION_SEEN] = now
            else:
                request.session.pop(SESSION_USER, None)
                request.session.pop(SESSION_FINGERPRINT, None)
    request.state.user = user
    return user


def current_user(request: Request) -> User:
    user = optional_user(request)
    if user is None:
        raise SignInRequired("Sign in to continue")
    return user


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]


def request_actor(request: Request, user: User) -> Actor:
    """`user` acting through this request, for the audit log (address and user agent)."""
    return user_actor(user.id, user.email, ip=request.client.host if request.client else None,
                      user_agent=request.headers.get("user-agent"))


def record_sign_in(request: Request, session: Session, user: User | None, *, email: str | None, method: str,
                   **details: Any) -> None:
    """Audit a sign-in, or a failed one (`user` None): then the actor is anonymous, named by the
    email given, and the entry goes to the organizations of the account with that email, if any."""
    after = {"method": method, **details}
    if user is not None:
        audit.record_for_user(session, request_actor(request, user), "auth.sign_in", user_id=user.id, after=after)
        return
    known = find_user(session, email=email) if email else None
    actor = audit.anonymous_actor((email or "").strip().lower(), ip=request.client.host if request.client else None,
                                  user_agent=request.headers.get("user-agent"))
    audit.record_for_user(session, actor, "auth.sign_in_failed", user_id=known.id if known else None, after=after)


def web_actor(request: Request, user: CurrentUser) -> Actor:
    return request_actor(request, user)


WebActor = Annotated[Actor, Depends(web_actor)]


def audit_action(request: Request, ctx: ProjectContext, action: str, resource_type: str, resource_id: str | None,
                 *, before: Any = None, after: Any = None) -> None:
    """Audit a project action of the signed-in user that is not an OLTP write of this request's own
    transaction (OLAP deletes, stores with their own transactions): written once it succeeded."""
    audit.record_in(get_services(request).sessions, request_actor(request, ctx.user), action, org_id=ctx.org.id,
                    project_id=ctx.project.id, resource_type=resource_type, resource_id=resource_id,
                    before=before, after=after)


# ---- organization and project -----------------------------------------------------------------
@dataclass(frozen=True)
class OrgContext:
    user: User
    org: Organization
    role: Role

    def can(self, minimum: Role | str) -> bool:
        return role_at_least(self.role, minimum)


@dataclass(frozen=True)
class ProjectContext:
    user: User
    org: Organization
    project: Project
    role: Role
    environment: str | None
    show_internal: bool = False  # "show internal environments" (langfuse-*) is chosen
    has_internal: bool = True  # the project has internal environments (as of the cached list)

    def can(self, minimum: Role | str) -> bool:
        return role_at_least(self.role, minimum)

    def hide_internal(self, *chosen: str) -> bool:
        """Whether a list leaves out the internal environments: when no environment is chosen (in the
        top bar, or `chosen` by the page's own filter) and they are not asked for."""
        return self.has_internal and not (self.environment or self.show_internal or any(chosen))

    @property
    def project_id(self) -> str:
        return self.project.id

    @property
    def url(self) -> str:
        """The project's base URL: `/project/<id>`."""
        return f"/project/{self.project.id}"


def require_role(ctx: ProjectContext | OrgContext, minimum: Role | str) -> None:
    """Forbidden (403 page) unless the user's role in `ctx` is at least `minimum`."""
    needed = Role(str(minimum).upper())
    if not role_at_least(ctx.role, needed):
        raise Forbidden(f"This needs the {needed.value} role; your role here is {ctx.role.value}.")


def org_context(request: Request, org_id: str, user: CurrentUser) -> OrgContext:
    services = get_services(request)
    with services.sessions() as session:
        org = session.get(Organization, org_id)
        role = org_role(session, user_id=user.id, org_id=org_id) if org is not None else None
    if org is None or role is None:
        raise NotFound("Organization not found, or you are not a member of it")
    ctx = OrgContext(user=user, org=org, role=role)
    request.state.ctx = ctx
    return ctx


def project_context(request: Request, project_id: str, user: CurrentUser) -> ProjectContext:
    services = get_services(request)
    with services.sessions() as session:
        project = session.get(Project, project_id)
        role = project_role(session, user_id=user.id, project=project) if project is not None else None
        org = session.get(Organization, project.org_id) if role is not None and project is not None else None
    if project is None or role is None or org is None:
        raise NotFound("Project not found, or you do not have access to it")
    ctx = ProjectContext(
        user=user, org=org, project=project, role=role,
        environment=current_environment(request, project.id), show_internal=shows_internal(request, project.id),
        # without internal environments the lists need no extra condition (and keep their fast paths)
        has_internal=any(is_internal(e) for e in list_environments(services, project.id)),
    )
    request.state.ctx = ctx
    if request.session.get(SESSION_LAST_PROJECT) != project.id:
        request.session[SESSION_LAST_PROJECT] = project.id
    return ctx


OrgCtx = Annotated[OrgContext, Depends(org_context)]
ProjectCtx = Annotated[ProjectContext, Depends(project_context)]


# ---- what the layout needs --------------------------------------------------------------------
THEMES = ("light", "dark")


def ui_preferences(request: Request) -> dict[str, str]:
    """The reader's display choices, kept in cookies by owlscope.js (no account setting): `theme`
    ("light", "dark", or "" to follow the system) and `sidebar` ("collapsed", "expanded", or "" for
    the default of the screen's width)."""
    theme = request.cookies.get("owl_theme", "")
    sidebar = request.cookies.get("owl_sidebar", "")
    return {"theme": theme if theme in THEMES else "",
            "sidebar": sidebar if sidebar in ("collapsed", "expanded") else ""}


def layout_context(request: Request) -> dict[str, Any]:
    """Values every template gets (the Jinja context processor): see templating.render()."""

    has_session = "session" in request.scope
    user = getattr(request.state, "user", None) if has_session else None
    ctx = getattr(request.state, "ctx", None)
    values: dict[str, Any] = {
        "user": user,
        "ctx": ctx,
        "org": getattr(ctx, "org", None),
        "project": getattr(ctx, "project", None),
        "role": getattr(ctx, "role", None),
        "csrf_token": csrf_token(request) if has_session else "",
        "flashes": pop_flashes(request),
        "current_path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "switcher": [],
        "nav": [],
        "environment": None,
        "environments": [],
        **ui_preferences(request),
        "internal_environments": [],
        "show_internal": False,
    }
    if user is not None:
        services = get_services(request)
        with services.sessions() as session:
            values["switcher"] = list_user_projects(session, user_id=user.id)
        if isinstance(ctx, ProjectContext):
            values["nav"] = project_nav(ctx.project.id, request.url.path, role=ctx.role)
            values["environment"] = ctx.environment
            values["show_internal"] = ctx.show_internal
            envs = list_environments(services, ctx.project.id)
            if ctx.environment and ctx.environment not in envs:
                envs = [*envs, ctx.environment]
            values["environments"] = [e for e in envs if not is_internal(e)]
            values["internal_environments"] = [e for e in envs if is_internal(e)]
        elif isinstance(ctx, OrgContext):
            values["nav"] = org_nav(ctx.org.id)
    return values
