"""SCIM 2.0 (RFC 7643/7644) at /api/public/scim, so an identity provider (Okta, Entra ID, ...)
provisions and deprovisions the users of one organization. Authenticated with an organization
API key (Basic auth), as Langfuse does.

A SCIM User is an Owlscope user who is a member of the key's organization; its id is the user id.
Creating one creates the account if the email is new (without a password: the person signs in
with SSO or sets a password through a link) and adds it with the role of `roles[0]` (default NONE:
no project until an admin grants one). Deleting one, or `active: false` (PATCH or PUT), removes the
membership, never the account. Errors are SCIM error bodies.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from owlscope.accounts import org_admin
from owlscope.api.deps import OrgAuthDep, ServicesDep
from owlscope.api.error_routes import error_route_class
from owlscope.api.schemas import (
    ResourceTypesResponse,
    SchemasResponse,
    ScimUser,
    ScimUsersListResponse,
    ServiceProviderConfig,
    typed,
)
from owlscope.errors import InvalidRequest, OwlscopeError
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.models import Role, User
from owlscope.wire import iso

BASE = "/api/public/scim"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAX_RESULTS = 100
_FILTER = re.compile(r'^\s*userName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)


def _scim_error(status: int, detail: str, scim_type: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return JSONResponse(body, status_code=status)


def _on_error(exc: OwlscopeError) -> Response:
    """Errors as SCIM error bodies (RFC 7644 §3.12): `schemas`, `status`, `detail`, `scimType`. The
    API's usual `message`/`error` are left out here: SCIM clients reject unknown error fields."""
    scim_type = getattr(exc, "scim_type", None) or ("uniqueness" if exc.status == 409 else None)
    return _scim_error(exc.status, exc.message, scim_type)


def _on_invalid(exc: RequestValidationError) -> Response:
    return _scim_error(400, "; ".join(str(e.get("msg")) for e in exc.errors()) or "invalid request", "invalidValue")


router = APIRouter(tags=["Scim"], route_class=error_route_class(_on_error, _on_invalid))


class InvalidFilter(InvalidRequest):
    scim_type = "invalidFilter"


def _user(user: User) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA], "id": user.id, "userName": user.email, "name": {"formatted": user.name},
        "emails": [{"primary": True, "value": user.email, "type": "work"}], "active": True,
        "meta": {"resourceType": "User", "created": iso(user.created_at), "lastModified": iso(user.updated_at),
                 "location": f"{BASE}/Users/{user.id}"},
    }


# ---- discovery --------------------------------------------------------------------------------
@router.get(f"{BASE}/ServiceProviderConfig", **typed(ServiceProviderConfig))
def scim_service_provider_config(auth: OrgAuthDep) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "/api/docs",  # this instance's API reference
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [{
            "name": "HTTP Basic", "description": "An organization API key: public key as the username, "
            "secret key as the password", "specUri": "https://www.rfc-editor.org/rfc/rfc7617",
            "type": "httpbasic", "primary": True,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{BASE}/ServiceProviderConfig"},
    }


@router.get(f"{BASE}/ResourceTypes", **typed(ResourceTypesResponse))
def scim_resource_types(auth: OrgAuthDep) -> dict[str, Any]:
    return {"schemas": [LIST_SCHEMA], "totalResults": 1, "Resources": [{
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": "User", "name": "User",
        "endpoint": "/Users", "description": "A member of the organization", "schema": USER_SCHEMA,
        "schemaExtensions": [], "meta": {"resourceType": "ResourceType", "location": f"{BASE}/ResourceTypes/User"},
    }]}


def _attr(name: str, kind: str, description: str, *, required: bool = False, multi: bool = False,
          mutability: str = "readWrite", uniqueness: str = "none", sub: list[dict[str, Any]] | None = None,
          ) -> dict[str, Any]:
    attr: dict[str, Any] = {
        "name": name, "type": kind, "multiValued": multi, "description": description, "required": required,
        "mutability": mutability, "returned": "default", "uniqueness": uniqueness,
    }
    if kind == "string":
        attr["caseExact"] = False
    if sub is not None:
        attr["subAttributes"] = sub
    return attr


USER_ATTRIBUTES = [
    _attr("userName", "string", "The user's email address", required=True, uniqueness="server"),
    _attr("name", "complex", "The user's name", sub=[_attr("formatted", "string", "The full name")]),
    _attr("emails", "complex", "Email addresses", multi=True, sub=[
        _attr("value", "string", "The address"), _attr("type", "string", "work"),
        _attr("primary", "boolean", "The primary address")]),
    _attr("active", "boolean", "false removes the user from the organization"),
    _attr("roles", "complex", "The organization role given at creation: OWNER, ADMIN, MEMBER, VIEWER or NONE",
          multi=True, mutability="writeOnly", sub=[_attr("value", "string", "The role")]),
]


@router.get(f"{BASE}/Schemas", **typed(SchemasResponse))
def scim_schemas(auth: OrgAuthDep) -> dict[str, Any]:
    return {"schemas": [LIST_SCHEMA], "totalResults": 1, "Resources": [{
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": USER_SCHEMA, "name": "User",
        "description": "User Account", "attributes": USER_ATTRIBUTES,
        "meta": {"resourceType": "Schema", "location": f"{BASE}/Schemas/{USER_SCHEMA}"},
    }]}


# ---- users ------------------------------------------------------------------------------------
def _filter_email(expression: str | None) -> str | None:
    if expression is None or not expression.strip():
        return None
    match = _FILTER.match(expression)
    if match is None:
        raise InvalidFilter('Only the filter userName eq "<email>" is supported')
    return match.group(1).replace('\\"', '"')


@router.get(f"{BASE}/Users", **typed(ScimUsersListResponse))
def scim_users_list(
    auth: OrgAuthDep, services: ServicesDep, filter: str | None = None, startIndex: int | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    start = max(startIndex or 1, 1)
    limit = MAX_RESULTS if count is None else min(max(count, 0), MAX_RESULTS)
    with services.sessions() as session:
        total, users = org_admin.org_users(session, org_id=auth.org_id, email=_filter_email(filter),
                                           offset=start - 1, limit=limit)
        resources = [_user(u) for u in users]
    return {"schemas": [LIST_SCHEMA], "totalResults": total, "startIndex": start, "itemsPerPage": len(resources),
            "Resources": resources}


def _role(roles: Any) -> Role:
    """The first of SCIM `roles` (strings or {"value": ...}); NONE when absent."""
    if not roles:
        return Role.NONE
    first = roles[0] if isinstance(roles, list) else roles
    value = first.get("value") if isinstance(first, dict) else first
    try:
        return Role(str(value).upper())
    except ValueError:
        raise InvalidRequest(f"Invalid role {value!r}: use OWNER, ADMIN, MEMBER, VIEWER or NONE") from None


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise InvalidRequest("The body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object")
    return body


@router.post(f"{BASE}/Users", status_code=201, **typed(ScimUser))
async def scim_users_create(request: Request, auth: OrgAuthDep, services: ServicesDep) -> dict[str, Any]:
    body = await _json(request)  # `password` is accepted and ignored: no credential is created
    name = body.get("name") if isinstance(body.get("name"), dict) else {}
    display = name.get("formatted") or " ".join(
        str(p) for p in (name.get("givenName"), name.get("familyName")) if p) or body.get("displayName")
    with write_transaction(services.sessions) as session:
        user = org_admin.provision_user(session, org_id=auth.org_id, email=body.get("userName"),
                                        name=display if isinstance(display, str) else None,
                                        role=_role(body.get("roles")), actor_role=auth.role)
        return _user(user)


@router.get(f"{BASE}/Users/{{userId}}", **typed(ScimUser))
def scim_users_get(userId: str, auth: OrgAuthDep, services: ServicesDep) -> dict[str, Any]:
    with services.sessions() as session:
        return _user(org_admin.org_user(session, org_id=auth.org_id, user_id=userId))


@router.delete(f"{BASE}/Users/{{userId}}", status_code=204, response_class=Response)
def scim_users_delete(userId: str, auth: OrgAuthDep, services: ServicesDep) -> Response:
    with write_transaction(services.sessions) as session:
        org_admin.org_user(session, org_id=auth.org_id, user_id=userId)
        org_admin.remove_org_membership(session, org_id=auth.org_id, user_id=userId, actor_role=auth.role)
    return Response(status_code=204)


def _set_active(services: ServicesDep, auth: Any, user_id: str, active: bool) -> dict[str, Any]:
    with write_transaction(services.sessions) as session:
        if active:
            user = org_admin.reactivate_user(session, org_id=auth.org_id, user_id=user_id)
        else:
            user = org_admin.org_user(session, org_id=auth.org_id, user_id=user_id)
            org_admin.remove_org_membership(session, org_id=auth.org_id, user_id=user_id, actor_role=auth.role)
        out = _user(user)
    out["active"] = active
    return out


@router.patch(f"{BASE}/Users/{{userId}}", include_in_schema=False)
async def scim_users_patch(userId: str, request: Request, auth: OrgAuthDep, services: ServicesDep) -> dict[str, Any]:
    """PatchOp with `replace` of `active` (how Okta and Entra ID deactivate and reactivate)."""
    body = await _json(request)
    if PATCH_SCHEMA not in (body.get("schemas") or []) or not isinstance(body.get("Operations"), list):
        raise InvalidRequest(f"A PatchOp needs schemas [{PATCH_SCHEMA}] and an Operations list")
    active: bool | None = None
    for op in body["Operations"]:
        if not isinstance(op, dict) or str(op.get("op", "")).lower() not in ("replace", "add"):
            raise InvalidRequest("Only replace operations on active are supported")
        value = op.get("value")
        if str(op.get("path") or "").lower() == "active":
            value = {"active": value}
        flag = value.get("active") if isinstance(value, dict) else None
        if isinstance(flag, str) and flag.lower() in ("true", "false"):
            flag = flag.lower() == "true"  # Entra ID sends "False"
        if not isinstance(flag, bool):
            raise InvalidRequest("Only replace operations on active are supported")
        active = flag
    if active is None:
        raise InvalidRequest("No operation given")
    return _set_active(services, auth, userId, active)


@router.put(f"{BASE}/Users/{{userId}}", include_in_schema=False)
async def scim_users_replace(userId: str, request: Request, auth: OrgAuthDep, services: ServicesDep) -> dict[str, Any]:
    body = await _json(request)
    active = body.get("active", True)
    if not isinstance(active, bool):
        raise InvalidRequest("active must be a boolean")
    return _set_active(services, auth, userId, active)
