"""Helpers shared by the project configuration resources: input parsing, paging, timestamps."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from owlscope.errors import InvalidRequest
from owlscope.tracing.common import MAX_PAGE

DEFAULT_LIMIT = 50
MAX_LIMIT = 100

M = TypeVar("M", bound=BaseModel)


def _unstorable(value: Any) -> str | None:
    """What in a JSON value PostgreSQL cannot store: NUL characters, NaN or infinite numbers."""
    if isinstance(value, str):
        return "text must not contain NUL (\\u0000) characters" if "\x00" in value else None
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite (no NaN or Infinity)"
    if isinstance(value, Mapping):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return None
    for item in items:
        problem = _unstorable(item)
        if problem:
            return problem
    return None


class ApiInput(BaseModel):
    """Base of the request bodies: unknown fields are ignored; NUL characters and NaN/Infinity are
    refused anywhere in the body (PostgreSQL text and JSONB cannot store them)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        problem = _unstorable(data)
        if problem:
            raise ValueError(problem)
        return data


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, `field.path: message`, as the API's validation handler writes them."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


def parse_input(cls: type[M], data: M | Mapping[str, Any]) -> M:
    """`data` as a `cls` request; a dict that does not fit raises InvalidRequest (a 400)."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from exc


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int = 1  # starts at 1
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if not isinstance(self.page, int) or not 1 <= self.page <= MAX_PAGE:
            raise InvalidRequest(f"page must be an integer from 1 to {MAX_PAGE}, not {self.page!r}")
        if not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIMIT}, not {self.limit!r}")

    @classmethod
    def of(cls, page: int | None, limit: int | None) -> PageRequest:
        """From optional query parameters (defaults: page 1, limit 50)."""
        return cls(1 if page is None else page, DEFAULT_LIMIT if limit is None else limit)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


@dataclass(frozen=True, slots=True)
class Page:
    data: list[Any]
    page: int
    limit: int
    total_items: int

    @property
    def total_pages(self) -> int:
        return math.ceil(self.total_items / self.limit) if self.limit else 0

    def meta(self) -> dict[str, int]:
        """The API's `utilsMetaResponse`."""
        return {"page": self.page, "limit": self.limit, "totalItems": self.total_items,
                "totalPages": self.total_pages}


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 in UTC with milliseconds and a Z, as Langfuse writes timestamps."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
