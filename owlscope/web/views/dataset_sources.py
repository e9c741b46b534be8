"""Adding to a dataset from tracing: one trace or observation through a dialog (its input, and its
output as the expected output, editable; the link to the source is kept), or many traces at once.

    GET/POST /project/{pid}/datasets/add-from-trace?trace_id=T[&observation_id=O][&next=URL]
    POST     /project/{pid}/datasets/add-from-traces   trace_ids=T1&trace_ids=T2 (or trace_id=..., or one field,
             comma/space/newline separated), dataset_id | new_dataset, next

For htmx requests the GET answers the dialog alone (`<dialog open class="owl-dialog">`, append it
to <body>), and a successful POST answers the dialog's "added" state; otherwise whole pages and
redirects (to `next` when it is a local path, else to the dataset).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope.datasets.items import upsert_item
from owlscope.datasets.olap_reads import observations_by_key, trace_summaries
from owlscope.datasets.store import create_dataset, list_datasets
from owlscope.datasets.uploads import add_items_from_traces
from owlscope.errors import InvalidRequest, NotFound, OwlscopeError
from owlscope.pipeline.masking import masker_for
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import is_htmx, redirect, render, safe_next
from owlscope.web.views import dataset_parts as parts
from owlscope.wire import PageRequest

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
MAX_BULK = 1000
_IDS = re.compile(r"[\s,]+")


def _datasets(services: WebServices, project_id: str) -> list[dict[str, Any]]:
    data, _ = list_datasets(services.sessions, project_id=project_id, paging=PageRequest(1, 1000))
    return sorted(data, key=lambda d: d["name"].lower())


def _target(services: WebServices, ctx: ProjectContext, dataset_id: str, new_dataset: str) -> dict[str, Any]:
    """The chosen dataset, or a new one named `new_dataset`."""
    if new_dataset.strip():
        name = new_dataset.strip()
        if any(d["name"] == name for d in _datasets(services, ctx.project.id)):
            raise InvalidRequest(f"A dataset named {name!r} already exists: choose it from the list")
        return create_dataset(services.sessions, project_id=ctx.project.id, name=name)
    if not dataset_id:
        raise InvalidRequest("Choose a dataset, or name a new one")
    return parts.dataset_by_id(services, ctx.project.id, dataset_id)


def _source(services: WebServices, project_id: str, trace_id: str, observation_id: str) -> dict[str, Any]:
    if not trace_id:
        raise InvalidRequest("trace_id is required")
    if observation_id:
        found = observations_by_key(services.olap, project_id, [(trace_id, observation_id)]).get(
            (trace_id, observation_id))
        what = f"Observation {observation_id!r} of trace {trace_id!r}"
    else:
        found = trace_summaries(services.olap, project_id, [trace_id]).get(trace_id)
        what = f"Trace {trace_id!r}"
    if found is None:
        raise NotFound(f"{what} not found (it may still be processing)")
    return found


def _dialog(
    request: Request, ctx: ProjectContext, services: WebServices, values: dict[str, Any], *, status: int = 200,
) -> Response:
    values = {"datasets": _datasets(services, ctx.project.id), "error": None, "added": None, **values}
    template = "datasets/_add_dialog.html" if is_htmx(request) else "datasets/add_from_trace.html"
    return render(request, template, values, status_code=status)


@router.get("/project/{project_id}/datasets/add-from-trace")
def add_from_trace_form(
    request: Request, ctx: ProjectCtx, services: WebServices, trace_id: str = "", observation_id: str = "",
    next: str = "",
) -> Response:
    require_role(ctx, "MEMBER")
    src = _source(services, ctx.project.id, trace_id, observation_id)
    form = {"trace_id": trace_id, "observation_id": observation_id, "dataset_id": "", "new_dataset": "",
            "input": parts.as_text(src["input"]), "expected_output": parts.as_text(src["output"]),
            "metadata": "", "next": safe_next(next, "")}
    return _dialog(request, ctx, services, {"form": form, "mode": "one"})


@router.post("/project/{project_id}/datasets/add-from-trace")
def add_from_trace(
    request: Request, ctx: ProjectCtx, services: WebServices, trace_id: FormStr = "", observation_id: FormStr = "",
    dataset_id: FormStr = "", new_dataset: FormStr = "", input: FormStr = "", expected_output: FormStr = "",
    metadata: FormStr = "", next: FormStr = "",
) -> Response:
    require_role(ctx, "MEMBER")
    form = {"trace_id": trace_id, "observation_id": observation_id, "dataset_id": dataset_id,
            "new_dataset": new_dataset, "input": input, "expected_output": expected_output, "metadata": metadata,
            "next": safe_next(next, "")}
    try:
        _source(services, ctx.project.id, trace_id, observation_id)
        values = (parts.parse_value(input, "Input"), parts.parse_value(expected_output, "Expected output"),
                  parts.parse_value(metadata, "Metadata"))
        ds = _target(services, ctx, dataset_id, new_dataset)
        item = upsert_item(services.sessions, masker=masker_for(services, ctx.project.id), project_id=ctx.project.id,
                           dataset_name=ds["name"], input=values[0], expected_output=values[1], metadata=values[2],
                           source_trace_id=trace_id, source_observation_id=observation_id or None)
    except OwlscopeError as exc:
        return _dialog(request, ctx, services, {"form": form, "mode": "one", "error": exc.message},
                       status=exc.status)
    if is_htmx(request):
        return _dialog(request, ctx, services, {"form": form, "mode": "one", "added": {"dataset": ds, "count": 1,
                                                                                        "item": item}})
    flash(request, f"Added to dataset {ds['name']}.")
    return redirect(request, safe_next(next, f"{ctx.url}/datasets/{ds['id']}"))


def split_ids(values: list[str]) -> list[str]:
    """Trace ids from repeated fields, each possibly a comma/space/newline separated list."""
    return list(dict.fromkeys(i for v in values for i in _IDS.split(v) if i))


@router.post("/project/{project_id}/datasets/add-from-traces")
def add_from_traces(
    request: Request, ctx: ProjectCtx, services: WebServices, trace_ids: FormList = [],  # noqa: B006
    dataset_id: FormStr = "", new_dataset: FormStr = "", next: FormStr = "", choose: FormStr = "",
    trace_id: FormList = [],  # noqa: B006 - the traces table's row checkboxes (name=trace_id)
) -> Response:
    require_role(ctx, "MEMBER")
    ids = split_ids([*trace_ids, *trace_id])
    form = {"trace_ids": ids, "dataset_id": dataset_id, "new_dataset": new_dataset, "next": safe_next(next, "")}
    values: dict[str, Any] = {"form": form, "mode": "many"}
    if not ids:
        return _dialog(request, ctx, services, {**values, "error": "Select the traces to add"}, status=400)
    if len(ids) > MAX_BULK:
        return _dialog(request, ctx, services, {**values, "error": f"Add at most {MAX_BULK} traces at once"},
                       status=400)
    if not choose and not dataset_id and not new_dataset.strip():
        return _dialog(request, ctx, services, values)  # first step: choose the dataset
    try:
        missing = [t for t in ids if t not in trace_summaries(services.olap, ctx.project.id, ids)]
        if missing:  # checked before a new dataset is created: nothing is written then
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise NotFound(f"Trace {missing[0]!r} not found{more}")
        ds = _target(services, ctx, dataset_id, new_dataset)
        added = add_items_from_traces(services.sessions, services.olap, masker=masker_for(services, ctx.project.id),
                                      project_id=ctx.project.id,
                                      dataset_name=ds["name"], sources=[(t, None) for t in ids])
    except OwlscopeError as exc:
        return _dialog(request, ctx, services, {**values, "error": exc.message}, status=exc.status)
    if is_htmx(request):
        return _dialog(request, ctx, services, {**values, "added": {"dataset": ds, "count": len(added)}})
    flash(request, f"Added {len(added)} trace{'s' if len(added) != 1 else ''} to dataset {ds['name']}.")
    return redirect(request, safe_next(next, f"{ctx.url}/datasets/{ds['id']}"))
