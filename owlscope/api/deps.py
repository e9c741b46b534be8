"""Typed dependencies shared by the API routers."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from owlscope import audit
from owlscope.accounts.org_admin import org_projects
from owlscope.audit import Actor, key_actor
from owlscope.auth.keys import AuthenticatedKey
from owlscope.errors import Forbidden, Unauthorized
from owlscope.services import Services
from owlscope.storage.oltp.models import Role


# Dependencies that never block are `async def`: FastAPI runs a plain `def` dependency in a worker
# thread, a hop per dependency per request (2 of a read's 4 hops were these two).
async def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


@dataclass(frozen=True)
class ProjectAuth:
    project_id: str
    org_id: str
    key_id: str
    public_key: str
    scores_only: bool = False  # authenticated by the public key alone: may create scores, nothing else


def _credentials(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Unauthorized(
            "Authorization header missing or not Basic auth: send your public key as the username and "
            "the secret key as the password (LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY)"
        )
    try:
        pk, _, sk = base64.b64decode(value).decode().partition(":")
    except Exception as exc:  # noqa: BLE001
        raise Unauthorized("Authorization header is not valid Basic auth") from exc
    if not pk or not sk:
        raise Unauthorized("Basic auth needs both public key and secret key")
    return pk, sk


PROJECT_KEY_REQUIRED = (
    "This endpoint needs a project API key; an organization API key was sent. Create a project key in "
    "the project's settings (API keys) or with POST /api/public/projects/{projectId}/apiKeys"
)
ORG_KEY_REQUIRED = (
    "Invalid API key. Organization-scoped API key required for this operation: an owner or admin creates "
    "one in the organization settings (API keys); a project API key was sent"
)


def _authenticated_key(services: Services, header: str) -> AuthenticatedKey:
    pk, sk = _credentials(header)
    key = services.keys.authenticate(pk, sk)
    if key is None:
        raise Unauthorized("Invalid credentials: unknown public key or wrong secret key")
    return key


def authenticate_header(services: Services, header: str) -> ProjectAuth:
    """The project of an `Authorization: Basic` value (also the gRPC `authorization` metadata).
    An organization key is refused (403): it acts on no project."""
    return _project_auth(_authenticated_key(services, header))


def _project_auth(key: AuthenticatedKey) -> ProjectAuth:
    if key.is_org_key:
        raise Forbidden(PROJECT_KEY_REQUIRED)
    pk = key.public_key
    return ProjectAuth(project_id=key.project_id, org_id=key.org_id, key_id=key.key_id, public_key=pk)


async def authenticate(request: Request, services: ServicesDep) -> ProjectAuth:
    """A key verified within the cache's TTL is answered on the event loop (an HMAC and a dict
    lookup); any other goes to a worker thread, as it reads the database."""
    header = request.headers.get("authorization", "")
    key = services.keys.cached(*_credentials(header))
    if key is not None:
        return _project_auth(key)
    return await run_in_threadpool(authenticate_header, services, header)


AuthDep = Annotated[ProjectAuth, Depends(authenticate)]


async def api_actor(request: Request, auth: AuthDep) -> Actor:
    """The API key acting through this request, for the audit log."""
    return key_actor(auth.key_id, auth.public_key, ip=request.client.host if request.client else None,
                     user_agent=request.headers.get("user-agent"))


ActorDep = Annotated[Actor, Depends(api_actor)]


def audit_action(services: Services, auth: ProjectAuth, actor: Actor, action: str, resource_type: str,
                 resource_id: str | None, *, before: Any = None, after: Any = None) -> None:
    """Audit an action of the key's project once it succeeded (in a transaction of its own)."""
    audit.record_in(services.sessions, actor, action, org_id=auth.org_id, project_id=auth.project_id,
                    resource_type=resource_type, resource_id=resource_id, before=before, after=after)


async def authenticate_scores(request: Request, services: ServicesDep) -> ProjectAuth:
    """Basic auth, or (score creation only, as Langfuse allows browser clients) `Bearer <public key>`."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return await authenticate(request, services)
    key = await run_in_threadpool(services.keys.authenticate_public_key, value.strip())
    if key is None:
        raise Unauthorized("Invalid credentials: unknown public key")
    return ProjectAuth(project_id=key.project_id, org_id=key.org_id, key_id=key.key_id, public_key=key.public_key,
                       scores_only=True)


ScoreAuthDep = Annotated[ProjectAuth, Depends(authenticate_scores)]


@dataclass(frozen=True)
class OrgAuth:
    """An organization key: the organization it manages and the role it acts with."""

    org_id: str
    key_id: str
    role: Role
    public_key: str = ""


def managed_projects(request: Request, services: ServicesDep) -> list[str]:
    """The projects a key may manage on an organization-level endpoint that also serves project
    keys: every live project of an organization key's organization, or a project key's own."""
    key = _authenticated_key(services, request.headers.get("authorization", ""))
    if not key.is_org_key:
        return [key.project_id]
    with services.sessions() as session:
        return [p.id for p in org_projects(session, org_id=key.org_id)]


ManagedProjectsDep = Annotated[list[str], Depends(managed_projects)]


def authenticate_org(request: Request, services: ServicesDep) -> OrgAuth:
    """Basic auth with an organization key; a project key is refused (403)."""
    key = _authenticated_key(services, request.headers.get("authorization", ""))
    if not key.is_org_key:
        raise Forbidden(ORG_KEY_REQUIRED)
    return OrgAuth(org_id=key.org_id, key_id=key.key_id, role=Role(key.role or Role.ADMIN.value),
                   public_key=key.public_key)


OrgAuthDep = Annotated[OrgAuth, Depends(authenticate_org)]


async def org_actor(request: Request, auth: OrgAuthDep) -> Actor:
    """The organization key acting through this request, for the audit log."""
    return key_actor(auth.key_id, auth.public_key, ip=request.client.host if request.client else None,
                     user_agent=request.headers.get("user-agent"))


OrgActorDep = Annotated[Actor, Depends(org_actor)]
