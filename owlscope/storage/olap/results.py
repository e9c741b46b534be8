"""Results of embedded reads, kept until a write that can change them.

In the embedded deployment one process owns the store: every insert, delete, migration and rollup
refresh goes through its `Olap`. So a read's result stays true until the next write, and a read
repeated before one (a dashboard opened again, a trace looked at twice, an API client polling
data that did not change) can be answered from memory instead of planning and running the same
statement again: the engine's floor is 2-10 ms a statement at any size (docs/performance.md), a
kept result about 0.05 ms.

- Writes are scoped by project, and by table, where that is certain. A read is of one project
  (`read_scope`) when each table it names is filtered by the same `project_id = {param:String}`;
  its scope is that project and those tables. An insert whose caller names the projects of its rows
  (`Olap.insert_arrow(..., projects=)`, as ingestion does) writes those projects in the table it
  inserts into and in every table a materialized view carries its rows to (the store's views are
  read from the engine, `Olap.reached`): it drops the kept reads of those tables of those projects
  and the reads of no known project. The ingestion of spans then leaves alone another project's
  kept reads and, in its own project, the reads of scores and of the rollups. A statement whose
  caller knows it writes one project's rows only says so (`Olap.command(..., project=)`: rollup
  refreshes, trace and score deletions); it writes the table it names (`INSERT INTO`, `DELETE
  FROM`, `ALTER TABLE`) and the tables that one's views reach, or, when it names none, every
  table of the project. Every other write (migrations, other statements, a write sent as a query,
  an insert whose projects are not named) drops every kept result.
- Within a table, writes and reads can be scoped further by key, where the caller knows the rows
  it reads and writes by a column they share (ingestion and the trace reads: the trace id). A read
  whose caller says it reads only the rows of keys K (`Olap.query(..., keys=K)`: one trace, a page
  of traces) is dropped by a write of its tables that names a key in K, or that names no keys; an
  insert whose caller names the keys of its rows (`Olap.insert_arrow(..., keys=)`) names them in
  every table it reaches (the views carry a row's key along: a trace's observations, its trace row
  and its bounds keep its trace id). So a trace looked at while its project takes new traces stays
  kept, and so does a poll for a trace not yet stored (an empty result), until a write of that
  trace. The caller vouches for both sides: a keyed read reads no row outside its keys, and every
  write that can change the rows of a key names it (or names no keys).
- A result is kept only if no write that could change it finished while it was read: the
  generation it was read under (`generation(scope)`) must still be current when it is put, and,
  for a keyed read, none of the keyed writes of its tables since then (the last RECENT_WRITES of
  each table of a project are remembered) may name one of its keys.
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
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

MAX_ROWS = 2_000
# keyed writes remembered per table of a project, for the keyed reads running meanwhile: a keyed read
# under which more writes of one of its tables finished is not kept (a read takes milliseconds, an
# insert of one table comes at most a few times a second)
RECENT_WRITES = 32
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
_TABLE = re.compile(r"\b(?:FROM|JOIN)\s+\{db\}\.`?(\w+)`?", re.IGNORECASE)
_PROJECT_FILTER = re.compile(r"\bproject_id\s*=\s*\{(\w+):String\}")
# the table a statement writes (`{db}` not yet filled in)
_WRITTEN = re.compile(r"\s*(?:INSERT\s+INTO|DELETE\s+FROM|ALTER\s+TABLE)\s+\{db\}\.`?(\w+)`?", re.IGNORECASE)


@dataclass(frozen=True)
class Scope:
    """What a read reads: rows of `project` in `tables` only; with `keys`, only the rows of those
    keys (see the module's docstring)."""

    project: str
    tables: frozenset[str]
    keys: frozenset[str] | None = None


def read_scope(text: str, params: dict[str, Any] | None) -> Scope | None:
    """The project and tables a read reads, or None when that is not certain: every table the
    statement names (`FROM {db}.x`, `JOIN {db}.x`, with `{db}` not yet filled in) must come with a
    filter `project_id = {name:String}` on one parameter, and there must be at least as many such
    filters as tables. A read that names a table another way, or filters by several parameters,
    has no scope (any write drops it)."""
    if not params:
        return None
    tables = _TABLE.findall(text)
    if not tables:
        return None
    names = _PROJECT_FILTER.findall(text)
    if len(names) < len(tables) or len(set(names)) != 1:
        return None
    if text.count("{db}") != len(tables):  # a table named another way (`INSERT INTO`, `IN {db}.x`, ...)
        return None
    value = params.get(names[0])
    return Scope(value, frozenset(tables)) if isinstance(value, str) else None


def written_table(text: str) -> str | None:
    """The table a statement writes (`INSERT INTO {db}.x`, `DELETE FROM {db}.x`, `ALTER TABLE
    {db}.x`), None when it names none that way."""
    m = _WRITTEN.match(text)
    return m.group(1) if m else None


_VIEW_TARGET = re.compile(r"\bTO\s+`?\w+`?\.`?(\w+)`?", re.IGNORECASE)
_VIEW_NAMED = re.compile(r"\b(ARRAY\s+)?(?:FROM|JOIN)\s+(\S+)", re.IGNORECASE)
_QUALIFIED = re.compile(r"`?\w+`?\.`?(\w+)`?")


def view_edges(create_queries: Iterable[str]) -> dict[str, set[str]] | None:
    """Table -> the tables a materialized view writes rows inserted into it to, from the views'
    `CREATE MATERIALIZED VIEW ... TO db.target AS SELECT ... FROM db.source` statements (every table
    the SELECT names counts as a source). None when that cannot be read with certainty: a view
    without a `TO` table, or a SELECT that names a table without its database."""
    edges: dict[str, set[str]] = {}
    for create in create_queries:
        head, sep, select = create.partition(" AS SELECT ")
        target = _VIEW_TARGET.search(head)
        if not sep or target is None:
            return None
        for array, named in _VIEW_NAMED.findall(select):
            if array or named.startswith("("):  # ARRAY JOIN of values; a subquery (its own FROM follows)
                continue
            source = _QUALIFIED.match(named)
            if source is None:
                return None
            edges.setdefault(source.group(1), set()).add(target.group(1))
    return edges


def reached(table: str, edges: dict[str, set[str]]) -> frozenset[str]:
    """`table` and every table the views carry its inserted rows to, views of views included."""
    seen = {table}
    todo = [table]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return frozenset(seen)


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
    scope: Scope | None  # what was read, None: not known (see read_scope)

    def copy_rows(self) -> list[tuple]:
        if not self.containers:
            return list(self.rows)
        return [_thaw(row, self.containers) for row in self.rows]


def _thaw(row: tuple, containers: tuple[int, ...]) -> tuple:
    cells = list(row)
    for i in containers:
        cells[i] = _copy(cells[i])
    return tuple(cells)


Key = tuple[str, str]
Table = tuple[str, str]  # (project, table)
Entry = Table | None  # what an unkeyed read is indexed under; None: no known project


def _entries(scope: Scope | None) -> list[Entry]:
    return [None] if scope is None else [(scope.project, t) for t in scope.tables]


class _Kept(LRUCache):
    """The results by key, least recently used first out, telling `evicted` what goes."""

    def __init__(self, max_bytes: int, evicted: Callable[[Key, Result], None]):
        super().__init__(maxsize=max_bytes, getsizeof=lambda r: r.size)
        self._evicted = evicted

    def popitem(self) -> tuple[Key, Result]:
        key, result = super().popitem()
        self._evicted(key, result)
        return key, result


class ResultCache:
    """Kept reads, dropped by the writes that can change them.

    Write counters: `_all` goes up with every write (a read of no known project is kept only if it
    did not move; it also numbers the writes), `_store` with every write of no known project,
    `_projects[p]` with every write to project p whose tables are not known, `_tables[(p, t)]` with
    every write to table t of project p, and `_unkeyed[(p, t)]` with those of them that name no
    keys. A read of p over tables T is kept only if `_store`, `_projects[p]` and `_tables[(p, t)]`
    for each t in T did not move; a keyed read, if `_unkeyed[(p, t)]` did not move instead, and no
    keyed write of one of its tables since (`_recent`) named one of its keys."""

    def __init__(self, max_bytes: int):
        self._lock = threading.Lock()
        self._index: dict[Entry, set[Key]] = {}  # the unkeyed reads kept, by what they read
        self._keyed: dict[Table, dict[str, set[Key]]] = {}  # the keyed reads kept, by table and key
        self._results = _Kept(max_bytes, self._unindex)
        self._all = 0
        self._store = 0
        self._projects: dict[str, int] = {}
        self._tables: dict[Table, int] = {}
        self._unkeyed: dict[Table, int] = {}
        # the last keyed writes of each table of a project, (number, keys); `_lost`: the number of the
        # newest one no longer remembered
        self._recent: dict[Table, deque[tuple[int, frozenset[str]]]] = {}
        self._lost: dict[Table, int] = {}
        self._views: dict[str, dict[str, set[str]]] = {}  # database -> its views' edges (see `views`)
        self.hits = 0
        self.misses = 0
        self.enabled = True

    def disable(self) -> None:
        """For good: something writes the store where this cache cannot see it."""
        with self._lock:
            self.enabled = False
            self._drop_all()

    def generation(self, scope: Scope | None) -> tuple[int, ...]:
        """What a read of `scope` is read under: `put` keeps it only if no write that can change it
        finished since."""
        with self._lock:
            return self._generation(scope)

    def get(self, key: Key) -> Result | None:
        with self._lock:
            found = self._results.get(key) if self.enabled else None
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
            return found

    def put(self, key: Key, scope: Scope | None, generation: tuple[int, ...], names: tuple[str, ...],
            rows: list, containers: tuple[int, ...]) -> None:
        """Keep copies of the rows of a read of `scope` made under `generation` (`containers`: the
        columns holding dicts, lists or tuples), unless a write that can change them has finished
        since."""
        kept = [_thaw(r, containers) for r in rows] if containers else [tuple(r) for r in rows]
        result = Result(names, kept, containers, 200 + sum(_row_size(r) for r in kept), scope)
        if result.size <= self._results.maxsize:
            with self._lock:
                if self.enabled and self._current(scope, generation):
                    self._results[key] = result
                    self._indexed(key, scope)

    def _generation(self, scope: Scope | None) -> tuple[int, ...]:
        if scope is None:
            return (self._all,)
        p = scope.project
        if scope.keys is None:
            return (self._store, self._projects.get(p, 0),
                    *(self._tables.get((p, t), 0) for t in sorted(scope.tables)))
        return (self._store, self._projects.get(p, 0),
                *(self._unkeyed.get((p, t), 0) for t in sorted(scope.tables)), self._all)

    def _current(self, scope: Scope | None, generation: tuple[int, ...]) -> bool:
        """Whether no write that can change a read of `scope` made under `generation` has finished."""
        if scope is None or scope.keys is None:
            return generation == self._generation(scope)
        *counters, since = generation
        if tuple(counters) != self._generation(scope)[:-1]:
            return False
        keys = scope.keys
        for t in scope.tables:
            table = (scope.project, t)
            if self._lost.get(table, 0) > since:
                return False
            for number, written in reversed(self._recent.get(table, ())):
                if number <= since:
                    break
                if not keys.isdisjoint(written):
                    return False
        return True

    def _indexed(self, key: Key, scope: Scope | None) -> None:
        if scope is None or scope.keys is None:
            for entry in _entries(scope):
                self._index.setdefault(entry, set()).add(key)
            return
        for t in scope.tables:
            by_key = self._keyed.setdefault((scope.project, t), {})
            for k in scope.keys:
                by_key.setdefault(k, set()).add(key)

    def written(self, projects: Iterable[str] | None = None, tables: Iterable[str] | None = None,
                keys: Iterable[str] | None = None) -> None:
        """After a write: of the rows of `projects` only, or (None) of anything; in `tables` only,
        or (None) in any table of those projects; of the rows of `keys` only in those tables, or
        (None) of any rows."""
        with self._lock:
            self._all += 1
            if projects is None:
                self._drop_all()
                return
            projects = list(projects)
            tables = None if tables is None else list(tables)
            keys = None if keys is None or tables is None else frozenset(keys)
            dropped: set[Key] = set(self._index.pop(None, ()))
            for p in projects:
                if tables is None:  # every table of p (rare: a statement naming no table it writes)
                    self._projects[p] = self._projects.get(p, 0) + 1
                    for entry in [e for e in self._index if e is not None and e[0] == p]:
                        dropped.update(self._index.pop(entry))
                    for table in [e for e in self._keyed if e[0] == p]:
                        for ks in self._keyed.pop(table).values():
                            dropped.update(ks)
                    continue
                for t in tables:
                    table = (p, t)
                    self._tables[table] = self._tables.get(table, 0) + 1
                    dropped.update(self._index.pop(table, ()))
                    if keys is None:
                        self._unkeyed[table] = self._unkeyed.get(table, 0) + 1
                        for ks in self._keyed.pop(table, {}).values():
                            dropped.update(ks)
                        continue
                    recent = self._recent.get(table)
                    if recent is None:
                        recent = self._recent[table] = deque(maxlen=RECENT_WRITES)
                    elif len(recent) == RECENT_WRITES:
                        self._lost[table] = recent[0][0]
                    recent.append((self._all, keys))
                    by_key = self._keyed.get(table)
                    if by_key:
                        for k in keys & by_key.keys():
                            dropped.update(by_key.pop(k))
            for key in dropped:
                result = self._results.pop(key, None)
                if result is not None:
                    self._unindex(key, result)

    def views(self, database: str, load: Callable[[], dict[str, set[str]] | None]) -> dict[str, set[str]] | None:
        """The edges of `database`'s materialized views (`view_edges`), loaded once per store and
        again after any write of no known project (migrations change views)."""
        with self._lock:
            found = self._views.get(database)
            before = self._store
        if found is not None:
            return found
        edges = load()
        with self._lock:
            if edges is not None and self._store == before:
                self._views[database] = edges
        return edges

    def _unindex(self, key: Key, result: Result) -> None:
        scope = result.scope
        if scope is None or scope.keys is None:
            for entry in _entries(scope):
                keys = self._index.get(entry)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._index[entry]
            return
        for t in scope.tables:
            by_key = self._keyed.get((scope.project, t))
            if by_key is None:
                continue
            for k in scope.keys:
                held = by_key.get(k)
                if held is not None:
                    held.discard(key)
                    if not held:
                        del by_key[k]
            if not by_key:
                del self._keyed[(scope.project, t)]

    def _drop_all(self) -> None:
        self._all += 1
        self._store += 1
        self._results.clear()
        self._index.clear()
        self._keyed.clear()
        self._recent.clear()
        self._lost.clear()
        self._views.clear()

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
