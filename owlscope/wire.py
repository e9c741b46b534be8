"""How values travel in the public API (and the UI's paged links), defined once: ISO-8601 times,
page requests with their `meta`, and opaque cursors."""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from owlscope.errors import InvalidRequest

MAX_PAGE = 1_000_000_000  # keeps OFFSET (page × limit) within a 64-bit integer
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """`2025-01-01T12:00:00.123Z` (Langfuse's format: UTC, milliseconds, a Z); a naive datetime is
    UTC. None, and the epoch (how the OLAP store reads an unset time back), are None."""
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value == EPOCH:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """A page of a list: `page` from 1, `limit` items. Out-of-range values are a 400."""

    page: int = 1
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if not isinstance(self.page, int) or isinstance(self.page, bool) or not 1 <= self.page <= MAX_PAGE:
            raise InvalidRequest(f"page must be an integer from 1 to {MAX_PAGE}, not {self.page!r}")
        if not isinstance(self.limit, int) or isinstance(self.limit, bool) or not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIMIT}, not {self.limit!r}")

    @classmethod
    def of(cls, page: int | None, limit: int | None, *, default: int = DEFAULT_LIMIT,
           maximum: int = MAX_LIMIT) -> PageRequest:
        """From optional query parameters (defaults: page 1, limit `default`), at most `maximum` a page."""
        limit = default if limit is None else limit
        if isinstance(limit, int) and limit > maximum:
            raise InvalidRequest(f"limit must be an integer from 1 to {maximum}, not {limit!r}")
        return cls(1 if page is None else page, limit)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def meta(self, total: int) -> dict[str, int]:
        """The API's `utilsMetaResponse`."""
        return {"page": self.page, "limit": self.limit, "totalItems": total,
                "totalPages": math.ceil(total / self.limit)}


@dataclass(frozen=True, slots=True)
class Page:
    """One page of results with the request that chose it."""

    data: list[Any]
    page: int
    limit: int
    total_items: int

    @property
    def total_pages(self) -> int:
        return math.ceil(self.total_items / self.limit) if self.limit else 0

    def meta(self) -> dict[str, int]:
        return PageRequest(self.page, self.limit).meta(self.total_items)


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor for a list of JSON values (the position after the last item shown)."""
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, shape: tuple[type, ...]) -> list[Any]:
    """A cursor made by `encode_cursor`, checked against the expected element types (400 otherwise)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidRequest("Invalid cursor") from None
    if (not isinstance(values, list) or len(values) != len(shape)
            or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(values, shape, strict=True))):
        raise InvalidRequest("Invalid cursor")
    return values
