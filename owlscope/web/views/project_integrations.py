"""Project settings, Integrations tab: the prompt webhook (URL, a secret shown once, the delivery
log) and the blob storage export's status. ADMIN configures; MEMBER reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from owlscope.errors import OwlscopeError
from owlscope.integrations import exports, webhooks
from owlscope.web.context import ProjectContext, ProjectCtx, WebServices, require_role
from owlscope.web.session_data import flash
from owlscope.web.templating import redirect, render

router = APIRouter(include_in_schema=False)

FormStr = Annotated[str, Form()]


def _page(request: Request, ctx: ProjectContext, services: WebServices, *, status: int = 200,
          **extra: Any) -> Response:
    values = {"tab": "integrations", "active_nav": "settings",
              "webhook": webhooks.get_webhook(services, ctx.project.id),
              "deliveries": webhooks.list_deliveries(services, ctx.project.id),
              "export": exports.get_integration(services, ctx.project.id),
              "url_value": "", "url_error": None, "new_secret": None, **extra}
    return render(request, "project/settings_integrations.html", values, status_code=status)


@router.get("/project/{project_id}/settings/integrations")
def integrations_settings(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "MEMBER")
    return _page(request, ctx, services)


@router.post("/project/{project_id}/settings/integrations/webhook")
def webhook_save(request: Request, ctx: ProjectCtx, services: WebServices, url: FormStr = "",
                 enabled: FormStr = "", rotate: FormStr = "") -> Response:
    require_role(ctx, "ADMIN")
    try:
        _, secret = webhooks.configure_webhook(services, ctx.project.id, url, enabled=bool(enabled) or
                                               webhooks.get_webhook(services, ctx.project.id) is None,
                                               new_secret=bool(rotate))
    except OwlscopeError as exc:
        return _page(request, ctx, services, status=exc.status, url_error=exc.message, url_value=url)
    if secret is None:
        flash(request, "Webhook saved.")
        return redirect(request, f"{ctx.url}/settings/integrations")
    # The secret is shown on this response only; it is stored encrypted and never displayed again.
    return _page(request, ctx, services, new_secret=secret)


@router.post("/project/{project_id}/settings/integrations/webhook/delete")
def webhook_delete(request: Request, ctx: ProjectCtx, services: WebServices) -> Response:
    require_role(ctx, "ADMIN")
    try:
        webhooks.delete_webhook(services, ctx.project.id)
    except OwlscopeError:
        pass
    flash(request, "Webhook deleted.")
    return redirect(request, f"{ctx.url}/settings/integrations")
