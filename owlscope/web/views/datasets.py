"""Datasets: the list and the create form (with optional JSON schemas), a dataset's items (add,
edit, archive, delete), CSV/JSON upload with a column mapping, settings, and "add to dataset"
from a trace or observation (a dialog) or from many traces at once.

Everyone in the project may look; MEMBER and up change datasets and items. Runs, the comparison
of runs and experiments are in experiments.py. The rules live in owlscope.datasets, which the
public API uses too.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import Response

from owlscope.datasets.items import delete_item, get_item, list_items, upsert_item
from owlscope.datasets.store import create_dataset, delete_dataset, list_datasets, update_dataset
from owlscope.datasets.uploads import MAX_UPLOAD_BYTES, bulk_add_items, parse_upload, upload_columns
from owlscope.errors import InvalidRequest, NotFound, OwlscopeError, PayloadTooLarge
from owlscope.pipeline.masking import masked_upload, masker_for
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, audit_action, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render
from owlscope.web.views import dataset_parts as parts
from owlscope.web.views.dataset_sources import router as sources_router
from owlscope.wire import PageRequest

router = APIRouter(include_in_schema=False)
router.include_router(sources_router)  # /datasets/add-from-trace(s): before /datasets/{dataset_id}

FormStr = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
PAGE_SIZE = 50
STATUS_FILTERS = ("active", "archived", "all")


def dataset_url(ctx: ProjectContext, dataset_id: str, suffix: str = "") -> str:
    return f"{ctx.url}/datasets/{dataset_id}{suffix}"


# ---- list and create ----------------------------------------------------------------------------
@router.get("/project/{project_id}/datasets")
def datasets_list(request: Request, ctx: ProjectCtx, services: WebServices, page: int = 1) -> Response:
    require_role(ctx, "VIEWER")
    data, meta = list_datasets(services.sessions, project_id=ctx.project.id, paging=PageRequest(max(page, 1), PAGE_SIZE))
    counts = parts.dataset_counts(services, ctx.project.id, [d["id"] for d in data])
    return render(request, "datasets/list.html", {"datasets": data, "meta": meta, "counts": counts})


def _dataset_form(
    request: Request, form: dict[str, str], *, dataset: dict[str, Any] | None = None, error: str | None = None,
    status: int = 200, template: str = "datasets/form.html",
) -> Response:
    return render(request, template, {"form": form, "dataset": dataset, "error": error, "tab": "settings"},
                  status_code=status)


def _form_of(ds: dict[str, Any] | None) -> dict[str, str]:
    ds = ds or {}
    return {"name": ds.get("name", ""), "description": ds.get("description") or "",
            "metadata": parts.as_text(ds.get("metadata")), "input_schema": parts.as_text(ds.get("inputSchema")),
            "expected_output_schema": parts.as_text(ds.get("expectedOutputSchema"))}


@router.get("/project/{project_id}/datasets/new")
def dataset_new(request: Request, ctx: ProjectCtx) -> Response:
    require_role(ctx, "MEMBER")
    return _dataset_form(request, _form_of(None))


@router.post("/project/{project_id}/datasets/new")
def dataset_create(
    request: Request, ctx: ProjectCtx, services: WebServices, name: FormStr = "", description: FormStr = "",
    metadata: FormStr = "", input_schema: FormStr = "", expected_output_schema: FormStr = "",
) -> Response:
    require_role(ctx, "MEMBER")
    form = {"name": name, "description": description, "metadata": metadata, "input_schema": input_schema,
            "expected_output_schema": expected_output_schema}
    try:
        if not name.strip():
            raise InvalidRequest("Give the dataset a name")
        if any(d["name"] == name.strip() for d in _all_datasets(services, ctx.project.id)):
            raise InvalidRequest(f"A dataset named {name.strip()!r} already exists")
        created = create_dataset(
            services.sessions, project_id=ctx.project.id, name=name.strip(), description=description.strip() or None,
            metadata=parts.parse_value(metadata, "Metadata"),
            input_schema=parts.parse_schema(input_schema, "Input schema"),
            expected_output_schema=parts.parse_schema(expected_output_schema, "Expected output schema"),
        )
    except OwlscopeError as exc:
        return _dataset_form(request, form, error=exc.message, status=exc.status)
    flash(request, f"Dataset {created['name']} created.")
    return redirect(request, dataset_url(ctx, created["id"]))


def _all_datasets(services: WebServices, project_id: str) -> list[dict[str, Any]]:
    data, _ = list_datasets(services.sessions, project_id=project_id, paging=PageRequest(1, 1000))
    return data


# ---- a dataset: items ---------------------------------------------------------------------------
@router.get("/project/{project_id}/datasets/{dataset_id}")
def dataset_page(
    request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices, status: str = "active", page: int = 1,
) -> Response:
    require_role(ctx, "VIEWER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    status = status if status in STATUS_FILTERS else "active"
    items, meta = list_items(services.sessions, project_id=ctx.project.id, dataset_name=ds["name"],
                             status=None if status == "all" else status.upper(), paging=PageRequest(max(page, 1), PAGE_SIZE))
    counts = parts.dataset_counts(services, ctx.project.id, [ds["id"]])[ds["id"]]
    return render(request, "datasets/detail.html", {
        "dataset": ds, "items": items, "meta": meta, "status": status, "counts": counts, "tab": "items",
        "as_text": parts.as_text,
    })


def _item_form(
    request: Request, ds: dict[str, Any], form: dict[str, str], *, item: dict[str, Any] | None,
    error: str | None = None, status: int = 200,
) -> Response:
    return render(request, "datasets/item_form.html", {"dataset": ds, "form": form, "item": item, "error": error,
                                                       "tab": "items"}, status_code=status)


@router.get("/project/{project_id}/datasets/{dataset_id}/items/new")
def item_new(request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    return _item_form(request, ds, {"input": "", "expected_output": "", "metadata": ""}, item=None)


@router.get("/project/{project_id}/datasets/{dataset_id}/items/edit")
def item_edit(request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices, id: str = "") -> Response:
    require_role(ctx, "VIEWER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    item = _item_of(services, ctx.project.id, ds, id)
    form = {"input": parts.as_text(item["input"]), "expected_output": parts.as_text(item["expectedOutput"]),
            "metadata": parts.as_text(item["metadata"])}
    return _item_form(request, ds, form, item=item)


def _item_of(services: WebServices, project_id: str, ds: dict[str, Any], item_id: str) -> dict[str, Any]:
    item = get_item(services.sessions, project_id=project_id, item_id=item_id)
    if item["datasetId"] != ds["id"]:
        raise NotFound(f"Dataset item {item_id!r} not found in dataset {ds['name']!r}")
    return item


@router.post("/project/{project_id}/datasets/{dataset_id}/items/save")
def item_save(
    request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices, item_id: FormStr = "",
    input: FormStr = "", expected_output: FormStr = "", metadata: FormStr = "",
) -> Response:
    require_role(ctx, "MEMBER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    item = _item_of(services, ctx.project.id, ds, item_id) if item_id else None
    form = {"input": input, "expected_output": expected_output, "metadata": metadata}
    try:
        saved = upsert_item(
            services.sessions, masker=masker_for(services, ctx.project.id), project_id=ctx.project.id,
            dataset_name=ds["name"], item_id=item_id or None, input=parts.parse_value(input, "Input"),
            expected_output=parts.parse_value(expected_output, "Expected output"),
            metadata=parts.parse_value(metadata, "Metadata"),
        )
    except OwlscopeError as exc:
        return _item_form(request, ds, form, item=item, error=exc.message, status=exc.status)
    flash(request, f"Item {saved['id'][:8]}… {'saved' if item else 'added'}.")
    return redirect(request, dataset_url(ctx, ds["id"]))


@router.post("/project/{project_id}/datasets/{dataset_id}/items/archive")
def item_archive(
    request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices, item_id: FormStr = "",
    archived: FormStr = "1", next: FormStr = "",
) -> Response:
    require_role(ctx, "MEMBER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    _item_of(services, ctx.project.id, ds, item_id)
    archive = archived != "0"
    upsert_item(services.sessions, masker=None, project_id=ctx.project.id,  # the status alone: no text
                dataset_name=ds["name"], item_id=item_id, status="ARCHIVED" if archive else "ACTIVE")
    flash(request, f"Item {item_id[:8]}… {'archived: experiments skip it' if archive else 'restored'}.")
    return redirect(request, _back(ctx, ds, next))


@router.post("/project/{project_id}/datasets/{dataset_id}/items/delete")
def item_delete(
    request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices, item_id: FormStr = "",
    next: FormStr = "",
) -> Response:
    require_role(ctx, "MEMBER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    _item_of(services, ctx.project.id, ds, item_id)
    delete_item(services.sessions, project_id=ctx.project.id, item_id=item_id)
    audit_action(request, ctx, "dataset_item.deleted", "dataset_item", item_id, before={"dataset": ds["name"]})
    flash(request, f"Item {item_id[:8]}… deleted.")
    return redirect(request, _back(ctx, ds, next))


def _back(ctx: ProjectContext, ds: dict[str, Any], next_url: str) -> str:
    base = dataset_url(ctx, ds["id"])
    return next_url if next_url.startswith(base) and "//" not in next_url else base


# ---- upload -------------------------------------------------------------------------------------
@router.get("/project/{project_id}/datasets/{dataset_id}/upload")
def upload_form(request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    return render(request, "datasets/upload.html", {"dataset": ds, "tab": "items"})


def _mapping_page(
    request: Request, ds: dict[str, Any], upload_id: str, data: bytes, filename: str, *,
    choices: list[str] | None = None, error: str | None = None, status: int = 200,
) -> Response:
    columns = upload_columns(data)
    rows = parse_upload(data, {"input": columns})
    preview = [r["input"] if len(columns) > 1 else {columns[0]: r["input"]} for r in rows[:5]]
    return render(request, "datasets/upload_mapping.html", {
        "dataset": ds, "upload_id": upload_id, "filename": filename, "columns": columns, "row_count": len(rows),
        "preview": preview, "choices": choices or parts.default_mapping(columns), "error": error, "tab": "items",
        "as_text": parts.as_text,
    }, status_code=status)


@router.post("/project/{project_id}/datasets/{dataset_id}/upload")
def upload_file(
    request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    require_role(ctx, "MEMBER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    try:
        if file is None or not file.filename:
            raise InvalidRequest("Choose a CSV or JSON file to upload")
        data = file.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        upload_columns(data)  # a file that cannot be read is refused before it is kept
        data = masked_upload(services, data)  # kept until imported: never the original values
        upload_id = uuid.uuid4().hex
        services.blobs.put(parts.upload_key(ctx.project.id, upload_id), data)
        return _mapping_page(request, ds, upload_id, data, file.filename)
    except OwlscopeError as exc:
        return render(request, "datasets/upload.html", {"dataset": ds, "tab": "items", "error": exc.message},
                      status_code=exc.status)
    except UnicodeDecodeError:
        return render(request, "datasets/upload.html", {
            "dataset": ds, "tab": "items", "error": "The file is not UTF-8 text: save it as CSV (UTF-8) or JSON"},
            status_code=400)


@router.post("/project/{project_id}/datasets/{dataset_id}/upload/{upload_id}")
def upload_import(
    request: Request, dataset_id: str, upload_id: str, ctx: ProjectCtx, services: WebServices,
    column: FormList = [], filename: FormStr = "",  # noqa: B006 - FastAPI copies defaults
) -> Response:
    require_role(ctx, "MEMBER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    key = parts.upload_key(ctx.project.id, upload_id)
    try:
        data = services.blobs.get(key)
    except FileNotFoundError:
        raise NotFound("This upload has expired; upload the file again") from None
    columns = upload_columns(data)
    try:
        mapping = parts.mapping_from_form(columns, column)
        added = bulk_add_items(services.sessions, masker=masker_for(services, ctx.project.id),
                               project_id=ctx.project.id, dataset_name=ds["name"],
                               items=parse_upload(data, mapping))
    except OwlscopeError as exc:
        return _mapping_page(request, ds, upload_id, data, filename, choices=list(column) or None, error=exc.message,
                             status=exc.status)
    services.blobs.delete(key)
    flash(request, f"Added {len(added)} item{'s' if len(added) != 1 else ''} from {filename or 'the upload'}.")
    return redirect(request, dataset_url(ctx, ds["id"]))


# ---- settings and delete ------------------------------------------------------------------------
@router.get("/project/{project_id}/datasets/{dataset_id}/settings")
def dataset_settings(request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "VIEWER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    return _dataset_form(request, _form_of(ds), dataset=ds)


@router.post("/project/{project_id}/datasets/{dataset_id}/settings")
def dataset_update(
    request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices, name: FormStr = "",
    description: FormStr = "", metadata: FormStr = "", input_schema: FormStr = "", expected_output_schema: FormStr = "",
) -> Response:
    require_role(ctx, "MEMBER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    form = {"name": name, "description": description, "metadata": metadata, "input_schema": input_schema,
            "expected_output_schema": expected_output_schema}
    try:
        saved = update_dataset(
            services.sessions, project_id=ctx.project.id, name=ds["name"], new_name=name.strip(),
            description=description.strip() or None, metadata=parts.parse_value(metadata, "Metadata"),
            input_schema=parts.parse_schema(input_schema, "Input schema"),
            expected_output_schema=parts.parse_schema(expected_output_schema, "Expected output schema"),
        )
    except OwlscopeError as exc:
        return _dataset_form(request, form, dataset=ds, error=exc.message, status=exc.status)
    flash(request, f"Dataset {saved['name']} saved.")
    return redirect(request, dataset_url(ctx, ds["id"], "/settings"))


@router.post("/project/{project_id}/datasets/{dataset_id}/delete")
def dataset_delete(
    request: Request, dataset_id: str, ctx: ProjectCtx, services: WebServices, confirm_name: FormStr = "",
) -> Response:
    require_role(ctx, "MEMBER")
    ds = parts.dataset_by_id(services, ctx.project.id, dataset_id)
    if confirm_name.strip() != ds["name"]:
        return _dataset_form(request, _form_of(ds), dataset=ds, status=400,
                             error=f"Type the dataset's name ({ds['name']}) to delete it")
    delete_dataset(services.sessions, project_id=ctx.project.id, name=ds["name"])
    audit_action(request, ctx, "dataset.deleted", "dataset", ds["id"], before={"name": ds["name"]})
    flash(request, f"Dataset {ds['name']} deleted with its items and runs.")
    return redirect(request, f"{ctx.url}/datasets")
