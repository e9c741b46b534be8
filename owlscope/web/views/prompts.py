"""Prompts: the list (folders split on `/`, search, labels), a prompt's page (versions, the text or
messages, config, commit messages, label editing, a diff of any two versions, per-version metrics,
linked generations, SDK snippets) and the form for a new prompt or version.

Everyone in the project may look; MEMBER and up create versions, move labels and delete. The rules
live in owlscope.prompts (`PromptStore`, `parse_create`), which the public API uses too.

URLs: a prompt's name may contain `/`, so its page is `/prompts/<name>` with the whole rest of the
path as the name, and actions are POSTs to `/prompts/<name>/labels` and `/prompts/<name>/delete`.
`new` is a reserved prompt name: `/prompts/new` is the form.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from owlscope.errors import InvalidRequest, NotFound, OwlscopeError
from owlscope.prompts import parse_create, prompt_store, prompt_version_metrics
from owlscope.tracing.prompt_usage import linked_generations
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, audit_action, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render
from owlscope.web.views import prompt_parts as parts

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
TABS = ("prompt", "diff", "metrics", "generations", "use")
MAX_PROMPTS = 5000


def prompt_url(ctx: ProjectContext, name: str, **query: Any) -> str:
    url = f"{ctx.url}/prompts/{quote(name, safe='/')}"
    pairs = [f"{k}={quote(str(v), safe='')}" for k, v in query.items() if v not in (None, "")]
    return url + ("?" + "&".join(pairs) if pairs else "")


def _all_prompts(services: WebServices, project_id: str, label: str | None = None) -> list[dict[str, Any]]:
    store = prompt_store(services)
    out: list[dict[str, Any]] = []
    page = 1
    while len(out) < MAX_PROMPTS:
        got = store.list(project_id, label=label or None, page=page, limit=1000)
        out += got["data"]
        if page >= got["meta"]["totalPages"]:
            break
        page += 1
    return out


def _int(value: str | int | None, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{what} must be a whole number") from None


# ---- the list -----------------------------------------------------------------------------------
@router.get("/project/{project_id}/prompts")
def prompts_list(
    request: Request, ctx: ProjectCtx, services: WebServices, folder: str = "", q: str = "", label: str = "",
) -> Response:
    require_role(ctx, "VIEWER")
    every = _all_prompts(services, ctx.project.id)
    labels = sorted({lb for p in every for lb in p["labels"]})
    shown = [p for p in every if not label or label in p["labels"]]
    view = parts.folder_view(shown, folder) if not q.strip() else None
    found = parts.search_prompts(shown, q) if q.strip() else None
    return render(request, "prompts/list.html", {
        "view": view, "found": found, "folder": folder.strip("/"), "q": q, "label": label, "labels": labels,
        "total": len(every),
    })


# ---- a new prompt or version --------------------------------------------------------------------
def _form_page(
    request: Request, ctx: ProjectContext, services: WebServices, form: dict[str, Any], *,
    existing: dict[str, Any] | None, error: str | None = None, status: int = 200,
) -> Response:
    return render(request, "prompts/form.html", {
        "form": form, "existing": existing, "error": error, "roles": parts.CHAT_ROLES,
        "prompt_url": prompt_url(ctx, existing["name"]) if existing else None,
    }, status_code=status)


def _latest(services: WebServices, project_id: str, name: str) -> dict[str, Any] | None:
    try:
        return prompt_store(services).versions(project_id, name)[0]
    except NotFound:
        return None


@router.get("/project/{project_id}/prompts/new")
def prompt_new(
    request: Request, ctx: ProjectCtx, services: WebServices, name: str = "", version: str = "", folder: str = "",
) -> Response:
    require_role(ctx, "MEMBER")
    existing = _latest(services, ctx.project.id, name) if name else None
    base = existing
    if existing is not None and version:
        base = prompt_store(services).get(ctx.project.id, name, version=_int(version, "version"), resolve_refs=False)
    form = parts.form_from_version(base, name or (f"{folder.strip('/')}/" if folder.strip("/") else ""))
    return _form_page(request, ctx, services, form, existing=existing)


@router.post("/project/{project_id}/prompts/new")
def prompt_create(
    request: Request, ctx: ProjectCtx, services: WebServices, name: FormStr = "",
    type: FormStr = "text",
    text: FormStr = "", msg_role: FormList = [], msg_content: FormList = [],  # noqa: B006 - FastAPI copies
    config: FormStr = "", labels: FormStr = "", tags: FormStr = "", commit_message: FormStr = "",
) -> Response:
    require_role(ctx, "MEMBER")
    existing = _latest(services, ctx.project.id, name.strip()) if name.strip() else None
    form = {
        "name": name, "type": existing["type"] if existing else (type if type in ("text", "chat") else "text"),
        "text": text, "config": config, "labels": labels, "tags": tags, "commit_message": commit_message,
        "messages": [{"role": msg_role[i] if i < len(msg_role) else "user", "content": c}
                     for i, c in enumerate(msg_content)] or parts.form_from_version(None)["messages"],
    }
    try:
        created = prompt_store(services).create(
            ctx.project.id, parse_create(parts.create_body(form)), created_by=ctx.user.email)
    except OwlscopeError as exc:
        return _form_page(request, ctx, services, form, existing=existing, error=exc.message, status=exc.status)
    audit_action(request, ctx, "prompt.created", "prompt", created["name"],
                 after={"version": created["version"], "labels": created.get("labels", [])})
    what = f"version {created['version']} of" if created["version"] > 1 else "prompt"
    flash(request, f"Created {what} {created['name']}.")
    return redirect(request, prompt_url(ctx, created["name"], version=created["version"]))


# ---- label editing and deletes ------------------------------------------------------------------
@router.post("/project/{project_id}/prompts/{name:path}/labels")
def prompt_labels(
    request: Request, name: str, ctx: ProjectCtx, services: WebServices, version: FormStr = "",
    labels: FormStr = "",
) -> Response:
    require_role(ctx, "MEMBER")
    number = _int(version, "version")
    if number is None:
        raise InvalidRequest("Choose the version whose labels to set")
    wanted = [lb for lb in parts.split_words(labels) if lb != "latest"]
    try:
        prompt_store(services).update_labels(ctx.project.id, name, number, wanted, replace=True)
    except InvalidRequest as exc:
        return _page(request, ctx, services, name, version=number, tab="prompt", label_error=exc.message,
                     label_value=labels, status=exc.status)
    audit_action(request, ctx, "prompt.labels_changed", "prompt", name, after={"version": number, "labels": wanted})
    moved = ", ".join(wanted) if wanted else "none"
    flash(request, f"Labels of version {number} set to: {moved}.")
    return redirect(request, prompt_url(ctx, name, version=number))


@router.post("/project/{project_id}/prompts/{name:path}/delete")
def prompt_delete(
    request: Request, name: str, ctx: ProjectCtx, services: WebServices, version: FormStr = "",
) -> Response:
    require_role(ctx, "MEMBER")
    number = _int(version, "version")
    store = prompt_store(services)
    deleted = store.delete(ctx.project.id, name, version=number)
    audit_action(request, ctx, "prompt.deleted", "prompt", name, before={"version": number, "versions_deleted": deleted})
    if number is not None and _latest(services, ctx.project.id, name) is not None:
        flash(request, f"Deleted version {number} of {name}.")
        return redirect(request, prompt_url(ctx, name))
    flash(request, f"Deleted prompt {name}.")
    folder = name.rsplit("/", 1)[0] if "/" in name else ""
    return redirect(request, f"{ctx.url}/prompts" + (f"?folder={quote(folder, safe='')}" if folder else ""))


# ---- a prompt's page ----------------------------------------------------------------------------
def _page(
    request: Request, ctx: ProjectContext, services: WebServices, name: str, *, version: int | None, tab: str,
    a: int | None = None, b: int | None = None, gen_version: str = "", label_error: str | None = None,
    label_value: str | None = None, status: int = 200,
) -> Response:
    store = prompt_store(services)
    versions = store.versions(ctx.project.id, name)
    by_number = {v["version"]: v for v in versions}
    if version is not None and version not in by_number:
        raise NotFound(f"Prompt '{name}' has no version {version}")
    selected = by_number[version] if version is not None else versions[0]
    tab = tab if tab in TABS else "prompt"
    values: dict[str, Any] = {
        "name": name, "versions": versions, "selected": selected, "tab": tab, "prompt_type": versions[0]["type"],
        "tags": versions[0]["tags"], "url": prompt_url(ctx, name), "label_error": label_error,
        "label_value": label_value if label_value is not None else ", ".join(
            lb for lb in selected["labels"] if lb != "latest"),
        "folder_crumbs": parts.folder_view([], name.rsplit("/", 1)[0] if "/" in name else "").crumbs,
        "leaf": name.rsplit("/", 1)[-1],
    }
    variables, placeholders = parts.prompt_variables(selected)
    values.update(variables=variables, placeholders=placeholders)
    if tab == "prompt":
        values.update(_content(store, ctx.project.id, selected))
    elif tab == "diff":
        old = by_number.get(a) if a is not None else (versions[1] if len(versions) > 1 else versions[0])
        new = by_number.get(b) if b is not None else versions[0]
        if old is None or new is None:
            raise NotFound(f"Prompt '{name}' has no version {a if old is None else b}")
        lines = parts.line_diff(parts.version_text(old), parts.version_text(new))
        config_lines = parts.line_diff(parts.config_text(old["config"]), parts.config_text(new["config"]))
        values.update(old=old, new=new, diff=lines, stats=parts.diff_stats(lines), config_diff=config_lines,
                      config_stats=parts.diff_stats(config_lines))
    elif tab == "metrics":
        metrics = prompt_version_metrics(services.olap, ctx.project.id, name)
        values.update(metrics=metrics, score_names=sorted({n for m in metrics for n in m["scores"]}))
    elif tab == "generations":
        only = _int(gen_version, "version")
        values.update(generations=linked_generations(services.olap, ctx.project.id, name, version=only),
                      gen_version=only)
    else:
        values.update(snippets=parts.sdk_snippets(selected, selected["labels"]))
    return render(request, "prompts/detail.html", values, status_code=status)


def _content(store: Any, project_id: str, selected: dict[str, Any]) -> dict[str, Any]:
    """The selected version's content for display, and its resolved form when it references
    other prompts (@@@langfusePrompt:...@@@)."""
    out: dict[str, Any] = {"config_json": parts.config_text(selected["config"])}
    if selected["type"] == "text":
        out["text_html"] = parts.highlight_variables(str(selected["prompt"]))
    else:
        out["messages"] = [
            {**m, "html": parts.highlight_variables(m.get("content") or "")} for m in selected["prompt"]
        ]
    if "@@@langfusePrompt" in parts.version_text(selected):
        try:
            resolved = store.get(project_id, selected["name"], version=selected["version"])
            out["resolved"] = parts.version_text(resolved)
        except OwlscopeError as exc:
            out["resolve_error"] = exc.message
    return out


@router.get("/project/{project_id}/prompts/{name:path}")
def prompt_page(
    request: Request, name: str, ctx: ProjectCtx, services: WebServices, version: str = "", tab: str = "prompt",
    a: str = "", b: str = "", gen_version: Annotated[str, Query(alias="gen_version")] = "",
) -> Response:
    require_role(ctx, "VIEWER")
    return _page(request, ctx, services, name, version=_int(version, "version"), tab=tab, a=_int(a, "a"),
                 b=_int(b, "b"), gen_version=gen_version)
