"""Pure helpers: allowed content types, media ids from hashes, blob keys and reference strings."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from owlscope.errors import InvalidRequest

# The MediaContentType enum of the public API contract.
ALLOWED_CONTENT_TYPES = frozenset({
    "image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif", "image/svg+xml", "image/tiff", "image/bmp",
    "image/avif", "image/heic",
    "audio/mpeg", "audio/mp3", "audio/wav", "audio/ogg", "audio/oga", "audio/aac", "audio/mp4", "audio/flac",
    "audio/opus", "audio/webm",
    "video/mp4", "video/webm", "video/ogg", "video/mpeg", "video/quicktime", "video/x-msvideo", "video/x-matroska",
    "text/plain", "text/html", "text/css", "text/csv", "text/markdown", "text/x-python", "application/javascript",
    "text/x-typescript", "application/x-yaml", "application/pdf", "application/msword", "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/zip", "application/json",
    "application/xml", "application/octet-stream",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation", "application/rtf",
    "application/x-ndjson", "application/vnd.apache.parquet", "application/gzip",
})

TRACE_FIELDS = frozenset({"input", "output", "metadata"})
DATASET_ITEM_FIELDS = frozenset({"input", "expectedOutput", "metadata"})

_REFERENCE = re.compile(r"@@@langfuseMedia:(.+?)@@@")


def sha256_digest(sha256_b64: str) -> bytes:
    """The 32-byte digest of a SHA-256 sent as base64 (standard or URL-safe alphabet)."""
    try:
        digest = base64.b64decode(sha256_b64.translate(str.maketrans("-_", "+/")), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32:
        raise InvalidRequest("sha256Hash must be the base64 SHA-256 of the content (32 bytes)")
    return digest


def media_id_for(digest: bytes) -> str:
    """The id the SDKs derive from the content: 22 characters of its URL-safe base64 SHA-256."""
    return base64.urlsafe_b64encode(digest).decode()[:22]


def blob_key(project_id: str, digest: bytes) -> str:
    return f"media/{project_id}/{digest.hex()}"


def project_prefix(project_id: str) -> str:
    return f"media/{project_id}/"


def staging_key(project_id: str, upload_id: str) -> str:
    return f"media/{project_id}/.staging/{upload_id}"


@dataclass(frozen=True)
class MediaRef:
    """A parsed `@@@langfuseMedia:type=…|id=…|source=…@@@` string."""

    media_id: str
    content_type: str
    source: str
    text: str

    @property
    def kind(self) -> str:
        """image, audio, video or file: how the UI shows it."""
        major = self.content_type.split("/", 1)[0]
        return major if major in ("image", "audio", "video") else "file"


def parse_reference(text: str) -> MediaRef | None:
    match = _REFERENCE.fullmatch(text.strip()) if isinstance(text, str) else None
    return _ref(match) if match else None


def _ref(match: re.Match[str]) -> MediaRef | None:
    fields: dict[str, str] = {}
    for pair in match.group(1).split("|"):
        key, sep, value = pair.partition("=")
        if sep:
            fields[key] = value
    if not fields.get("id") or not fields.get("type"):
        return None
    return MediaRef(fields["id"], fields["type"], fields.get("source", ""), match.group(0))


def split_references(text: str) -> list[str | MediaRef]:
    """A string cut into plain text and the media references it holds, in order."""
    out: list[str | MediaRef] = []
    pos = 0
    for match in _REFERENCE.finditer(text):
        ref = _ref(match)
        if ref is None:
            continue
        if match.start() > pos:
            out.append(text[pos:match.start()])
        out.append(ref)
        pos = match.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def has_reference(text: str) -> bool:
    return "@@@langfuseMedia:" in text
