"""Project settings, API keys tab (ADMIN): create (the secret is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope import audit
from owlscope.auth.keys import create_api_key, list_api_keys, revoke_api_key
from owlscope.errors import NotFound
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.models import ApiKey
from owlscope.web.caches import invalidate_api_keys
from owlscope.web.context import ProjectContext, ProjectCtx, WebActor, WebServices, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import is_htmx, redirect, render

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]
MAX_NOTE_LENGTH = 200


def _keys_page(
    request: Request, ctx: ProjectContext, services: WebServices, *, status: int = 200, **extra: Any
) -> Response:
    with services.sessions() as session:
        keys = list_api_keys(session, project_id=ctx.project.id)
    values = {"keys": keys, "tab": "api-keys", "active_nav": "settings", **extra}
    return render(request, "project/settings_api_keys.html", values, status_code=status)


@router.get("/project/{project_id}/settings/api-keys")
def api_keys(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "ADMIN")
    return _keys_page(request, ctx, services)


@router.post("/project/{project_id}/settings/api-keys")
def api_key_create(request: Request, ctx: ProjectCtx, services: WebServices, actor: WebActor,
                   note: FormStr = "") -> Response:
    require_role(ctx, "ADMIN")
    clean_note = " ".join(note.split())[:MAX_NOTE_LENGTH] or None
    with write_transaction(services.sessions) as session:
        key, secret = create_api_key(
            session, project_id=ctx.project.id, salt=services.settings.salt or "", note=clean_note
        )
        audit.record(session, actor, "api_key.created", org_id=ctx.org.id, project_id=ctx.project.id,
                     resource_type="api_key", resource_id=key.id,
                     after={"public_key": key.public_key, "secret_key": key.display_secret_key, "note": clean_note})
    host = (services.settings.public_url or str(request.base_url)).rstrip("/")
    created = {"public_key": key.public_key, "secret_key": secret, "host": host, "note": clean_note}
    # The secret is never stored: it exists only in this response (not in the session or a redirect).
    if is_htmx(request):  # the page stays a GET page: reloading it never creates another key
        with services.sessions() as session:
            keys = list_api_keys(session, project_id=ctx.project.id)
        return render(request, "project/_api_key_created.html", {"created": created, "keys": keys, "oob": True})
    return _keys_page(request, ctx, services, created=created)


@router.post("/project/{project_id}/settings/api-keys/{key_id}/revoke")
def api_key_revoke(request: Request, key_id: str, ctx: ProjectCtx, services: WebServices,
                   actor: WebActor) -> Response:
    require_role(ctx, "ADMIN")
    with write_transaction(services.sessions) as session:
        key = session.get(ApiKey, key_id)
        before = {"public_key": key.public_key, "note": key.note} if key is not None else None
        found = revoke_api_key(session, project_id=ctx.project.id, key_id=key_id)
        if found:
            audit.record(session, actor, "api_key.revoked", org_id=ctx.org.id, project_id=ctx.project.id,
                         resource_type="api_key", resource_id=key_id, before=before)
    if not found:
        raise NotFound("This API key does not exist (it may have been revoked already)")
    invalidate_api_keys(services, key_ids=[key_id])
    flash(request, "API key revoked. Clients using it are refused from now on.")
    return redirect(request, f"{ctx.url}/settings/api-keys")
