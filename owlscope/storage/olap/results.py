"""Results of embedded reads, kept until a write that can change them.

In the embedded deployment one process owns the store: every insert, delete, migration and rollup
refresh goes through its `Olap`. So a read's result stays true until the next write, and a read
repeated before one (a dashboard opened again, a trace looked at twice, an API client polling
data that did not change) can be answered from memory instead of planning and running the same
statement again: the engine's floor is 2-10 ms a statement at any size (docs/performance.md), a
kept result about 0.05 ms.

- Writes are scoped by project where that is certain. An insert whose caller names the projects
  of its rows (`Olap.insert_arrow(..., projects=)`, as ingestion does) drops the kept reads of
  those projects and the reads of no known project. A read is of one project (`read_scope`) when
  each table it names is filtered by the same `project_id = {param:String}`; the ingestion of one
  project then leaves the other projects' kept reads alone. A statement whose caller knows it
  writes one project's rows only says so (`Olap.command(..., project=)`: rollup refreshes, trace
  and score deletions). Every other write (migrations, other statements, a write sent as a query,
  an insert whose projects are not named) drops every kept result.
- A result is kept only if no write that could change it finished while it was read: the
  generation it was read under (`generation(scope)`) must still be current when it is put.
- Only plain reads are kept: a statement that starts with SELECT or WITH, names no function whose
  value changes by itself (`now()`, `rand()`, ...) and no system table or part column (merges
  change those without a write), and returns at most MAX_ROWS rows; the rest always goes to the
  engine.
- Bounded by an estimate of the bytes held (least recently used results go first).
- The rows handed out are the caller's own: Map and Array cells (dicts and lists) are copied on the
  way in and out, so a caller that changes one cannot change what the next caller gets.

A store written by another process (a scale-out ClickHouse) has writes this process never sees: the
cache is for `chdb://` stores only. Every `Olap` on one store in a process shares one cache, whatever
database it names (a write through any of them drops what it can change).
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

MAX_ROWS = 2_000
_READ = re.compile(r"\s*(SELECT|WITH)\b", re.IGNORECASE)
# values that change without a write: clock, randomness, the engine's own state and part layout,
# and data outside the store (table functions over files, URLs, object stores, other servers)
_VOLATILE = re.compile(
    r"\b(now\w*|today|yesterday|current_?timestamp|rand\w*|generateUUID\w*|generateULID|"
    r"randomString\w*|uptime|rowNumberInAllBlocks|blockNumber|file|url|s3\w*|remote\w*)\s*\(|"
    r"\bsystem\s*\.|\b_part\w*\b",
    re.IGNORECASE,
)


# a table the statement reads (after FROM or JOIN; `{db}` not yet filled in)
_TABLE = re.compile(r"\b(?:FROM|JOIN)\s+\{db\}\.", re.IGNORECASE)
_PROJECT_FILTER = re.compile(r"\bproject_id\s*=\s*\{(\w+):String\}")


def read_scope(text: str, params: dict[str, Any] | None) -> str | None:
    """The one project a read reads, or None when that is not certain: every table the statement
    names (`FROM {db}.x`, `JOIN {db}.x`, with `{db}` not yet filled in) must come with a filter
    `project_id = {name:String}` on one parameter, and there must be at least as many such filters
    as tables. A read that names a table another way, or filters by several parameters, has no
    scope (any write drops it)."""
    if not params:
        return None
    tables = len(_TABLE.findall(text))
    if not tables:
        return None
    names = _PROJECT_FILTER.findall(text)
    if len(names) < tables or len(set(names)) != 1:
        return None
    if text.count("{db}") != tables:  # a table named another way (`INSERT INTO`, `IN {db}.x`, ...)
        return None
    value = params.get(names[0])
    return value if isinstance(value, str) else None


def is_read(sql: str) -> bool:
    """Whether `sql` (the statement as sent) is a plain read (anything else sent through a query
    counts as a write)."""
    return bool(_READ.match(sql))


def volatile(sql: str) -> bool:
    """Whether a read's result can change without a write (it is then never kept)."""
    return bool(_VOLATILE.search(sql))


_CONTAINERS = (dict, list, tuple)
# column types whose values are dicts, lists or tuples (the rest are str, bytes, numbers, times)
_CONTAINER_TYPES = ("Map(", "Array(", "Tuple(", "Nested(", "JSON", "Object(", "Variant(", "Dynamic")


def container_columns(type_names: list[str]) -> tuple[int, ...]:
    """The columns of a result whose cells the caller could change in place."""
    return tuple(i for i, t in enumerate(type_names) if any(c in t for c in _CONTAINER_TYPES))


def _copy(value: Any) -> Any:
    """A copy of a cell as deep as its containers go (dict.copy / list.copy where they hold plain
    values: several times cheaper than copy.deepcopy)."""
    kind = type(value)
    if kind is dict:
        out = value.copy()
        for k, v in out.items():
            if type(v) in _CONTAINERS:
                out[k] = _copy(v)
        return out
    if kind is list:
        return [_copy(v) if type(v) in _CONTAINERS else v for v in value]
    if kind is tuple:
        return tuple(_copy(v) if type(v) in _CONTAINERS else v for v in value)
    return value


def _row_size(row: tuple) -> int:
    """An estimate of a row's bytes: text at its length, anything else (containers by their
    length, not their contents) at a fixed cost."""
    size = 64
    for v in row:
        if type(v) is str or type(v) is bytes:
            size += 56 + len(v)
        elif type(v) in _CONTAINERS:
            size += 64 + 48 * len(v)
        else:
            size += 32
    return size


@dataclass(frozen=True)
class Result:
    names: tuple[str, ...]
    rows: list[tuple]
    containers: tuple[int, ...]  # columns with dict, list or tuple cells: copied for every caller
    size: int
    scope: str | None  # the project read, None: not known (see read_scope)

    def copy_rows(self) -> list[tuple]:
        if not self.containers:
            return list(self.rows)
        return [_thaw(row, self.containers) for row in self.rows]


def _thaw(row: tuple, containers: tuple[int, ...]) -> tuple:
    cells = list(row)
    for i in containers:
        cells[i] = _copy(cells[i])
    return tuple(cells)


class _Kept(LRUCache):
    """The results by key, least recently used first out, telling `evicted` what goes."""

    def __init__(self, max_bytes: int, evicted: Callable[[tuple[str, str], Result], None]):
        super().__init__(maxsize=max_bytes, getsizeof=lambda r: r.size)
        self._evicted = evicted

    def popitem(self) -> tuple[tuple[str, str], Result]:
        key, result = super().popitem()
        self._evicted(key, result)
        return key, result


class ResultCache:
    """Kept reads, dropped by the writes that can change them.

    Three write counters: `_all` goes up with every write (a read of no known project is kept only
    if it did not move), `_store` with every write of no known project, and `_projects[p]` with
    every write to project p (a read of p is kept only if neither of these moved)."""

    def __init__(self, max_bytes: int):
        self._lock = threading.Lock()
        self._by_scope: dict[str | None, set[tuple[str, str]]] = {}  # the keys kept, by scope
        self._results = _Kept(max_bytes, self._evicted)
        self._all = 0
        self._store = 0
        self._projects: dict[str, int] = {}
        self.hits = 0
        self.misses = 0
        self.enabled = True

    def disable(self) -> None:
        """For good: something writes the store where this cache cannot see it."""
        with self._lock:
            self.enabled = False
            self._drop_all()

    def generation(self, scope: str | None) -> tuple[int, ...]:
        """What a read of `scope` is read under: `put` keeps it only if this has not moved."""
        with self._lock:
            return self._generation(scope)

    def get(self, key: tuple[str, str]) -> Result | None:
        with self._lock:
            found = self._results.get(key) if self.enabled else None
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
            return found

    def put(self, key: tuple[str, str], scope: str | None, generation: tuple[int, ...], names: tuple[str, ...],
            rows: list, containers: tuple[int, ...]) -> None:
        """Keep copies of the rows of a read of `scope` made under `generation` (`containers`: the
        columns holding dicts, lists or tuples), unless a write that can change them has finished
        since."""
        kept = [_thaw(r, containers) for r in rows] if containers else [tuple(r) for r in rows]
        result = Result(names, kept, containers, 200 + sum(_row_size(r) for r in kept), scope)
        if result.size <= self._results.maxsize:
            with self._lock:
                if self.enabled and generation == self._generation(scope):
                    self._results[key] = result
                    self._by_scope.setdefault(scope, set()).add(key)

    def _generation(self, scope: str | None) -> tuple[int, ...]:
        return (self._all,) if scope is None else (self._store, self._projects.get(scope, 0))

    def written(self, projects: Iterable[str] | None = None) -> None:
        """After a write: of the rows of `projects` only, or (None) of anything."""
        with self._lock:
            self._all += 1
            if projects is None:
                self._drop_all()
                return
            for project in projects:
                self._projects[project] = self._projects.get(project, 0) + 1
            for scope in (None, *projects):
                for key in self._by_scope.pop(scope, ()):
                    self._results.pop(key, None)

    def _evicted(self, key: tuple[str, str], result: Result) -> None:
        keys = self._by_scope.get(result.scope)
        if keys is not None:
            keys.discard(key)

    def _drop_all(self) -> None:
        self._all += 1
        self._store += 1
        self._results.clear()
        self._by_scope.clear()

    @property
    def bytes_held(self) -> int:
        return int(self._results.currsize)


_caches: weakref.WeakValueDictionary[str, ResultCache] = weakref.WeakValueDictionary()
_caches_lock = threading.Lock()


def shared(store: str, max_bytes: int) -> ResultCache:
    """The one cache of a store (all its databases) in this process, made on first use: a write
    through any `Olap` on the store drops what any of them kept."""
    with _caches_lock:
        cache = _caches.get(store)
        if cache is None:
            cache = ResultCache(max_bytes)
            _caches[store] = cache
        return cache
