"""Project settings, LLM connections tab: the provider endpoints evaluators call (adapter, base URL,
an API key that is write-only and shown masked, extra headers, custom model names), a "Test
connection" button (htmx) and the project's default evaluation model.

Everyone in the project may look; ADMIN and up change anything (as in Langfuse). The rules live in
owlscope.evals.connections, which the public API uses too.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope.errors import InvalidRequest, OwlscopeError
from owlscope.evals.connections import (
    NOT_FOUND,
    audit_summary,
    connection_shape,
    delete_connection,
    get_connection,
    get_default_model,
    judge_model,
    list_connections,
    set_default_model,
    test_saved_connection,
    upsert_connection,
)
from owlscope.evals.errors import EvalNotFound
from owlscope.evals.judge import DEFAULT_MODELS
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, audit_action, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render
from owlscope.wire import PageRequest

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]
ADAPTER_CHOICES = (
    ("openai", "OpenAI-compatible (OpenAI, LiteLLM, vLLM, Ollama, ...)"),
    ("azure", "Azure OpenAI"),
    ("anthropic", "Anthropic"),
)


def split_models(text: str) -> list[str]:
    return [m.strip() for m in (text or "").replace("\n", ",").split(",") if m.strip()]


def parse_headers(text: str) -> dict[str, str]:
    """`Name: value` per line."""
    out: dict[str, str] = {}
    for i, line in enumerate(ln for ln in (text or "").splitlines() if ln.strip()):
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise InvalidRequest(f"Extra header line {i + 1} must look like 'Name: value'")
        out[name.strip()] = value.strip()
    return out


def all_connections(services: WebServices, project_id: str) -> list[dict[str, Any]]:
    return list(list_connections(services.sessions, project_id, PageRequest(1, 100)).data)


def _connection(services: WebServices, project_id: str, connection_id: str) -> dict[str, Any]:
    with services.sessions() as s:
        row = get_connection(s, project_id, connection_id=connection_id)
        if row is None:
            raise EvalNotFound(NOT_FOUND)
        return connection_shape(row)


def _base(ctx: ProjectContext) -> str:
    return f"{ctx.url}/settings/llm-connections"


def _list_page(request: Request, ctx: ProjectContext, services: WebServices, *, default_error: str | None = None,
               status: int = 200, area: str = "settings") -> Response:
    """The list, under the project settings' tabs or (area="evals") under the evaluation tabs."""
    return render(request, "evals/connections.html", {
        "connections": all_connections(services, ctx.project.id),
        "default_model": get_default_model(services.sessions, ctx.project.id),
        "default_error": default_error, "tab": "llm-connections", "active_nav": area, "area": area,
        "adapter_labels": {"openai": "OpenAI-compatible", "azure": "Azure OpenAI", "anthropic": "Anthropic"},
    }, status_code=status)


def _form_page(request: Request, *, existing: dict[str, Any] | None, form: dict[str, Any],
               error: str | None = None, status: int = 200) -> Response:
    return render(request, "evals/connection_form.html", {
        "existing": existing, "form": form, "error": error, "adapters": ADAPTER_CHOICES,
        "default_models": DEFAULT_MODELS, "tab": "llm-connections", "active_nav": "settings",
    }, status_code=status)


@router.get("/project/{project_id}/settings/llm-connections")
def connections_page(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    return _list_page(request, ctx, services)


@router.get("/project/{project_id}/evals/llm-connections")
def evals_connections_page(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    """The same list as a tab of the evaluation pages (the judge models evaluators call)."""
    require_role(ctx, "VIEWER")
    return _list_page(request, ctx, services, area="evals")


@router.get("/project/{project_id}/settings/llm-connections/new")
def connection_new(request: Request, ctx: ProjectCtx) -> Response:
    require_role(ctx, "ADMIN")
    form = {"provider": "", "adapter": "openai", "base_url": "", "custom_models": "", "extra_headers": ""}
    return _form_page(request, existing=None, form=form)


def _save(request: Request, ctx: ProjectContext, services: WebServices, existing: dict[str, Any] | None,
          form: dict[str, Any], api_key: str, clear_headers: bool) -> Response:
    try:
        headers = parse_headers(form["extra_headers"])
        if existing is not None and (not api_key.strip() or (not headers and existing["extraHeaderKeys"]
                                                             and not clear_headers)):
            with services.sessions() as s:  # write-only secrets: blank keeps what is stored
                stored = judge_model(services.settings, get_connection(s, ctx.project.id,
                                                                       connection_id=existing["id"]), "")
            api_key = api_key if api_key.strip() else stored.api_key
            if not headers and not clear_headers:
                headers = dict(stored.headers)
        saved = upsert_connection(services.sessions, services.settings, ctx.project.id, {
            "provider": existing["provider"] if existing else form["provider"].strip(),
            "adapter": form["adapter"], "secretKey": api_key.strip(), "baseURL": form["base_url"].strip() or None,
            "customModels": split_models(form["custom_models"]), "extraHeaders": headers or None,
        })
    except OwlscopeError as exc:
        return _form_page(request, existing=existing, form=form, error=exc.message, status=exc.status)
    audit_action(request, ctx, "llm_connection.updated" if existing else "llm_connection.created", "llm_connection",
                 saved["id"], before=audit_summary(existing), after=audit_summary(saved))
    flash(request, f"LLM connection {saved['provider']} saved.")
    return redirect(request, _base(ctx))


@router.post("/project/{project_id}/settings/llm-connections")
def connection_create(
    request: Request, ctx: ProjectCtx, services: WebServices, provider: FormStr = "", adapter: FormStr = "openai",
    base_url: FormStr = "", api_key: FormStr = "", custom_models: FormStr = "", extra_headers: FormStr = "",
) -> Response:
    require_role(ctx, "ADMIN")
    form = {"provider": provider, "adapter": adapter, "base_url": base_url, "custom_models": custom_models,
            "extra_headers": extra_headers}
    if any(c["provider"] == provider.strip() for c in all_connections(services, ctx.project.id)):
        return _form_page(request, existing=None, form=form, status=409,
                          error=f"A connection named {provider.strip()!r} exists already; edit it instead.")
    return _save(request, ctx, services, None, form, api_key, False)


@router.post("/project/{project_id}/settings/llm-connections/default-model")
def default_model_save(
    request: Request, ctx: ProjectCtx, services: WebServices, provider: FormStr = "", model: FormStr = "",
) -> Response:
    require_role(ctx, "ADMIN")
    try:
        set_default_model(services.sessions, ctx.project.id, provider=provider, model=model)
    except OwlscopeError as exc:
        return _list_page(request, ctx, services, default_error=exc.message, status=exc.status)
    flash(request, f"Default evaluation model set to {provider} / {model.strip()}.")
    return redirect(request, _base(ctx))


@router.get("/project/{project_id}/settings/llm-connections/{connection_id}/edit")
def connection_edit(request: Request, connection_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "ADMIN")
    existing = _connection(services, ctx.project.id, connection_id)
    form = {"provider": existing["provider"], "adapter": existing["adapter"], "base_url": existing["baseURL"] or "",
            "custom_models": ", ".join(existing["customModels"]), "extra_headers": ""}
    return _form_page(request, existing=existing, form=form)


@router.post("/project/{project_id}/settings/llm-connections/{connection_id}")
def connection_update(
    request: Request, connection_id: str, ctx: ProjectCtx, services: WebServices, adapter: FormStr = "openai",
    base_url: FormStr = "", api_key: FormStr = "", custom_models: FormStr = "", extra_headers: FormStr = "",
    clear_headers: FormStr = "",
) -> Response:
    require_role(ctx, "ADMIN")
    existing = _connection(services, ctx.project.id, connection_id)
    form = {"provider": existing["provider"], "adapter": adapter, "base_url": base_url,
            "custom_models": custom_models, "extra_headers": extra_headers}
    return _save(request, ctx, services, existing, form, api_key, bool(clear_headers))


@router.post("/project/{project_id}/settings/llm-connections/{connection_id}/delete")
def connection_delete(request: Request, connection_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "ADMIN")
    existing = _connection(services, ctx.project.id, connection_id)
    delete_connection(services.sessions, ctx.project.id, connection_id)
    audit_action(request, ctx, "llm_connection.deleted", "llm_connection", connection_id,
                 before=audit_summary(existing))
    flash(request, f"LLM connection {existing['provider']} deleted. Evaluators that used it are paused.")
    return redirect(request, _base(ctx))


@router.post("/project/{project_id}/settings/llm-connections/{connection_id}/test")
def connection_test(
    request: Request, connection_id: str, ctx: ProjectCtx, services: WebServices, model: FormStr = "",
) -> Response:
    require_role(ctx, "ADMIN")
    result = test_saved_connection(services.sessions, services.settings, ctx.project.id, connection_id,
                                   model=model.strip() or None)
    return render(request, "evals/_connection_test.html", {"result": result, "connection_id": connection_id})
