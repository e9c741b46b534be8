"""The HTTP answer that streams a media's bytes, shared by the API's signed download URLs and
the UI's pages (both edges use it; it holds no routes)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import StreamingResponse

from owlscope.services import Services
from owlscope.storage.oltp.media_models import Media

# Shown in the page; everything else (HTML, SVG opened directly, scripts, documents) downloads.
INLINE = ("image/", "audio/", "video/", "application/pdf")
EXTENSIONS = {"application/pdf": "pdf", "text/plain": "txt", "application/json": "json", "text/csv": "csv"}


def filename(media: Media) -> str:
    ext = EXTENSIONS.get(media.content_type) or media.content_type.split("/")[-1].split("+")[0]
    return f"{media.id}.{ext}"


async def content_response(services: Services, media: Media, *, download: bool = False) -> StreamingResponse:
    size, chunks = await services.blobs.get_stream(media.blob_key)
    disposition = "inline" if not download and media.content_type.startswith(INLINE) else "attachment"
    headers = {
        "Content-Length": str(size),
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(filename(media))}",
        "Cache-Control": "private, max-age=3600",
        "X-Content-Type-Options": "nosniff",
        # Media is user content: never let it run scripts in our origin, even an SVG opened directly.
        "Content-Security-Policy": "default-src 'none'; img-src 'self' data:; media-src 'self'; "
                                   "style-src 'unsafe-inline'; sandbox",
    }
    return StreamingResponse(chunks, media_type=media.content_type, headers=headers)
