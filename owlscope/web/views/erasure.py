"""Deleting data from the UI (OWNER and ADMIN), with the same domain functions as the API.

- Erasure: the button on the user and session pages opens a dialog where the id must be typed
  again; the POST runs what DELETE /api/public/users/{userId} and /sessions/{sessionId} run
  (owlscope.data_retention.erase).
- "Delete selected" on the traces list: the checked rows (`trace_id` fields) go the way of
  DELETE /api/public/traces (owlscope.data_retention.delete_trace_data)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope.data_retention import MAX_TRACES_PER_DELETE, delete_trace_data, erase
from owlscope.errors import InvalidRequest
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, audit_action, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import is_htmx, redirect, render, safe_next

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
KINDS = {"user": "users", "session": "sessions"}


def _checked(kind: str, object_id: str) -> None:
    if kind not in KINDS:
        raise InvalidRequest("Only a user's or a session's data can be erased here")
    if not object_id:
        raise InvalidRequest(f"Give the {kind} id to erase")


def _dialog(request: Request, ctx: ProjectContext, values: dict[str, Any], status: int = 200) -> Response:
    kind = values["kind"]
    values = {**values, "list_url": f"{ctx.url}/{KINDS[kind]}",
              "page_url": f"{ctx.url}/{KINDS[kind]}/{quote(values['id'], safe='')}"}
    template = "erasure/_dialog.html" if is_htmx(request) else "erasure/page.html"
    return render(request, template, values, status_code=status)


@router.get("/project/{project_id}/erase")
def erase_dialog(request: Request, ctx: ProjectCtx, kind: str = "", id: str = "") -> Response:
    require_role(ctx, "ADMIN")
    _checked(kind, id)
    return _dialog(request, ctx, {"kind": kind, "id": id})


@router.post("/project/{project_id}/erase")
def erase_submit(request: Request, ctx: ProjectCtx, services: WebServices, kind: FormStr = "", id: FormStr = "",
                 confirm: FormStr = "") -> Response:
    require_role(ctx, "ADMIN")
    _checked(kind, id)
    if confirm.strip() != id:
        return _dialog(request, ctx, {"kind": kind, "id": id, "confirm": confirm,
                                      "error": f"Type the {kind} id exactly, {id}, to confirm."}, status=400)
    deleted = erase(services, ctx.project.id, **({"user_id": id} if kind == "user" else {"session_id": id}))
    audit_action(request, ctx, f"{kind}.erased", kind, id, after={"deleted_traces": deleted})
    message = (f"Erased {kind} {id}: {deleted} trace{'' if deleted == 1 else 's'} deleted with their "
               "observations, scores, media and raw events.")
    if is_htmx(request):
        return _dialog(request, ctx, {"kind": kind, "id": id, "done": message})
    flash(request, message)
    return redirect(request, f"{ctx.url}/{KINDS[kind]}")


@router.post("/project/{project_id}/traces/delete")
def traces_delete(request: Request, ctx: ProjectCtx, services: WebServices,
                  trace_id: FormList = [], next: FormStr = "") -> Response:  # noqa: B006 - FastAPI copies
    """Delete the selected traces with their observations, scores, media and raw events."""
    require_role(ctx, "ADMIN")
    ids = list(dict.fromkeys(i.strip() for i in trace_id if i.strip()))
    if not ids:
        raise InvalidRequest("Select the traces to delete")
    if len(ids) > MAX_TRACES_PER_DELETE:
        raise InvalidRequest(f"Delete at most {MAX_TRACES_PER_DELETE} traces at once")
    delete_trace_data(services, ctx.project.id, ids)
    audit_action(request, ctx, "trace.deleted", "trace", ids[0] if len(ids) == 1 else None,
                 before={"trace_ids": ids})
    flash(request, f"Deleted {len(ids)} trace{'' if len(ids) == 1 else 's'} with their observations, scores "
                   "and media.")
    return redirect(request, safe_next(next, f"{ctx.url}/traces"))
