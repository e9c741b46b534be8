"""Organization settings, API keys tab (ADMIN): organization-scoped keys for the organization
API and SCIM. Created with the creator's role (OWNER or ADMIN); the secret is shown once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope import audit
from owlscope.auth.org_keys import clean_note, create_org_api_key, list_org_api_keys, revoke_org_api_key
from owlscope.errors import NotFound, OwlscopeError
from owlscope.storage.oltp.db import write_transaction
from owlscope.web.context import OrgContext, OrgCtx, WebActor, WebServices, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]


def _keys_page(request: Request, ctx: OrgContext, services: WebServices, *, status: int = 200,
               **extra: Any) -> Response:
    with services.sessions() as session:
        keys = list_org_api_keys(session, org_id=ctx.org.id)
    values = {"keys": keys, "tab": "api-keys", "active_nav": "org-settings", **extra}
    return render(request, "org/api_keys.html", values, status_code=status)


@router.get("/organization/{org_id}/settings/api-keys")
def org_api_keys(request: Request, ctx: OrgCtx, services: WebServices) -> Response:
    require_role(ctx, "ADMIN")
    return _keys_page(request, ctx, services)


@router.post("/organization/{org_id}/settings/api-keys")
def org_api_key_create(request: Request, ctx: OrgCtx, services: WebServices, actor: WebActor,
                       note: FormStr = "") -> Response:
    require_role(ctx, "ADMIN")
    with write_transaction(services.sessions) as session:
        key, secret = create_org_api_key(session, org_id=ctx.org.id, salt=services.settings.salt or "",
                                         role=ctx.role, note=clean_note(note))
        audit.record(session, actor, "org_api_key.created", org_id=ctx.org.id, resource_type="org_api_key",
                     resource_id=key.id, after={"publicKey": key.public_key, "role": key.role})
    host = (services.settings.public_url or str(request.base_url)).rstrip("/")
    # The secret exists only in this response: never stored, never in a redirect.
    created = {"public_key": key.public_key, "secret_key": secret, "host": host, "role": key.role}
    return _keys_page(request, ctx, services, created=created)


@router.post("/organization/{org_id}/settings/api-keys/{key_id}/revoke")
def org_api_key_revoke(request: Request, key_id: str, ctx: OrgCtx, services: WebServices,
                       actor: WebActor) -> Response:
    require_role(ctx, "ADMIN")
    try:
        with write_transaction(services.sessions) as session:
            found = revoke_org_api_key(session, org_id=ctx.org.id, key_id=key_id, actor_role=ctx.role)
            if found:
                audit.record(session, actor, "org_api_key.revoked", org_id=ctx.org.id, resource_type="org_api_key",
                             resource_id=key_id)
    except OwlscopeError as exc:
        return _keys_page(request, ctx, services, status=exc.status, error=exc.message)
    if not found:
        raise NotFound("This API key does not exist (it may have been revoked already)")
    services.keys.invalidate(key_id=key_id)
    flash(request, "Organization API key revoked. Clients using it are refused from now on.")
    return redirect(request, f"/organization/{ctx.org.id}/settings/api-keys")
