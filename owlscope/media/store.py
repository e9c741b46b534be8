"""Media records and references in the OLTP store, bytes in the blob store.

Functions take the `Services` bundle and a project id; every query is scoped by project.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from owlscope.errors import InvalidRequest, NotFound, PayloadTooLarge
from owlscope.media import tokens
from owlscope.media.content import (
    ALLOWED_CONTENT_TYPES,
    DATASET_ITEM_FIELDS,
    TRACE_FIELDS,
    blob_key,
    media_id_for,
    sha256_digest,
    staging_key,
)
from owlscope.pipeline.masking import masked_text
from owlscope.services import Services
from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.dataset_models import Dataset
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.media_models import Media, MediaReference

UPLOAD, DOWNLOAD = "upload", "download"


@dataclass(frozen=True)
class UploadRequest:
    content_type: str
    content_length: int
    sha256_hash: str
    field: str
    trace_id: str | None = None
    observation_id: str | None = None
    dataset_id: str | None = None
    dataset_item_id: str | None = None


@dataclass(frozen=True)
class MediaInfo:
    media_id: str
    content_type: str
    content_length: int
    uploaded_at: datetime
    url: str
    url_expiry: datetime


def _check(services: Services, project_id: str, req: UploadRequest) -> None:
    if req.content_type not in ALLOWED_CONTENT_TYPES:
        raise InvalidRequest(f"Content type {req.content_type!r} is not allowed for media")
    if req.content_length <= 0:
        raise InvalidRequest("contentLength must be a positive number of bytes")
    limit = services.settings.media_max_bytes
    if req.content_length > limit:
        raise PayloadTooLarge(f"Media of {req.content_length} bytes exceeds the limit of {limit} bytes (MEDIA_MAX_MB)")
    if req.trace_id and (req.dataset_id or req.dataset_item_id):
        raise InvalidRequest("Give either traceId or datasetId with datasetItemId, not both")
    if req.trace_id:
        if req.field not in TRACE_FIELDS:
            raise InvalidRequest(f"field must be one of {sorted(TRACE_FIELDS)} for trace media")
    elif req.dataset_id and req.dataset_item_id:
        if req.field not in DATASET_ITEM_FIELDS:
            raise InvalidRequest(f"field must be one of {sorted(DATASET_ITEM_FIELDS)} for dataset item media")
        with services.sessions() as session:
            found = session.scalar(select(Dataset.id).where(Dataset.project_id == project_id,
                                                            Dataset.id == req.dataset_id))
        if found is None:
            raise NotFound(f"Dataset {req.dataset_id} not found within authorized project")
    else:
        raise InvalidRequest("Give traceId (optionally observationId) or datasetId with datasetItemId")


def request_upload(services: Services, project_id: str, req: UploadRequest, *, base_url: str) -> tuple[str, str | None]:
    """Register media and its reference; (media id, upload URL or None when the same bytes are
    already stored for the project)."""
    _check(services, project_id, req)
    digest = sha256_digest(req.sha256_hash)
    media_id = media_id_for(digest)
    on_trace = bool(req.trace_id)
    use = {  # '' for the parts that do not apply (see MediaReference)
        "project_id": project_id, "media_id": media_id, "field": req.field, "trace_id": req.trace_id or "",
        "observation_id": (req.observation_id or "") if on_trace else "",
        "dataset_id": "" if on_trace else (req.dataset_id or ""),
        "dataset_item_id": "" if on_trace else (req.dataset_item_id or ""),
    }
    for attempt in range(2):  # a concurrent request for the same bytes may insert the row first
        try:
            with write_transaction(services.sessions) as session:
                media = session.get(Media, (project_id, media_id))
                if media is None:
                    media = Media(project_id=project_id, id=media_id, sha256_hash=req.sha256_hash,
                                  content_type=req.content_type, content_length=req.content_length,
                                  blob_key=blob_key(project_id, digest))
                    session.add(media)
                    session.flush()
                key = (project_id, media_id, use["trace_id"], use["observation_id"], use["dataset_item_id"],
                       req.field)
                if session.get(MediaReference, key) is None:
                    session.add(MediaReference(**use))
                uploaded = media.uploaded_at is not None
                stored_key = media.blob_key
            break
        except IntegrityError:
            if attempt:
                raise
    if uploaded:
        if services.blobs.exists(stored_key):
            return media_id, None
        # recorded as stored but the bytes are gone (removed from the store by hand): take them again
        with write_transaction(services.sessions) as session:
            row = session.get(Media, (project_id, media_id))
            if row is not None:
                row.uploaded_at = None
    expires = int(services.settings.media_url_expiry_seconds)
    if services.blobs.can_sign:
        return media_id, services.blobs.sign_url(stored_key, "PUT", expires)
    token = tokens.sign(services.settings, UPLOAD, project_id=project_id, media_id=media_id,
                        expires_at=time.time() + expires)
    return media_id, f"{base_url.rstrip('/')}/api/public/media/{media_id}/upload?token={token}"


def _get(services: Services, project_id: str, media_id: str) -> Media:
    with services.sessions() as session:
        media = session.get(Media, (project_id, media_id))
        if media is None:
            raise NotFound(f"Media {media_id} not found within authorized project")
        session.expunge(media)
        return media


def _stored_digest(services: Services, key: str) -> bytes | None:
    """SHA-256 of a stored blob (streamed), or None when it does not exist."""
    import obstore

    try:
        result = obstore.get(services.blobs.store, key)
    except FileNotFoundError:
        return None
    h = hashlib.sha256()
    for chunk in result.stream(min_chunk_size=1024 * 1024):
        h.update(chunk)
    return h.digest()


def _verify_stored(services: Services, media: Media) -> bool:
    """Whether the stored bytes match the media's SHA-256; a mismatch is deleted. Marks the media
    uploaded when they match. Used for bytes that went straight to S3."""
    digest = _stored_digest(services, media.blob_key)
    if digest is None:
        return False
    if digest != sha256_digest(media.sha256_hash):
        services.blobs.delete(media.blob_key)
        _update(services, media, upload_http_error="stored content does not match sha256Hash")
        return False
    _update(services, media, uploaded_at=utcnow())
    return True


def _update(services: Services, media: Media, **values: object) -> None:
    with write_transaction(services.sessions) as session:
        row = session.get(Media, (media.project_id, media.id))
        if row is not None:
            for name, value in values.items():
                setattr(row, name, value)
    for name, value in values.items():
        setattr(media, name, value)


def record_upload(services: Services, project_id: str, media_id: str, *, status: int, error: str | None,
                  time_ms: int | None) -> None:
    """What the SDK reports after its upload (PATCH). Bytes sent straight to the store are
    checked here; a mismatch is removed and answered with 400."""
    media = _get(services, project_id, media_id)
    _update(services, media, upload_http_status=status, upload_http_error=masked_text(services, project_id, error),
            upload_time_ms=time_ms)
    if 200 <= status < 300 and media.uploaded_at is None and services.blobs.can_sign:
        if not _verify_stored(services, media):
            raise InvalidRequest("The uploaded content is missing or does not match sha256Hash; upload it again")


def media_info(services: Services, project_id: str, media_id: str, *, base_url: str) -> MediaInfo:
    """A media record with a time-limited download URL; NotFound until its bytes are stored."""
    media = _get(services, project_id, media_id)
    if media.uploaded_at is None and not (services.blobs.can_sign and _verify_stored(services, media)):
        raise NotFound(f"Media {media_id} has not been uploaded yet")
    url, expiry = download_url(services, media, base_url=base_url)
    assert media.uploaded_at is not None
    return MediaInfo(media.id, media.content_type, media.content_length, media.uploaded_at, url, expiry)


def download_url(services: Services, media: Media, *, base_url: str) -> tuple[str, datetime]:
    """A time-limited URL of a stored media's bytes, and when it expires."""
    expires = int(services.settings.media_url_expiry_seconds)
    expiry = int(time.time() + expires)
    if services.blobs.can_sign:
        url = services.blobs.sign_url(media.blob_key, "GET", expires)
    else:
        token = tokens.sign(services.settings, DOWNLOAD, project_id=media.project_id, media_id=media.id,
                            expires_at=expiry)
        url = f"{base_url.rstrip('/')}/api/public/media/{media.id}/content?token={token}"
    return url, datetime.fromtimestamp(expiry, UTC)


# ---- bytes through the web (local store uploads, downloads for the UI) -------------------------
def uploadable(services: Services, token: str, media_id: str) -> Media:
    """The media a signed upload URL is for (Forbidden when the signature is bad or expired)."""
    project_id = tokens.verify(services.settings, UPLOAD, token, media_id=media_id)
    return _get(services, project_id, media_id)


async def receive_upload(services: Services, media: Media, body: AsyncIterable[bytes]) -> None:
    """Stream an upload into the store, hashing on the way; the bytes replace nothing until their
    length and SHA-256 match the record. Never holds the whole body in memory."""
    digest = hashlib.sha256()
    size = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal size
        async for chunk in body:
            size += len(chunk)
            if size > media.content_length:
                raise PayloadTooLarge(f"Upload is larger than the declared {media.content_length} bytes")
            digest.update(chunk)
            yield chunk

    staged = staging_key(media.project_id, uuid.uuid4().hex)
    try:
        await services.blobs.put_stream(staged, counted())
    except PayloadTooLarge:
        await services.blobs.delete_async(staged)
        raise
    except Exception as exc:
        await services.blobs.delete_async(staged)
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, PayloadTooLarge):
            raise cause from None
        raise
    if size != media.content_length or digest.digest() != sha256_digest(media.sha256_hash):
        await services.blobs.delete_async(staged)
        raise InvalidRequest("Uploaded content does not match the declared contentLength and sha256Hash")
    await services.blobs.rename_async(staged, media.blob_key)


def mark_uploaded(services: Services, media: Media) -> None:
    _update(services, media, uploaded_at=utcnow(), upload_http_status=200, upload_http_error=None)


def downloadable(services: Services, token: str, media_id: str) -> Media:
    project_id = tokens.verify(services.settings, DOWNLOAD, token, media_id=media_id)
    return stored_media(services, project_id, media_id)


def stored_media(services: Services, project_id: str, media_id: str) -> Media:
    """A media of the project whose bytes are stored (NotFound otherwise)."""
    media = _get(services, project_id, media_id)
    if media.uploaded_at is None and not (services.blobs.can_sign and _verify_stored(services, media)):
        raise NotFound(f"Media {media_id} has not been uploaded yet")
    return media


def referenced_by(services: Services, project_id: str, media_id: str, trace_ids: list[str]) -> bool:
    """Whether one of the traces (or their observations) refers to the media."""
    if not trace_ids:
        return False
    with services.sessions() as session:
        return session.scalar(select(MediaReference.media_id).where(
            MediaReference.project_id == project_id, MediaReference.media_id == media_id,
            MediaReference.trace_id.in_(trace_ids)).limit(1)) is not None
