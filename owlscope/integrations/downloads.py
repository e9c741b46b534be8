"""One-off downloads of what a UI table's filters select (traces, their observations, sessions,
scores, dataset items), as generators of rows that read one page at a time: a download of a million
rows holds a page, never the whole set. The UI streams them through `encode.encode`.

Traces page by the table's own cursor (a keyset on the newest-first order); the other lists page by
number through the same functions as their tables."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from owlscope.datasets.items import list_items
from owlscope.storage.olap.client import Olap
from owlscope.tracing.observations import observations_of_traces
from owlscope.tracing.scores import list_scores_v2
from owlscope.tracing.session_stats import session_summaries
from owlscope.tracing.sessions import list_sessions
from owlscope.tracing.trace_table import TraceFilters, list_trace_table
from owlscope.wire import PageRequest

PAGE = 200  # the traces table's largest page
LIST_PAGE = 100  # the public list functions' largest page
KINDS = ("traces", "observations", "sessions", "scores", "dataset-items")


def by_page(fetch: Callable[[int], list[dict[str, Any]]], size: int = PAGE) -> Iterator[dict[str, Any]]:
    """Rows of pages 1, 2, ... of `size` until a short page."""
    page = 1
    while True:
        rows = fetch(page)
        yield from rows
        if len(rows) < size:
            return
        page += 1


def _trace_pages(olap: Olap, project_id: str, filters: TraceFilters, order_by: str,
                 size: int) -> Iterator[list[dict[str, Any]]]:
    cursor = None
    while True:
        page = list_trace_table(olap, project_id, filters, order_by=order_by, cursor=cursor, limit=size,
                                with_total=False)
        if page.rows:
            yield page.rows
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def traces(olap: Olap, project_id: str, filters: TraceFilters, *, order_by: str = "timestamp.desc",
           size: int = PAGE) -> Iterator[dict[str, Any]]:
    """The traces table's rows for the filters, in the table's order."""
    for rows in _trace_pages(olap, project_id, filters, order_by, size):
        yield from rows


def trace_observations(olap: Olap, project_id: str, filters: TraceFilters, *, order_by: str = "timestamp.desc",
                       size: int = PAGE) -> Iterator[dict[str, Any]]:
    """Every observation of the traces the filters select, trace by trace."""
    for rows in _trace_pages(olap, project_id, filters, order_by, size):
        yield from observations_of_traces(olap, project_id, [r["id"] for r in rows])


def sessions(olap: Olap, project_id: str, *, size: int = LIST_PAGE, **filters: Any) -> Iterator[dict[str, Any]]:
    """The sessions table's rows (with their summaries) for the filters of `list_sessions`."""
    def fetch(page: int) -> list[dict[str, Any]]:
        data = list_sessions(olap, project_id, page=page, limit=size, **filters)["data"]
        stats = session_summaries(olap, project_id, [s["id"] for s in data])
        return [{**s, **stats.get(s["id"], {})} for s in data]

    return by_page(fetch, size)


def scores(olap: Olap, project_id: str, *, size: int = LIST_PAGE, **filters: Any) -> Iterator[dict[str, Any]]:
    """Scores for the filters of `list_scores_v2`, newest first."""
    return by_page(lambda page: list_scores_v2(olap, project_id, page=page, limit=size, **filters)["data"], size)


def dataset_items(sessions: sessionmaker[Session], project_id: str, dataset_name: str, *, status: str | None,
                  size: int = LIST_PAGE) -> Iterator[dict[str, Any]]:
    """A dataset's items (of a status, or all), newest first."""
    return by_page(lambda page: list_items(sessions, project_id=project_id, dataset_name=dataset_name,
                                           status=status, paging=PageRequest(page, size))[0], size)
