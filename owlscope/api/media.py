"""POST /api/public/media, GET and PATCH /api/public/media/{mediaId}; on a local blob store also
the signed upload and download URLs those hand out (PUT …/upload, GET …/content)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from owlscope import media
from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.errors import PayloadTooLarge
from owlscope.media import store
from owlscope.media.http import content_response

router = APIRouter(tags=["media"])


class GetMediaUploadUrlRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    trace_id: str | None = Field(None, alias="traceId")
    observation_id: str | None = Field(None, alias="observationId")
    dataset_id: str | None = Field(None, alias="datasetId")
    dataset_item_id: str | None = Field(None, alias="datasetItemId")
    content_type: Annotated[str, Field(alias="contentType", min_length=1)]
    content_length: Annotated[int, Field(alias="contentLength")]
    sha256_hash: Annotated[str, Field(alias="sha256Hash", min_length=1)]
    field: Annotated[str, Field(min_length=1)]


class GetMediaUploadUrlResponse(BaseModel):
    uploadUrl: str | None
    mediaId: str


class PatchMediaBody(BaseModel):
    uploaded_at: Annotated[str, Field(alias="uploadedAt")]
    upload_http_status: Annotated[int, Field(alias="uploadHttpStatus")]
    upload_http_error: str | None = Field(None, alias="uploadHttpError")
    upload_time_ms: int | None = Field(None, alias="uploadTimeMs")


class GetMediaResponse(BaseModel):
    mediaId: str
    contentType: str
    contentLength: int
    uploadedAt: str
    url: str
    urlExpiry: str


def _base_url(request: Request, services: ServicesDep) -> str:
    return services.settings.public_url or str(request.base_url)


def _iso(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


@router.post("/api/public/media")
def get_upload_url(body: GetMediaUploadUrlRequest, request: Request, auth: AuthDep,
                   services: ServicesDep) -> GetMediaUploadUrlResponse:
    req = media.UploadRequest(
        content_type=body.content_type, content_length=body.content_length, sha256_hash=body.sha256_hash,
        field=body.field, trace_id=body.trace_id, observation_id=body.observation_id, dataset_id=body.dataset_id,
        dataset_item_id=body.dataset_item_id,
    )
    media_id, url = media.request_upload(services, auth.project_id, req, base_url=_base_url(request, services))
    return GetMediaUploadUrlResponse(uploadUrl=url, mediaId=media_id)


@router.patch("/api/public/media/{media_id}", status_code=204)
def patch_media(media_id: str, body: PatchMediaBody, auth: AuthDep, services: ServicesDep) -> Response:
    error = body.upload_http_error[:2000] if body.upload_http_error else None
    media.record_upload(services, auth.project_id, media_id, status=body.upload_http_status, error=error,
                        time_ms=body.upload_time_ms)
    return Response(status_code=204)


@router.get("/api/public/media/{media_id}")
def get_media(media_id: str, request: Request, auth: AuthDep, services: ServicesDep) -> GetMediaResponse:
    info = media.media_info(services, auth.project_id, media_id, base_url=_base_url(request, services))
    return GetMediaResponse(mediaId=info.media_id, contentType=info.content_type, contentLength=info.content_length,
                            uploadedAt=_iso(info.uploaded_at), url=info.url, urlExpiry=_iso(info.url_expiry))


@router.put("/api/public/media/{media_id}/upload", include_in_schema=False)
async def upload(media_id: str, token: str, request: Request, services: ServicesDep) -> Response:
    """The upload URL of a local store: the signed token is the authorization. The body is
    streamed to the store while it is hashed, so a large upload blocks neither memory nor the
    event loop."""
    row = await run_in_threadpool(store.uploadable, services, token, media_id)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > row.content_length:
        raise PayloadTooLarge(f"Upload is larger than the declared {row.content_length} bytes")
    if row.uploaded_at is None:
        await store.receive_upload(services, row, request.stream())
        await run_in_threadpool(store.mark_uploaded, services, row)
    return Response(status_code=200)


@router.get("/api/public/media/{media_id}/content", include_in_schema=False)
async def content(media_id: str, token: str, services: ServicesDep) -> StreamingResponse:
    """The download URL of a local store (signed and expiring, like a presigned S3 URL)."""
    row = await run_in_threadpool(store.downloadable, services, token, media_id)
    return await content_response(services, row)
