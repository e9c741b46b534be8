"""Organization settings, Audit log tab (OWNER and ADMIN): the organization's entries, newest
first, filtered by action, actor, project and time, and the same selection as a streamed CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from math import ceil

from fastapi import APIRouter, Request
from sqlalchemy import select
from starlette.responses import Response, StreamingResponse

from owlscope import audit
from owlscope.errors import InvalidRequest
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.models import Project
from owlscope.web.context import OrgCtx, WebActor, WebServices, require_role
from owlscope.web.templating import render

router = APIRouter(include_in_schema=False)

PER_PAGE = 50


def parse_time(value: str, *, end: bool = False) -> datetime | None:
    """`YYYY-MM-DD` (the whole day: its start, or with `end` its last instant) or
    `YYYY-MM-DDTHH:MM[:SS]`, in UTC; empty is None; anything else a 400."""
    value = value.strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            return day + timedelta(days=1, microseconds=-1) if end else day
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{value!r} is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _filters(action: str, actor: str, project: str, since: str, until: str) -> audit.AuditFilters:
    return audit.AuditFilters(action=action.strip(), actor=actor.strip(), project_id=project.strip(),
                              since=parse_time(since), until=parse_time(until, end=True))


@router.get("/organization/{org_id}/settings/audit-log")
def audit_log(request: Request, ctx: OrgCtx, services: WebServices, action: str = "", actor: str = "",
              project: str = "", since: str = "", until: str = "", page: int = 1) -> Response:
    require_role(ctx, "ADMIN")
    filters = _filters(action, actor, project, since, until)
    page = max(page, 1)
    with services.sessions() as session:
        rows, total = audit.list_entries(session, org_id=ctx.org.id, filters=filters, page=page, per_page=PER_PAGE)
        projects = {p.id: p.name for p in session.scalars(select(Project).where(Project.org_id == ctx.org.id)
                                                           .order_by(Project.name))}
    categories = sorted({a.split(".")[0] for a in audit.ACTIONS})
    return render(request, "org/audit_log.html", {
        "tab": "audit", "active_nav": "org-settings", "rows": rows, "total": total, "page": page,
        "pages": max(ceil(total / PER_PAGE), 1), "projects": projects, "actions": audit.ACTIONS,
        "categories": categories, "query": str(request.url.query),
        "f": {"action": action, "actor": actor, "project": project, "since": since, "until": until},
    })


@router.get("/organization/{org_id}/settings/audit-log.csv")
def audit_log_csv(request: Request, ctx: OrgCtx, services: WebServices, actor_: WebActor, action: str = "",
                  actor: str = "", project: str = "", since: str = "", until: str = "") -> Response:
    """The selection as CSV, streamed (read in batches; the export itself is audited)."""
    require_role(ctx, "ADMIN")
    filters = _filters(action, actor, project, since, until)
    with write_transaction(services.sessions) as session:
        audit.record(session, actor_, "audit_log.exported", org_id=ctx.org.id, resource_type="audit_log",
                     after={k: v for k, v in {"action": action, "actor": actor, "project": project,
                                              "since": since, "until": until}.items() if v})
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    body = audit.csv_rows(audit.iter_entries(services.sessions, org_id=ctx.org.id, filters=filters))
    return StreamingResponse(body, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="audit-log-{ctx.org.id}-{stamp}.csv"'})
