"""Media references of dataset items, resolved for the public API (`mediaReferences`): each
string that is exactly a reference, with its JSONPath in the bracket-normalized form the SDKs
parse (`$['image']`, `$['pages'][0]`), and the media with a time-limited download URL. The SDKs
replace those values with media objects that fetch the bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from owlscope.media.content import parse_reference
from owlscope.media.store import download_url
from owlscope.services import Services
from owlscope.storage.oltp.media_models import Media

ITEM_FIELDS = ("input", "expectedOutput", "metadata")
MAX_DEPTH = 10


def find_references(value: Any, path: str = "$", depth: int = 0) -> Iterator[tuple[str, str, str]]:
    """(JSONPath, reference string, media id) of every string in `value` that is a reference."""
    if isinstance(value, str):
        ref = parse_reference(value)
        if ref is not None and ref.text == value:
            yield path, value, ref.media_id
    elif depth < MAX_DEPTH and isinstance(value, dict):
        for key, item in value.items():
            yield from find_references(item, f"{path}['{key}']", depth + 1)
    elif depth < MAX_DEPTH and isinstance(value, list):
        for i, item in enumerate(value):
            yield from find_references(item, f"{path}[{i}]", depth + 1)


def attach_item_media(services: Services, project_id: str, items: list[dict[str, Any]], *, base_url: str) -> None:
    """Fill `mediaReferences` of dataset items (API dicts) with the media they refer to; media
    not (yet) stored in the project is left out."""
    found = [(item, field, path, text, media_id) for item in items for field in ITEM_FIELDS
             for path, text, media_id in find_references(item.get(field))]
    if not found:
        return
    with services.sessions() as session:
        rows = {m.id: m for m in session.scalars(select(Media).where(
            Media.project_id == project_id, Media.id.in_({f[4] for f in found}),
            Media.uploaded_at.is_not(None)))}
    urls: dict[str, tuple[str, str]] = {}
    for item, field, path, text, media_id in found:
        media = rows.get(media_id)
        if media is None:
            continue
        if media_id not in urls:
            url, expiry = download_url(services, media, base_url=base_url)
            urls[media_id] = (url, expiry.isoformat().replace("+00:00", "Z"))
        url, expiry = urls[media_id]
        item.setdefault("mediaReferences", []).append({
            "field": field, "referenceString": text, "jsonPath": path,
            "media": {"mediaId": media.id, "contentType": media.content_type,
                      "contentLength": media.content_length, "url": url, "urlExpiry": expiry},
        })
