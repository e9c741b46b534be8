"""What changed in a time window: the traces, observations and scores whose last update falls in
(start, end], paged by key, for exports that must read every row once without holding them all.

An entity's "last update" is `updated_at` (the newest event time among its pieces; a score's
`event_ts`). A page is a keyset read in primary-key order after the previous page's last key
(`traces`: id; `observations`: (trace_id, id); `scores`: id), restricted to the entities with a row
updated after `start` (one column scan), merged with the read model's expressions and filtered on
the merged update time, so every entity of the window is in exactly one page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from owlscope.storage.olap.client import Olap
from owlscope.tracing.common import Params
from owlscope.tracing.model import OBS, TRACE, TRACE_IO, select_list
from owlscope.tracing.observations import view_shape
from owlscope.tracing.scores import SCORE_COLUMNS, score_v1
from owlscope.tracing.traces import trace_shape

PAGE = 2_000
_IN_ORDER = " SETTINGS optimize_aggregation_in_order = 1"


def changed_traces(olap: Olap, project_id: str, start: datetime, end: datetime, *, after: str | None = None,
                   limit: int = PAGE) -> list[dict[str, Any]]:
    """Traces (the API's `Trace`) last updated in (start, end], by id, after the id `after`."""
    p = Params(p=project_id)
    s, e = p.time(start), p.time(end)
    rows = olap.query_dicts(
        f"SELECT id{select_list({*TRACE, *TRACE_IO}, {**TRACE, **TRACE_IO})} FROM {{db}}.traces"
        f" WHERE project_id = {{p:String}} AND id > {p.text(after or '')}"
        f" AND id IN (SELECT id FROM {{db}}.traces WHERE project_id = {{p:String}} AND updated_at > {s})"
        f" GROUP BY id HAVING t_updated > {s} AND t_updated <= {e} ORDER BY id LIMIT {int(limit)}" + _IN_ORDER,
        p.values,
    )
    return [trace_shape(project_id, r) for r in rows]


def changed_observations(olap: Olap, project_id: str, start: datetime, end: datetime, *,
                         after: tuple[str, str] | None = None, limit: int = PAGE) -> list[dict[str, Any]]:
    """Observations (the API's `ObservationsView`) last updated in (start, end], by (traceId, id)."""
    p = Params(p=project_id)
    s, e = p.time(start), p.time(end)
    t, i = after or ("", "")
    rows = olap.query_dicts(
        f"SELECT trace_id, id{select_list(OBS, OBS)} FROM {{db}}.observations"
        f" WHERE project_id = {{p:String}} AND (trace_id, id) > ({p.text(t)}, {p.text(i)})"
        f" AND (trace_id, id) IN (SELECT trace_id, id FROM {{db}}.observations"
        f" WHERE project_id = {{p:String}} AND updated_at > {s})"
        f" GROUP BY trace_id, id HAVING o_updated > {s} AND o_updated <= {e} ORDER BY trace_id, id"
        f" LIMIT {int(limit)}" + _IN_ORDER,
        p.values,
    )
    return [view_shape(r) for r in rows]


def changed_scores(olap: Olap, project_id: str, start: datetime, end: datetime, *, after: str | None = None,
                   limit: int = PAGE) -> list[dict[str, Any]]:
    """Scores (the API's v1 `Score`) written in (start, end], by id."""
    p = Params(p=project_id)
    rows = olap.query_dicts(
        f"SELECT {SCORE_COLUMNS} FROM {{db}}.scores FINAL WHERE project_id = {{p:String}}"
        f" AND id > {p.text(after or '')} AND event_ts > {p.time(start)} AND event_ts <= {p.time(end)}"
        f" ORDER BY id LIMIT {int(limit)}",
        p.values,
    )
    return [{**score_v1(r), "projectId": project_id} for r in rows]


_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "traces": lambda r: r["id"],
    "observations": lambda r: (r["traceId"], r["id"]),
    "scores": lambda r: r["id"],
}
_READS = {"traces": changed_traces, "observations": changed_observations, "scores": changed_scores}
TABLES = tuple(_READS)


def iter_changed(olap: Olap, project_id: str, table: str, start: datetime, end: datetime, *,
                 page: int = PAGE) -> Iterator[dict[str, Any]]:
    """Every row of `table` changed in (start, end], one page in memory at a time."""
    read, key = _READS[table], _KEYS[table]
    after = None
    while True:
        rows = read(olap, project_id, start, end, after=after, limit=page)
        yield from rows
        if len(rows) < page:
            return
        after = key(rows[-1])
