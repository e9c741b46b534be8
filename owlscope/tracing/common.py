"""Helpers shared by the read-side queries: SQL parameters, time and JSON conversion (pages and cursors:
`owlscope.wire`).

Conventions of the OLAP tables (see migrations/0001 and 0002): an unset merged String is '' and an unset
merged DateTime64 is the epoch; both read as None here. Datetimes come back naive in UTC.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from clickhouse_connect.driver.binding import format_str

from owlscope.errors import InvalidRequest
from owlscope.ingestion.limits import cap_json_depth
from owlscope.ingestion.timeparse import parse_timestamp
from owlscope.wire import iso as iso  # the one iso(): unset OLAP times (the epoch) are None

EPOCH_NAIVE = datetime(1970, 1, 1)


class Params:
    """ClickHouse server-side parameters: `p.add(v, "String")` returns the `{p3:String}` placeholder."""

    def __init__(self, **initial: Any):
        self.values: dict[str, Any] = dict(initial)
        self._n = 0

    def add(self, value: Any, type_: str) -> str:
        self._n += 1
        name = f"v{self._n}"
        self.values[name] = value
        return "{%s:%s}" % (name, type_)

    def copy(self) -> Params:
        """Independent parameters that go on numbering where these stopped."""
        other = Params(**self.values)
        other._n = self._n
        return other

    def text(self, value: str) -> str:
        return self.add(value, "String")

    def texts(self, values: Iterable[str]) -> str:
        return self.add(list(values), "Array(String)")

    def ids(self, values: Iterable[str]) -> str:
        """A set of strings read from the store (ids) for `x IN ...`: one bound parameter when small,
        escaped literals when large, because bound parameters travel in the HTTP request's URL."""
        values = list(values)
        if len(values) <= INLINE_OVER or any("{" in v for v in values):
            return self.texts(values)
        return "(" + ", ".join(format_str(v) for v in values) + ")"

    def number(self, value: float) -> str:
        return self.add(float(value), "Float64")

    def time(self, value: datetime) -> str:
        """A DateTime64(3, 'UTC') expression for an aware or naive-UTC datetime."""
        return "fromUnixTimestamp64Milli(%s, 'UTC')" % self.add(epoch_ms(value), "Int64")


INLINE_OVER = 200  # larger id sets are inlined as literals ...
INLINE_MAX = 4_000  # ... up to this many (a query's text is capped at 256 KiB); beyond, keep them in SQL

# Independent reads of one request run side by side: each statement leases its own OLAP
# client from the pool (work on one chDB connection is serialized). Threads start on first use.
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="owlscope-read")


def parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls concurrently (the first in this thread); results in order. Do not nest."""
    futures = [_POOL.submit(c) for c in calls[1:]]
    first = calls[0]()
    return [first, *(f.result() for f in futures)]


class TraceRestriction:
    """The traces an `=`/`any of` condition on a trace's id, user or session can match.

    A trace's merged value is the partial value of one of its rows, so scanning the partial states of
    one column finds every candidate without merging anything (a superset: the caller still checks the
    merged value). `ids` are those traces; `where(column)` restricts `column` to them: a list when
    small, the subqueries themselves when large. `exact`: the conditions on the trace id itself,
    which the restriction applies exactly (the caller need not check them on merged rows)."""

    def __init__(self, ids: set[str], subqueries: list[str], p: Params, exact: list[Any] | None = None):
        self.ids = ids
        self._subqueries = subqueries
        self._p = p
        self.exact = exact or []

    def where(self, column: str) -> str:
        if len(self.ids) <= INLINE_MAX:
            return f"{column} IN {self._p.ids(sorted(self.ids))}"
        return " AND ".join(f"{column} IN {s}" for s in self._subqueries)


def restrict_traces(olap: Any, p: Params, conds: Iterable[Any], states: Mapping[str, str | None]) -> TraceRestriction | None:
    """A TraceRestriction for the conditions on `states`' columns (filter column -> the traces state
    column holding it, None for the trace id itself); None when there is no such condition. `p` must
    bind `project_id`."""
    found: set[str] | None = None
    subqueries: list[str] = []
    exact = []
    for cond in conds:
        if cond.column not in states or cond.operator not in ("=", "any of"):
            continue
        values = [cond.value] if cond.operator == "=" else cond.value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            continue
        state = states[cond.column]
        vals = p.texts(values)
        if state is None:
            ids = set(values)
            subqueries.append(vals)
            exact.append(cond)
        else:
            scan = (f"FROM {{db}}.traces WHERE project_id = {{project_id:String}}"
                    f" AND finalizeAggregation({state}) IN {vals}")
            ids = {r[0] for r in olap.query(f"SELECT DISTINCT id {scan}", p.values)}
            subqueries.append(f"(SELECT id {scan})")
        found = ids if found is None else found & ids
    return None if found is None else TraceRestriction(found, subqueries, p, exact)


# How many rows a project has in a table, remembered per process for a short while. It only picks
# between two exact query plans (a small project is read whole in one GROUP BY, a large one through
# the latest-rows bound), so a value up to SIZE_TTL seconds old costs at most a slower plan.
SMALL_ROWS = 50_000  # up to this many rows, one GROUP BY over the project beats the bound's round trips
SIZE_TTL = 30.0
_SIZES: dict[tuple[str, str, str], tuple[float, int]] = {}


def project_rows(olap: Any, table: str, project_id: str) -> int:
    """The project's row count in `table` (unmerged pieces included), at most SIZE_TTL seconds old."""
    key = (olap.database, table, project_id)
    now = time.monotonic()
    hit = _SIZES.get(key)
    if hit is not None and now - hit[0] < SIZE_TTL:
        return hit[1]
    n = int(olap.query(f"SELECT count() FROM {{db}}.{table} WHERE project_id = {{p:String}}", {"p": project_id})[0][0])
    _SIZES[key] = (now, n)
    return n


def is_small(olap: Any, table: str, project_id: str) -> bool:
    """Whether the project's rows in `table` are few enough to read whole (see SMALL_ROWS)."""
    return project_rows(olap, table, project_id) <= SMALL_ROWS


# Windows back from the newest row that `kth_newest` tries before the whole table: rows arrive
# roughly in time order, so the parts of older data lie outside a recent window and a min/max skip
# index on the column skips them (a read of the newest rows instead of every row's time).
NEWEST_WINDOWS = (timedelta(hours=1), timedelta(days=1), timedelta(days=7))


def kth_newest(olap: Any, table: str, column: str, where: str, k: int, params: Mapping[str, Any], *,
               indexed: bool = False) -> Any:
    """The value of `column` (a time) on the K-th newest row of `table` matching `where`, None when
    fewer rows match: one column read, the bound of the latest-rows paths (rows above it are the
    candidates, kept in SQL rather than shipped back as ids). `indexed`: `column` has a min/max skip
    index; the newest row is found first and NEWEST_WINDOWS back from it are tried in turn."""

    def kth(cond: str, n: int) -> Any:
        rows = olap.query(f"SELECT {column} FROM {{db}}.{table} WHERE {where}{cond}"
                          f" ORDER BY {column} DESC LIMIT 1 OFFSET {n - 1}", params)
        return rows[0][0] if rows else None

    if indexed:
        newest = kth("", 1)
        if newest is None or k == 1:
            return newest
        for window in NEWEST_WINDOWS:
            found = kth(f" AND {column} >= fromUnixTimestamp64Milli({epoch_ms(newest - window)}, 'UTC')", k)
            if found is not None:
                return found
    return kth("", k)


# ---- time ------------------------------------------------------------------------------------
def epoch_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def parse_time_param(value: Any, name: str) -> datetime | None:
    """An ISO-8601 query parameter as an aware UTC datetime; InvalidRequest when malformed."""
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"Invalid {name}: {value!r} is not an ISO 8601 datetime") from None


def utc(value: datetime | None) -> datetime | None:
    """A datetime read from the OLAP store (naive UTC) as aware UTC; the epoch (unset) as None."""
    if value is None:
        return None
    if value.tzinfo is None:
        if value == EPOCH_NAIVE:
            return None
        return value.replace(tzinfo=UTC)
    if value.timestamp() == 0:
        return None
    return value.astimezone(UTC)


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    start, end = utc(start), utc(end)
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


# ---- values ----------------------------------------------------------------------------------
def nz(value: str | None) -> str | None:
    """'' (an unset merged String) as None."""
    return value if value else None


def parse_json(text: str | None) -> Any:
    """Stored JSON text as a value; text that is not JSON is returned as the string it is."""
    if text is None or text == "":
        return None
    try:
        return orjson.loads(cap_json_depth(text))  # any reader can serialise it again
    except orjson.JSONDecodeError:
        return text


def merge_metadata(pieces: Mapping[str, Any] | None, latest: str | None) -> Any:
    """Metadata merged key by key, as Langfuse merges the pieces of a trace or observation.

    `pieces`: the `metadata_pieces` column read with maxMap (migrations 0002, 0006), a map of JSON
    text to the latest event time that carried it. They apply oldest first; an object piece updates
    the keys it names (the later piece wins a key), any other JSON value replaces the whole. `latest` is the `metadata` column (the
    latest piece whole): rows written before 0002 have no pieces, so when `latest` is not among the
    pieces it came from such a row and is newer than every piece (argMax chose it): it applies last.
    """
    ordered = [text for text, _ in sorted((pieces or {}).items(), key=lambda x: (x[1], x[0]))]
    if latest and latest not in ordered:
        ordered.append(latest)
    merged: Any = None
    for text in ordered:
        value = parse_json(text)
        if isinstance(value, dict) and isinstance(merged, dict):
            merged = {**merged, **value}
        else:
            merged = value
    return merged


def json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def finite(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def total_cost(costs: Mapping[str, float] | None) -> float | None:
    """A cost map's total: its "total" key, else the sum of the others; None when empty."""
    if not costs:
        return None
    if "total" in costs:
        return float(costs["total"])
    return float(sum(costs.values()))


def csv_list(value: str | None) -> list[str]:
    """`"a, b,,c"` -> ["a", "b", "c"]."""
    if not value:
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


# ---- field groups ----------------------------------------------------------------------------
def field_groups(fields: str | None, allowed: Iterable[str], default: Iterable[str]) -> set[str]:
    """A comma-separated `fields` parameter as a set of known group names (400 on unknown ones)."""
    names = csv_list(fields)
    if not names:
        return set(default)
    allowed = set(allowed)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise InvalidRequest(
            f"Unknown field group(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}"
        )
    return set(names)
