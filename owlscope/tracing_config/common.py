"""Helpers shared by the project configuration resources: input parsing, paging, timestamps."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from owlscope.errors import InvalidRequest

MAX_LIMIT = 100  # a page of these lists

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


