"""Links that keep where the person is: the current path and query with a few parameters changed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import Request


def with_query(request: Request, drop: tuple[str, ...] = ("cursor", "page", "total", "n"), **changes: Any) -> str:
    """The current path with its query string changed: `changes` set (None removes), `drop` removed."""
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in changes and k not in drop]
    for k, v in changes.items():
        if v is None:
            continue
        if isinstance(v, list | tuple):
            items.extend((k, str(x)) for x in v)
        else:
            items.append((k, str(v)))
    query = urlencode(items)
    return request.url.path + (f"?{query}" if query else "")


def page_url(request: Request, page: int) -> str:
    """The current list at another page, every other query parameter (filters, status, sort) kept."""
    return with_query(request, page=page)
