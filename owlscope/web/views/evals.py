"""Evaluators (LLM-as-a-judge): the list with execution counts and backfill progress, the form (template,
target — traces, observations or experiment items —, filter, sampling, delay, score name, variable
mapping, scope) with a preview of the filled prompt for a real target (htmx), the same form to edit an
evaluator (with "also run on existing ..." to re-score), an evaluator's page (executions,
enable/disable, resume, backfill with a polled progress bar), and the judge templates (built-in
read-only, custom with versions).

As in Langfuse, ADMIN and up manage evaluators and templates; MEMBER and VIEWER read. The rules live in
owlscope.evals (plain functions the public API uses too).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from owlscope import audit
from owlscope.datasets.store import list_datasets
from owlscope.errors import InvalidRequest, OwlscopeError
from owlscope.evals.evaluators import (
    EvaluatorSpec,
    backfill_progress,
    create_evaluator,
    delete_evaluator,
    evaluator_shape,
    execution_counts,
    get_evaluator,
    keep_default_mapping,
    list_evaluators,
    list_executions,
    preview_evaluator,
    resume_evaluator,
    set_enabled,
    start_backfill,
    update_evaluator,
)
from owlscope.evals.templates import (
    create_template,
    get_template,
    latest_by_family,
    list_template_versions,
    list_templates,
)
from owlscope.tracing.scores import scores_by
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, audit_action, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render
from owlscope.web.views import eval_parts as parts
from owlscope.wire import PageRequest

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
PAGE_SIZE = 50
AUDITED = ("name", "enabled", "template_family_id", "sampling", "time_scope", "filter")



def _templates(services: WebServices, project_id: str) -> list[Any]:
    rows, _ = list_templates(services.sessions, project_id, limit=500)
    return rows


def _template_named(services: WebServices, project_id: str, name: str) -> Any:
    return next((t for t in _templates(services, project_id) if name in (t.name, t.family_id)), None)


def evaluator_form(
    name: FormStr = "", template: FormStr = "", target: FormStr = "trace", obs_type: FormStr = "",
    obs_name: FormStr = "", obs_model: FormStr = "", obs_level: FormStr = "", meta_key: FormStr = "",
    meta_value: FormStr = "", datasets: FormList = [], f_name: FormStr = "", f_user: FormStr = "",  # noqa: B006
    f_session: FormStr = "", f_environment: FormStr = "", f_release: FormStr = "", f_version: FormStr = "",
    tags: FormStr = "", sampling: FormStr = "1", delay: FormStr = "10", score_name: FormStr = "",
    scope: FormStr = "new", extra_filter: FormStr = "", rescore: FormStr = "",
    map_variable: FormList = [], map_object: FormList = [], map_name: FormList = [],  # noqa: B006 - FastAPI copies
    map_source: FormList = [], map_path: FormList = [], trace_id: FormStr = "",  # noqa: B006
) -> parts.EvaluatorForm:
    return parts.EvaluatorForm(
        name=name, template=template, target=target, obs_type=obs_type, obs_name=obs_name, obs_model=obs_model,
        obs_level=obs_level, meta_key=meta_key, meta_value=meta_value, datasets=list(datasets),
        filters={"f_name": f_name, "f_user": f_user, "f_session": f_session, "f_environment": f_environment,
                 "f_release": f_release, "f_version": f_version},
        tags=tags, sampling=sampling, delay=delay, score_name=score_name, scope=scope, trace_id=trace_id,
        mapping=parts.zip_mapping(map_variable, map_object, map_name, map_source, map_path),
        extra_filter=extra_filter, rescore=bool(rescore),
    )


FormDep = Annotated[parts.EvaluatorForm, Depends(evaluator_form)]


# ---- the list -----------------------------------------------------------------------------------
@router.get("/project/{project_id}/evals")
def evaluators_list(request: Request, ctx: ProjectCtx, services: WebServices, page: int = 1) -> Response:
    require_role(ctx, "VIEWER")
    page = max(page, 1)
    rows, total = list_evaluators(services.sessions, ctx.project.id, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    by_family = {t.family_id: t for t in _templates(services, ctx.project.id)}
    evaluators = []
    for ev in rows:
        shape = evaluator_shape(ev, by_family.get(ev.template_family_id))
        shape["counts"] = execution_counts(services.sessions, ctx.project.id, ev.id)
        shape["filterText"] = parts.filter_text(ev.filter)
        if ev.backfill_status:
            shape["backfill"] = backfill_progress(services.sessions, ctx.project.id, ev.id)
        evaluators.append(shape)
    return render(request, "evals/list.html", {
        "evaluators": evaluators, "total": total, "page": page, "pages": max(1, -(-total // PAGE_SIZE)),
        "active_nav": "evals", "tab": "evaluators",
    })


# ---- templates ----------------------------------------------------------------------------------
@router.get("/project/{project_id}/evals/templates")
def templates_list(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    views = [parts.template_view(t) for t in _templates(services, ctx.project.id)]
    return render(request, "evals/templates.html", {
        "builtin": [t for t in views if t["managed"]], "custom": [t for t in views if not t["managed"]],
        "active_nav": "evals", "tab": "templates",
    })


def _template_form_page(request: Request, form: dict[str, Any], existing: dict[str, Any] | None, *,
                        error: str | None = None, status: int = 200) -> Response:
    return render(request, "evals/template_form.html", {
        "form": form, "existing": existing, "error": error, "data_types": ("NUMERIC", "BOOLEAN", "CATEGORICAL"),
        "active_nav": "evals",
    }, status_code=status)


@router.get("/project/{project_id}/evals/templates/new")
def template_new(request: Request, ctx: ProjectCtx, services: WebServices, base: str = "") -> Response:
    require_role(ctx, "ADMIN")
    source = get_template(services.sessions, ctx.project.id, base) if base else None
    existing = parts.template_view(source) if source is not None and not source.managed else None
    form = parts.template_form(source)
    if source is not None and source.managed:
        form["name"] = f"{source.name}-custom"
    return _template_form_page(request, form, existing)


@router.post("/project/{project_id}/evals/templates/new")
def template_create(
    request: Request, ctx: ProjectCtx, services: WebServices, name: FormStr = "", prompt: FormStr = "",
    data_type: FormStr = "NUMERIC", reasoning: FormStr = "", score: FormStr = "", min_value: FormStr = "",
    max_value: FormStr = "", categories: FormStr = "", multiple: FormStr = "", provider: FormStr = "",
    model: FormStr = "",
) -> Response:
    require_role(ctx, "ADMIN")
    form = {"name": name, "prompt": prompt, "data_type": data_type, "reasoning": reasoning, "score": score,
            "min_value": min_value, "max_value": max_value, "categories": categories, "multiple": bool(multiple),
            "provider": provider, "model": model}
    latest = next((t for t in _templates(services, ctx.project.id) if t.name == name.strip()), None)
    existing = parts.template_view(latest) if latest is not None and not latest.managed else None
    try:
        if latest is not None and latest.managed:
            raise InvalidRequest(f"{name.strip()!r} is a built-in template; choose another name")
        defn = parts.output_definition_from_form(data_type, reasoning, score, min_value, max_value, categories,
                                                 bool(multiple))
        row = create_template(services.sessions, ctx.project.id, name=name, prompt=prompt, output_definition=defn,
                              provider=provider.strip() or None, model=model.strip() or None)
    except OwlscopeError as exc:
        return _template_form_page(request, form, existing, error=exc.message, status=exc.status)
    audit_action(request, ctx, "eval_template.created", "eval_template", row.family_id,
           after=audit.pick(row, "name", "version", "provider", "model"))
    flash(request, f"Saved version {row.version} of template {row.name}.")
    return redirect(request, f"{ctx.url}/evals/templates/{row.family_id}")


@router.get("/project/{project_id}/evals/templates/{family_id}")
def template_page(request: Request, family_id: str, ctx: ProjectCtx, services: WebServices,
                  version: int | None = None) -> Response:
    require_role(ctx, "VIEWER")
    latest = get_template(services.sessions, ctx.project.id, family_id)
    versions = list_template_versions(services.sessions, ctx.project.id, latest.family_id)
    selected = next((v for v in versions if v.version == version), latest) if version else latest
    return render(request, "evals/template_detail.html", {
        "template": parts.template_view(selected), "latest": parts.template_view(latest),
        "versions": [parts.template_view(v) for v in versions], "active_nav": "evals",
    })


# ---- the evaluator form -------------------------------------------------------------------------
def _datasets(services: WebServices, project_id: str) -> list[dict[str, Any]]:
    rows, _ = list_datasets(services.sessions, project_id=project_id, paging=PageRequest(1, 500))
    return rows


def _form_page(request: Request, ctx: ProjectContext, services: WebServices, form: parts.EvaluatorForm, *,
               error: str | None = None, status: int = 200, editing: dict[str, Any] | None = None) -> Response:
    all_templates = _templates(services, ctx.project.id)
    chosen = next((t for t in all_templates if form.template in (t.name, t.family_id)), None)
    if chosen is None and all_templates:
        chosen = all_templates[0]
    form.template = chosen.name if chosen else ""
    return render(request, "evals/form.html", {
        "form": form, "error": error, "templates": [parts.template_view(t) for t in all_templates],
        "chosen": parts.template_view(chosen) if chosen else None, "editing": editing,
        "rows": parts.mapping_rows(chosen, form.target, form.mapping), "objects": parts.object_choices(form.target),
        "sources": parts.sources_for(form.target), "filter_fields": parts.FILTER_FIELDS, "obs_types": parts.OBS_TYPES,
        "levels": parts.LEVELS, "targets": parts.TARGETS, "datasets": _datasets(services, ctx.project.id),
        "extra_filter_text": parts.filter_text(parts.extra_conditions(form)),
        "active_nav": "evals",
    }, status_code=status)


@router.get("/project/{project_id}/evals/new")
def evaluator_new(request: Request, ctx: ProjectCtx, services: WebServices, template: str = "hallucination",
                  target: str = "trace") -> Response:
    require_role(ctx, "ADMIN")
    return _form_page(request, ctx, services, parts.EvaluatorForm(template=template, target=target))


@router.get("/project/{project_id}/evals/new/mapping")
def evaluator_mapping(request: Request, ctx: ProjectCtx, services: WebServices, template: str = "",
                      target: str = "trace", score_name: str = "") -> Response:
    """The mapping rows for a template and target (htmx, when either changes), and the score name
    field again (out of band): its placeholder is the chosen template's name."""
    require_role(ctx, "ADMIN")
    chosen = _template_named(services, ctx.project.id, template)
    return render(request, "evals/_mapping.html", {
        "chosen": parts.template_view(chosen) if chosen else None, "rows": parts.mapping_rows(chosen, target),
        "objects": parts.object_choices(target), "sources": parts.sources_for(target),
        "form": parts.EvaluatorForm(score_name=score_name), "oob": True,
    })


@router.post("/project/{project_id}/evals/new")
def evaluator_create(request: Request, ctx: ProjectCtx, services: WebServices, form: FormDep) -> Response:
    require_role(ctx, "ADMIN")
    try:
        row = create_evaluator(services, ctx.project.id, parts.build_spec(form))
    except OwlscopeError as exc:
        return _form_page(request, ctx, services, form, error=exc.message, status=exc.status)
    audit_action(request, ctx, "evaluator.created", "evaluator", row.id, after=audit.pick(row, *AUDITED))
    flash(request, f"Evaluator {row.name} created.")
    return redirect(request, f"{ctx.url}/evals/{row.id}")


@router.post("/project/{project_id}/evals/preview")
def evaluator_preview(request: Request, ctx: ProjectCtx, services: WebServices, form: FormDep) -> Response:
    """The filled prompt for the latest matching trace (or the given one), before saving (htmx)."""
    require_role(ctx, "ADMIN")
    try:
        spec = parts.build_spec(form)
        spec.pop("name", None)
        result = preview_evaluator(services, ctx.project.id, EvaluatorSpec(**spec),
                                   trace_id=form.trace_id.strip() or None)
        error = None
    except OwlscopeError as exc:
        result, error = None, exc.message
    return render(request, "evals/_preview.html", {"preview": result, "error": error})


@router.get("/project/{project_id}/evals/{evaluator_id}/edit")
def evaluator_edit(request: Request, evaluator_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "ADMIN")
    ev = _evaluator(services, ctx.project.id, evaluator_id)
    row = get_evaluator(services.sessions, ctx.project.id, evaluator_id)
    form = parts.form_from_evaluator(row, ev["templateName"] or ev["templateId"])
    return _form_page(request, ctx, services, form, editing=ev)


@router.post("/project/{project_id}/evals/{evaluator_id}/edit")
def evaluator_save(request: Request, evaluator_id: str, ctx: ProjectCtx, services: WebServices,
                   form: FormDep) -> Response:
    """Save a changed configuration: what was scored keeps its score unless "also run on existing"
    is checked (then a backfill judges every match again with the new configuration)."""
    require_role(ctx, "ADMIN")
    ev = _evaluator(services, ctx.project.id, evaluator_id)
    before = audit.pick(get_evaluator(services.sessions, ctx.project.id, evaluator_id), *AUDITED)
    try:
        spec = parts.build_spec(form)
        spec["mapping"] = keep_default_mapping(services, ctx.project.id, evaluator_id, spec)
        row = update_evaluator(services, ctx.project.id, evaluator_id, spec, rescore=form.rescore)
    except OwlscopeError as exc:
        return _form_page(request, ctx, services, form, error=exc.message, status=exc.status, editing=ev)
    audit_action(request, ctx, "evaluator.updated", "evaluator", row.id, before=before,
                 after={**audit.pick(row, *AUDITED), "rescore": bool(form.rescore)})
    flash(request, f"Evaluator {row.name} saved." + (
        f" Running on existing {parts.TARGETS[row.target]} again." if form.rescore else ""))
    return redirect(request, f"{ctx.url}/evals/{row.id}")


# ---- an evaluator -------------------------------------------------------------------------------
def _evaluator(services: WebServices, project_id: str, evaluator_id: str) -> dict[str, Any]:
    ev = get_evaluator(services.sessions, project_id, evaluator_id)
    with services.sessions() as s:
        template = latest_by_family(s, project_id, ev.template_family_id)
    shape = evaluator_shape(ev, template)
    shape.update(filterText=parts.filter_text(ev.filter), scope=parts.scope_key(ev.time_scope),
                 backfillError=ev.backfill_error)
    return shape


def _progress(services: WebServices, project_id: str, evaluator_id: str) -> dict[str, Any]:
    p = backfill_progress(services.sessions, project_id, evaluator_id)
    p["percent"] = int(100 * p["done"] / p["scheduled"]) if p["scheduled"] else (100 if p["status"] == "done" else 0)
    p["active"] = p["status"] in ("queued", "running") or (
        p["status"] == "done" and p["done"] < p["scheduled"])
    return p


def _with_score_values(services: WebServices, project_id: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each execution with the value of the score it wrote (`scoreValue`, None when not found)."""
    ids = [r["scoreId"] for r in rows if r["scoreId"]]
    values: dict[str, Any] = {}
    if ids:
        for sid, (score, *_) in scores_by(services.olap, project_id, "id", ids).items():
            value, data_type = score["value"], score["data_type"]
            values[sid] = score["string_value"] if data_type == "CATEGORICAL" else (
                ("true" if value else "false") if data_type == "BOOLEAN" else f"{value:g}")
    return [{**r, "scoreValue": values.get(r["scoreId"])} for r in rows]


@router.get("/project/{project_id}/evals/{evaluator_id}")
def evaluator_page(request: Request, evaluator_id: str, ctx: ProjectCtx, services: WebServices,
                   status: str = "", page: int = 1) -> Response:
    require_role(ctx, "VIEWER")
    ev = _evaluator(services, ctx.project.id, evaluator_id)
    executions = list_executions(services.sessions, ctx.project.id, evaluator_id, status=status or None,
                                 page=PageRequest(max(page, 1), PAGE_SIZE))
    return render(request, "evals/detail.html", {
        "ev": ev, "executions": executions, "status": status,
        "rows": _with_score_values(services, ctx.project.id, executions.data),
        "counts": execution_counts(services.sessions, ctx.project.id, evaluator_id),
        "progress": _progress(services, ctx.project.id, evaluator_id) if ev["backfillStatus"] else None,
        "active_nav": "evals",
    })


@router.get("/project/{project_id}/evals/{evaluator_id}/progress")
def evaluator_progress(request: Request, evaluator_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    return render(request, "evals/_progress.html", {
        "ev": {"id": evaluator_id}, "progress": _progress(services, ctx.project.id, evaluator_id),
        "counts": execution_counts(services.sessions, ctx.project.id, evaluator_id),
    })


@router.post("/project/{project_id}/evals/{evaluator_id}/enabled")
def evaluator_enabled(request: Request, evaluator_id: str, ctx: ProjectCtx, services: WebServices,
                      enabled: FormStr = "1") -> Response:
    require_role(ctx, "ADMIN")
    before = audit.pick(get_evaluator(services.sessions, ctx.project.id, evaluator_id), *AUDITED)
    row = set_enabled(services, ctx.project.id, evaluator_id, enabled != "0")
    audit_action(request, ctx, "evaluator.updated", "evaluator", row.id, before=before,
           after=audit.pick(row, *AUDITED))
    flash(request, f"Evaluator {row.name} {'enabled' if row.enabled else 'disabled'}.")
    return redirect(request, f"{ctx.url}/evals/{evaluator_id}")


@router.post("/project/{project_id}/evals/{evaluator_id}/resume")
def evaluator_resume(request: Request, evaluator_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "ADMIN")
    row = resume_evaluator(services, ctx.project.id, evaluator_id)
    audit_action(request, ctx, "evaluator.updated", "evaluator", row.id, after={"resumed": True})
    flash(request, f"Evaluator {row.name} resumed.")
    return redirect(request, f"{ctx.url}/evals/{evaluator_id}")


@router.post("/project/{project_id}/evals/{evaluator_id}/backfill")
def evaluator_backfill(request: Request, evaluator_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "ADMIN")
    ev = get_evaluator(services.sessions, ctx.project.id, evaluator_id)
    if not ev.enabled:
        raise InvalidRequest("Enable the evaluator before starting a backfill")
    if "EXISTING" in (ev.time_scope or []):
        start_backfill(services, ctx.project.id, ev.id)
    else:  # adding EXISTING to the scope starts the backfill
        update_evaluator(services, ctx.project.id, ev.id, {"time_scope": [*ev.time_scope, "EXISTING"]})
    flash(request, f"Backfill of {ev.name} started: the stored {parts.TARGETS.get(ev.target, 'traces')} that match "
                   "are being evaluated.")
    audit_action(request, ctx, "evaluator.updated", "evaluator", ev.id, after={"backfill": True})
    return redirect(request, f"{ctx.url}/evals/{evaluator_id}")


@router.post("/project/{project_id}/evals/{evaluator_id}/delete")
def evaluator_delete(request: Request, evaluator_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "ADMIN")
    ev = get_evaluator(services.sessions, ctx.project.id, evaluator_id)
    delete_evaluator(services.sessions, ctx.project.id, evaluator_id)
    audit_action(request, ctx, "evaluator.deleted", "evaluator", ev.id, before=audit.pick(ev, *AUDITED))
    flash(request, f"Evaluator {ev.name} deleted; the scores it wrote stay.")
    return redirect(request, f"{ctx.url}/evals")
