"""A dataset's runs and experiments: the runs table (items, average scores, latency, cost), the
item-by-item comparison of two or more runs, and prompt experiments started from the UI (a prompt
version × an LLM connection and model × the dataset × evaluators) with their progress.

Run names are free text, so they travel as query or form fields (`?runs=a&runs=b`), never in
the path. Everyone in the project may look; MEMBER and up start experiments and delete runs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from owlscope.datasets.analysis import compare_runs, runs_table
from owlscope.datasets.items import list_items
from owlscope.datasets.prompt_experiment import prompt_experiment_status, start_prompt_experiment
from owlscope.datasets.runs import delete_run
from owlscope.errors import InvalidRequest, NotFound, OwlscopeError
from owlscope.evals.connections import list_connections
from owlscope.evals.evaluators import list_evaluators
from owlscope.evals.judge import DEFAULT_MODELS
from owlscope.prompts import prompt_store
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, audit_action, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import is_htmx, redirect, render
from owlscope.web.views import dataset_parts as parts
from owlscope.web.views.prompt_parts import prompt_variables
from owlscope.wire import PageRequest

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
MAX_COMPARE = 6
MAX_CONCURRENCY = 16


def _base(ctx: ProjectContext, dataset_id: str) -> str:
    return f"{ctx.url}/datasets/{dataset_id}"


# ---- runs and comparison ------------------------------------------------------------------------
@router.get("/project/{project_id}/datasets/{dataset_id}/runs")
def runs(request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    table = runs_table(services.sessions, services.olap, project_id=ctx.project.id, dataset_name=ds["name"])
    score_names = sorted({n for r in table for n in r["avgScores"]})
    counts = parts.dataset_counts(services, ctx.project.id, [ds["id"]])[ds["id"]]
    return render(request, "datasets/runs.html", {
        "dataset": ds, "runs": table, "score_names": score_names, "counts": counts, "tab": "runs",
        "max_compare": MAX_COMPARE,
    })


@router.get("/project/{project_id}/datasets/{dataset_id}/compare")
def compare(
    request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices,
    runs: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies defaults
    only_diff: str = "",
) -> Response:
    require_role(ctx, "VIEWER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    names = list(dict.fromkeys(r for r in runs if r))
    if not names:  # e.g. "Compare" with nothing checked: back to the runs, with a word why
        flash(request, "Choose at least one run to compare.", "error")
        return redirect(request, f"{ctx.url}/datasets/{dataset_id}/runs")
    if len(names) > MAX_COMPARE:
        raise InvalidRequest(f"Compare at most {MAX_COMPARE} runs at once")
    result = compare_runs(services.sessions, services.olap, project_id=ctx.project.id, dataset_name=ds["name"],
                          run_names=names)
    summary = {r["name"]: r for r in runs_table(services.sessions, services.olap, project_id=ctx.project.id,
                                                dataset_name=ds["name"]) if r["name"] in names}
    rows = parts.compare_rows(result["items"], names)
    rows = [r for r in rows if any(r["runs"].values())]  # items none of the runs has are left out
    differing = sum(1 for r in rows if r["differs"])
    if only_diff:
        rows = [r for r in rows if r["differs"]]
    return render(request, "datasets/compare.html", {
        "dataset": ds, "run_names": names, "runs": result["runs"], "summary": summary, "rows": rows,
        "differing": differing, "only_diff": bool(only_diff), "tab": "runs", "as_text": parts.as_text,
        "output_text": parts.output_text,
    })


@router.post("/project/{project_id}/datasets/{dataset_id}/runs/delete")
def run_delete(
    request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices, run: FormStr = "",
) -> Response:
    require_role(ctx, "MEMBER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    delete_run(services.sessions, project_id=ctx.project.id, dataset_name=ds["name"], run_name=run)
    audit_action(request, ctx, "dataset_run.deleted", "dataset_run", run, before={"dataset": ds["name"]})
    flash(request, f"Run {run} deleted (its traces and scores stay).")
    return redirect(request, f"{_base(ctx, ds['id'])}/runs")


# ---- prompt experiments -------------------------------------------------------------------------
def _choices(services: WebServices, project_id: str) -> dict[str, Any]:
    """What the experiment form offers: prompt versions, LLM connections (with their models) and
    evaluators. The evals package may be absent or unfinished: then those lists are empty."""
    store = prompt_store(services)
    prompts = []
    page = 1
    while True:
        got = store.list(project_id, page=page, limit=1000)
        prompts += [{"name": p["name"], "versions": sorted(p["versions"], reverse=True), "labels": p["labels"]}
                    for p in got["data"]]
        if page >= got["meta"]["totalPages"]:
            break
        page += 1
    connections: list[dict[str, Any]] = []
    for c in list_connections(services.sessions, project_id, PageRequest(1, 100)).data:
        models = list(c["customModels"])
        if c["withDefaultModels"] and DEFAULT_MODELS.get(c["adapter"]):
            models.append(DEFAULT_MODELS[c["adapter"]])
        connections.append({**c, "models": list(dict.fromkeys(models))})
    rows, _ = list_evaluators(services.sessions, project_id, limit=200)
    evaluators = [{"id": e.id, "name": e.name, "scoreName": e.score_name, "status": e.status} for e in rows]
    return {"prompts": prompts, "connections": connections, "evaluators": evaluators}


def _form_page(
    request: Request, ctx: ProjectContext, services: WebServices, ds: dict[str, Any], form: dict[str, Any], *,
    error: str | None = None, status: int = 200,
) -> Response:
    choices = _choices(services, ctx.project.id)
    if not form["connection_id"] and len(choices["connections"]) == 1:  # the obvious choice
        form = {**form, "connection_id": choices["connections"][0]["id"]}
    if not form["model"]:
        chosen = [c for c in choices["connections"] if c["id"] == form["connection_id"]]
        form = {**form, "model": chosen[0]["models"][0] if chosen and chosen[0]["models"] else ""}
    values = {"dataset": ds, "form": form, "error": error, "tab": "runs", **choices,
              **_variables_check(services, ctx, ds, form.get("prompt") or "")}
    return render(request, "datasets/experiment_form.html", values, status_code=status)


@router.get("/project/{project_id}/datasets/{dataset_id}/experiments/new")
def experiment_new(
    request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices, prompt: str = "", version: str = "",
) -> Response:
    require_role(ctx, "MEMBER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    form = {"prompt": f"{prompt}|{version}" if prompt and version else prompt, "connection_id": "", "model": "",
            "run_name": "", "description": "", "evaluators": [], "concurrency": "4", "model_params": ""}
    return _form_page(request, ctx, services, ds, form)


@router.post("/project/{project_id}/datasets/{dataset_id}/experiments/new")
def experiment_start(
    request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices, prompt: FormStr = "",
    connection_id: FormStr = "", model: FormStr = "", run_name: FormStr = "", description: FormStr = "",
    evaluators: FormList = [], concurrency: FormStr = "4", model_params: FormStr = "",  # noqa: B006
) -> Response:
    require_role(ctx, "MEMBER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    form = {"prompt": prompt, "connection_id": connection_id, "model": model, "run_name": run_name,
            "description": description, "evaluators": list(evaluators), "concurrency": concurrency,
            "model_params": model_params}
    try:
        name, version = _prompt_choice(prompt)
        if not connection_id:
            raise InvalidRequest("Choose an LLM connection")
        if not model.strip():
            raise InvalidRequest("Name the model to call, e.g. gpt-4o-mini")
        params = parts.parse_schema(model_params, "Model parameters")  # a JSON object, or None
        try:
            workers = int(concurrency or 4)
        except ValueError:
            raise InvalidRequest("Concurrency must be a whole number") from None
        if not 1 <= workers <= MAX_CONCURRENCY:
            raise InvalidRequest(f"Concurrency must be from 1 to {MAX_CONCURRENCY}")
        run = run_name.strip() or f"{name.rsplit('/', 1)[-1]}-v{version}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        job_id = start_prompt_experiment(
            services, project_id=ctx.project.id, prompt_name=name, prompt_version=version,
            connection_id=connection_id, model=model.strip(), dataset_name=ds["name"], run_name=run,
            evaluator_ids=list(evaluators), concurrency=workers, model_params=params,
            description=description.strip() or None,
        )
    except OwlscopeError as exc:
        return _form_page(request, ctx, services, ds, form, error=exc.message, status=exc.status)
    flash(request, f"Experiment {run} started.")
    return redirect(request, f"{_base(ctx, ds['id'])}/experiments/{job_id}")


@router.get("/project/{project_id}/datasets/{dataset_id}/experiments/check")
def experiment_check(
    request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices, prompt: str = "",
) -> Response:
    """The chosen prompt version's variables and how many active items have each (a partial)."""
    require_role(ctx, "VIEWER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    return render(request, "datasets/_variables_check.html", _variables_check(services, ctx, ds, prompt))


def _variables_check(services: WebServices, ctx: ProjectContext, ds: dict[str, Any], prompt: str) -> dict[str, Any]:
    try:
        name, version = _prompt_choice(prompt)
        chosen = prompt_store(services).get(ctx.project.id, name, version=version, resolve_refs=False)
    except OwlscopeError:
        return {"check": None}
    variables, placeholders = prompt_variables(chosen)
    items, meta = list_items(services.sessions, project_id=ctx.project.id, dataset_name=ds["name"], status="ACTIVE",
                             paging=PageRequest(1, 1000))
    keys = [set(it["input"]) if isinstance(it["input"], dict) else set() for it in items]
    needed = variables + placeholders
    return {"check": {
        "variables": variables, "placeholders": placeholders, "items": meta["totalItems"],
        "have": {v: sum(v in k for k in keys) for v in needed}, "checked": len(items),
    }}


def _prompt_choice(value: str) -> tuple[str, int]:
    name, sep, version = value.rpartition("|")
    if not sep or not name or not version.isdigit():
        raise InvalidRequest("Choose a prompt version")
    return name, int(version)


def _status(services: WebServices, ctx: ProjectContext, ds: dict[str, Any], job_id: str) -> dict[str, Any]:
    if not re.fullmatch(r"[0-9a-f]{32}", job_id):
        raise NotFound(f"prompt experiment {job_id!r} not found")
    status = prompt_experiment_status(services, project_id=ctx.project.id, job_id=job_id)
    if status.get("datasetName") != ds["name"]:
        raise NotFound(f"prompt experiment {job_id!r} not found in this dataset")
    total, done = status.get("total"), status.get("done") or 0
    status["percent"] = int(100 * done / total) if total else 0
    status["finished"] = status.get("status") in ("completed", "failed")
    return status


@router.get("/project/{project_id}/datasets/{dataset_id}/experiments/{job_id}")
def experiment_status(
    request: Request, dataset_id: str, job_id: str, ctx: ProjectCtx, services: WebServices,
) -> Response:
    require_role(ctx, "VIEWER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    values = {"dataset": ds, "job": _status(services, ctx, ds, job_id), "job_id": job_id, "tab": "runs"}
    template = "datasets/_experiment_progress.html" if is_htmx(request) else "datasets/experiment_status.html"
    return render(request, template, values)
