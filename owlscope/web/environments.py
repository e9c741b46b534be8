"""Tracing environments: the top bar's selector, stored per project in a cookie.

`current_environment(request)` is what a view passes to its queries: None means all
environments. The list of choices is the distinct `environment` of the project's traces, read
from OLAP and cached for a minute per process (a new environment shows up within that time).

Internal environments (`langfuse-*`: the judge's own calls, prompt experiments) are left out of
the traces, sessions and users lists and the dashboard unless one is chosen, or the selector's
"show internal environments" (cookie value `SHOW_INTERNAL`) is: `hide_internal(ctx)`.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from fastapi import Request
from starlette.responses import Response

from owlscope.tracing.model import INTERNAL_ENV_PREFIX
from owlscope.tracing.traces import environments

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger(__name__)

ENV_COOKIE_PREFIX = "owlscope_env_"
ENV_COOKIE_MAX_AGE = 365 * 24 * 3600
MAX_ENVIRONMENTS = 200
SHOW_INTERNAL = "*"  # every environment, the internal ones included (no environment name has a *)
_VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_COOKIE_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def env_cookie_name(project_id: str) -> str:
    return ENV_COOKIE_PREFIX + _COOKIE_SAFE.sub("_", project_id)


def valid_environment(value: str | None) -> str | None:
    """The environment name if it is well-formed, else None (= all environments)."""
    if value and _VALID.match(value):
        return value
    return None


def is_internal(environment: str) -> bool:
    return environment.startswith(INTERNAL_ENV_PREFIX)


def shows_internal(request: Request, project_id: str) -> bool:
    """Whether "show internal environments" is chosen for this project."""
    return request.cookies.get(env_cookie_name(project_id)) == SHOW_INTERNAL


def current_environment(request: Request, project_id: str | None = None) -> str | None:
    """The environment selected for this project (None = all). `project_id` defaults to the
    `{project_id}` of the current route."""
    pid = project_id or request.path_params.get("project_id")
    if not pid:
        return None
    return valid_environment(request.cookies.get(env_cookie_name(str(pid))))


def set_environment_cookie(response: Response, *, project_id: str, environment: str | None, secure: bool) -> None:
    name = env_cookie_name(project_id)
    if environment is None:
        response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
    else:
        response.set_cookie(
            name, environment, max_age=ENV_COOKIE_MAX_AGE, path="/", secure=secure, httponly=True, samesite="lax"
        )


def list_environments(services: Services, project_id: str) -> list[str]:
    """The project's environments, sorted with "default" first; [] if OLAP cannot answer."""
    cache = services.read_caches.environments
    found = cache.get(project_id)
    if found is not None:
        return found
    try:
        values = environments(services.olap, project_id, MAX_ENVIRONMENTS)
    except Exception:  # noqa: BLE001 - the selector must never break a page
        log.warning("could not list environments of project %s", project_id, exc_info=True)
        cache.put(project_id, [])  # do not retry (and log) on every page for the next minute
        return []
    cache.put(project_id, values)
    return values
