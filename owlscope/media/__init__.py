"""Media: images, audio and files that the SDKs upload beside traces and dataset items.

The SDK asks for an upload URL (`request_upload`), PUTs the bytes there — a presigned S3 URL, or
on a local store a signed, expiring URL that the web serves itself — and reports the result
(`record_upload`). The trace keeps only a reference string
`@@@langfuseMedia:type=…|id=…|source=…@@@`; `media_info` turns an id back into a download URL.
Bytes are stored once per project under `media/<project>/<sha256 hex>` and only count as uploaded
after their SHA-256 was checked.
"""

from owlscope.media.content import ALLOWED_CONTENT_TYPES, MediaRef, parse_reference, split_references
from owlscope.media.lifecycle import forget_project, forget_traces
from owlscope.media.store import (
    MediaInfo,
    UploadRequest,
    media_info,
    record_upload,
    referenced_by,
    request_upload,
)

__all__ = [
    "ALLOWED_CONTENT_TYPES", "MediaInfo", "MediaRef", "UploadRequest", "forget_project", "forget_traces",
    "media_info", "parse_reference", "record_upload", "referenced_by", "request_upload", "split_references",
]
