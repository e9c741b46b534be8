"""Prompts API (`/api/public/v2/prompts`): list, create a version, get, relabel, delete.

Names with folders arrive URL-encoded (`team%2Fsummarize`); the server decodes the path before
routing, so every route takes the name with a `path` converter. The PATCH route
(`.../{name}/versions/{version}`) is registered first; a GET or DELETE of a prompt whose name
happens to end in `/versions/N` still reaches its own route, because routing matches the method.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse, Response

from owlscope import audit
from owlscope.api.deps import ActorDep, AuthDep, ServicesDep
from owlscope.api.schemas import Prompt, PromptMetaListResponse, typed
from owlscope.errors import InvalidRequest
from owlscope.prompts import parse_create, prompt_store

router = APIRouter()

_BASE = "/api/public/v2/prompts"


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@router.patch(_BASE + "/{prompt_name:path}/versions/{version}", **typed(Prompt))
def update_prompt_version(
    prompt_name: str, version: int, auth: AuthDep, services: ServicesDep, actor: ActorDep,
    body: Annotated[Any, Body()] = None,
) -> dict:
    """Add labels to one version; each label leaves any other version of the prompt."""
    if not isinstance(body, dict) or "newLabels" not in body:
        raise InvalidRequest("body must be an object with newLabels: a list of labels")
    updated = prompt_store(services).update_labels(auth.project_id, prompt_name, version, body["newLabels"])
    audit.record_in(services.sessions, actor, "prompt.labels_changed", org_id=auth.org_id,
                    project_id=auth.project_id, resource_type="prompt", resource_id=prompt_name,
                    after={"version": version, "labels": updated.get("labels", [])})
    return updated


@router.get(_BASE, **typed(PromptMetaListResponse))
def list_prompts(
    auth: AuthDep, services: ServicesDep,
    name: str | None = None, label: str | None = None, tag: str | None = None,
    page: int = 1, limit: int = 50,
    from_updated_at: Annotated[datetime | None, Query(alias="fromUpdatedAt")] = None,
    to_updated_at: Annotated[datetime | None, Query(alias="toUpdatedAt")] = None,
    filter: str | None = None,  # noqa: A002 - the API's parameter name
) -> dict:
    if filter:
        raise InvalidRequest("the 'filter' parameter is not supported; use name, label, tag, fromUpdatedAt, toUpdatedAt")
    return prompt_store(services).list(
        auth.project_id, name=name, label=label, tag=tag, from_updated_at=_utc(from_updated_at),
        to_updated_at=_utc(to_updated_at), page=page, limit=limit,
    )


@router.post(_BASE, **typed(Prompt))
def create_prompt(auth: AuthDep, services: ServicesDep, actor: ActorDep,
                  body: Annotated[Any, Body()] = None) -> dict:
    """A new version of the named prompt (version 1 for a new name)."""
    created = prompt_store(services).create(auth.project_id, parse_create(body), created_by="API")
    audit.record_in(services.sessions, actor, "prompt.created", org_id=auth.org_id, project_id=auth.project_id,
                    resource_type="prompt", resource_id=created["name"],
                    after={"version": created["version"], "labels": created.get("labels", [])})
    return created


@router.get(_BASE + "/{prompt_name:path}", **typed(Prompt))
def get_prompt(
    prompt_name: str, auth: AuthDep, services: ServicesDep,
    version: int | None = None, label: str | None = None, resolve: bool = True,
) -> Response:
    """One version by version or label (neither: `production`), references resolved unless
    `resolve=false`. Resolved answers come from the server-side cache."""
    store = prompt_store(services)
    if not resolve:
        return JSONResponse(store.get(auth.project_id, prompt_name, version=version, label=label,
                                      resolve_refs=False))
    if version is not None and label is not None:
        raise InvalidRequest("Give version or label, not both")
    body = store.get_json(auth.project_id, prompt_name, version=version, label=label)
    return Response(content=body, media_type="application/json")


@router.delete(_BASE + "/{prompt_name:path}", status_code=204, **typed(None))
def delete_prompt(
    prompt_name: str, auth: AuthDep, services: ServicesDep, actor: ActorDep,
    version: int | None = None, label: str | None = None,
) -> Response:
    """Delete all versions, one version (`?version=`), or the version with a label (`?label=`)."""
    deleted = prompt_store(services).delete(auth.project_id, prompt_name, version=version, label=label)
    audit.record_in(services.sessions, actor, "prompt.deleted", org_id=auth.org_id, project_id=auth.project_id,
                    resource_type="prompt", resource_id=prompt_name,
                    before={"version": version, "label": label, "versions_deleted": deleted})
    return Response(status_code=204)
