"""Project settings, Privacy tab: the custom masking rules applied at ingestion (ADMIN edits), the
instance detectors, and a live preview of a pasted sample."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope.data_retention import erase, retention_days, set_retention
from owlscope.errors import OwlscopeError
from owlscope.pipeline.masking import add_rule, delete_rule, list_rules, preview, rule_summary
from owlscope.privacy import parse_detectors
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, audit_action, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]
SAMPLE = ('{"input": "Contact jane@example.com or +44 20 7946 0958", '
          '"metadata": {"customer": {"ssn": "078-05-1120", "card": "4111 1111 1111 1111"}}}')


def _page(request: Request, ctx: ProjectContext, services: WebServices, *, status: int = 200,
          **extra: Any) -> Response:
    values = {"tab": "privacy", "retention_days": retention_days(services, ctx.project.id), "active_nav": "settings", "rules": list_rules(services.sessions, ctx.project.id),
              "detectors": parse_detectors(services.settings.masking_detectors), "sample": SAMPLE,
              "form": {"kind": "regex", "target": "", "replacement": "<REDACTED>"}, "error": None,
              "masked": preview(services, ctx.project.id, SAMPLE), **extra}
    return render(request, "project/settings_privacy.html", values, status_code=status)


@router.get("/project/{project_id}/settings/privacy")
def privacy_settings(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    return _page(request, ctx, services)


@router.post("/project/{project_id}/settings/privacy/rules")
def privacy_rule_add(request: Request, ctx: ProjectCtx, services: WebServices, kind: FormStr = "regex",
                     target: FormStr = "", replacement: FormStr = "<REDACTED>") -> Response:
    require_role(ctx, "ADMIN")
    try:
        rule = add_rule(services, ctx.project.id, kind=kind, target=target, replacement=replacement)
    except OwlscopeError as exc:
        return _page(request, ctx, services, status=exc.status, rule_error=exc.message,
                     form={"kind": kind, "target": target, "replacement": replacement})
    audit_action(request, ctx, "masking_rule.created", "masking_rule", rule["id"], after=rule_summary(rule))
    flash(request, "Masking rule added; it applies to events received from now on.")
    return redirect(request, f"{ctx.url}/settings/privacy")


@router.post("/project/{project_id}/settings/privacy/rules/{rule_id}/delete")
def privacy_rule_delete(request: Request, rule_id: str, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "ADMIN")
    before = next((r for r in list_rules(services.sessions, ctx.project.id) if r["id"] == rule_id), None)
    delete_rule(services, ctx.project.id, rule_id)
    audit_action(request, ctx, "masking_rule.deleted", "masking_rule", rule_id, before=rule_summary(before))
    flash(request, "Masking rule deleted.")
    return redirect(request, f"{ctx.url}/settings/privacy")


@router.post("/project/{project_id}/settings/privacy/retention")
def privacy_retention(request: Request, ctx: ProjectCtx, services: WebServices, days: FormStr = "") -> Response:
    require_role(ctx, "ADMIN")
    try:
        value = int(days.strip() or 0)
    except ValueError:
        return _page(request, ctx, services, status=400, retention_error="Enter a whole number of days (0 keeps "
                     "everything).", retention_value=days)
    before = retention_days(services, ctx.project.id)
    try:
        stored = set_retention(services, ctx.project.id, value)
    except OwlscopeError as exc:
        return _page(request, ctx, services, status=exc.status, retention_error=exc.message, retention_value=days)
    audit_action(request, ctx, "retention.changed", "project", ctx.project.id,
                 before={"retention_days": before}, after={"retention_days": stored})
    flash(request, f"Data older than {stored} days is deleted." if stored else "All data is kept.")
    return redirect(request, f"{ctx.url}/settings/privacy")


@router.post("/project/{project_id}/settings/privacy/erase")
def privacy_erase(request: Request, ctx: ProjectCtx, services: WebServices, kind: FormStr = "user",
                  value: FormStr = "") -> Response:
    """Erasure: every trace of a user or a session, with observations, scores, media, raw events."""
    require_role(ctx, "ADMIN")
    value = value.strip()
    if kind not in ("user", "session") or not value:
        return _page(request, ctx, services, status=400, erase_error="Enter a user id or a session id.")
    deleted = erase(services, ctx.project.id, **({"user_id": value} if kind == "user" else {"session_id": value}))
    audit_action(request, ctx, f"{kind}.erased", kind, value, after={"deleted_traces": deleted})
    flash(request, f"Deleted {deleted} trace{'' if deleted == 1 else 's'} of {kind} {value} with their "
                   "observations, scores, media and raw events.")
    return redirect(request, f"{ctx.url}/settings/privacy")


@router.post("/project/{project_id}/settings/privacy/preview")
def privacy_preview(request: Request, ctx: ProjectCtx, services: WebServices, sample: FormStr = "",
                    kind: FormStr = "", target: FormStr = "", replacement: FormStr = "<REDACTED>") -> Response:
    """The pasted sample as it would be stored, with the saved rules and the rule being drafted."""
    require_role(ctx, "MEMBER")
    try:
        masked, error = preview(services, ctx.project.id, sample[:100_000], kind=kind, target=target,
                                replacement=replacement), None
    except OwlscopeError as exc:
        masked, error = None, exc.message
    return render(request, "project/_privacy_preview.html", {"masked": masked, "error": error})
