"""Media bytes for the pages: a project's media for its members, and the media of a shared trace
or session for anyone with the link — only while it is shared, and only media that trace (or a
trace of that session) refers to. The pages show references as thumbnails, players and download
links (static/media.js)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from owlscope.errors import NotFound
from owlscope.media import referenced_by
from owlscope.media.http import content_response
from owlscope.media.store import stored_media
from owlscope.services import Services
from owlscope.tracing.session_stats import session_traces
from owlscope.tracing.sharing import share_state, shared_project
from owlscope.web.context import ProjectCtx, WebServices, require_role
from owlscope.web.views.sharing import NOT_SHARED, _project, _public_trace

router = APIRouter(include_in_schema=False)


@router.get("/project/{project_id}/media/{media_id}")
async def project_media(media_id: str, ctx: ProjectCtx, services: WebServices, download: bool = False
                        ) -> StreamingResponse:
    require_role(ctx, "VIEWER")
    media = await run_in_threadpool(stored_media, services, ctx.project.id, media_id)
    return await content_response(services, media, download=download)


def _public_media_project(services: Services, media_id: str, project: str, trace: str, session: str) -> str:
    """The project of a media readable through a shared trace or session link; NotFound otherwise."""
    if trace:
        project_id, _ = _public_trace(services, trace, project, session)
        trace_ids = [trace]
    elif session:
        project_id = _project(services, project or shared_project(services.sessions, kind="SESSION",
                                                                    object_id=session) or "")
        if not share_state(services.sessions, project_id=project_id, kind="SESSION", object_id=session).public:
            raise NotFound(NOT_SHARED)
        trace_ids = [t["id"] for t in session_traces(services.olap, project_id, [session])]
    else:
        raise NotFound(NOT_SHARED)
    if not referenced_by(services, project_id, media_id, trace_ids):
        raise NotFound(NOT_SHARED)
    return project_id


@router.get("/public/media/{media_id}")
async def public_media(media_id: str, services: WebServices, project: str = "", trace: str = "", session: str = "",
                       download: bool = False) -> StreamingResponse:
    project_id = await run_in_threadpool(_public_media_project, services, media_id, project, trace, session)
    media = await run_in_threadpool(stored_media, services, project_id, media_id)
    return await content_response(services, media, download=download)
