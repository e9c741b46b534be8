"""The OLAP seam: ClickHouse SQL through clickhouse-connect, embedded (chDB) or over HTTP.

One implementation for both: `chdb://<dir>` runs ClickHouse in this process, `http(s)://` talks to
a server or cluster. A query holds a client of its own for its duration, because work on one chDB
connection is serialized and HTTP clients keep per-session state. Clients are pooled, not kept per
thread: the request threads come and go (the server's worker threads exit after seconds idle), and
opening a client costs tens of milliseconds (a chDB connection, the handshake queries, the session
settings), which a thread-local client would pay again on the first request after every pause and
never give back.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.binding import format_str
from clickhouse_connect.driver.client import Client

from owlscope.config import ConfigError, Settings
from owlscope.errors import ServiceUnavailable
from owlscope.storage.olap import results

log = logging.getLogger("owlscope.olap")

# Rows sent to a server travel as Arrow with zstd-compressed buffers: span input and output text
# shrinks to about a sixth, for a few microseconds of CPU per row on each side. (clickhouse-connect
# compresses inserts only together with every response, which `compress=False` turns off.)
ARROW_WRITE_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")
INSERT_FILE_PREFIX = "owlscope-insert-"
STALE_INSERT_SECONDS = 600


TOO_BIG = ("This read needs more memory than the analytics engine allows each query. Narrow its time range or"
           " filters; dashboards and metrics over whole hours get cheaper once the rollups have been refreshed"
           " (every minute).")


@contextmanager
def _engine_limits() -> Iterator[None]:
    """A read the engine stops at its memory cap is a 503 with what to do, not an internal error."""
    try:
        yield
    except Exception as exc:
        if "MEMORY_LIMIT_EXCEEDED" in str(exc):
            raise ServiceUnavailable(TOO_BIG, retry_after=60) from exc
        raise


class Olap:
    def __init__(self, settings: Settings, *, database: str | None = None):
        self.url = settings.olap_url
        self.database = database or settings.clickhouse_db
        self.embedded = self.url.startswith("chdb://")
        self.cluster = settings.clickhouse_cluster_name if settings.clickhouse_cluster_enabled else None
        self._settings = settings
        self._local = threading.local()
        self._clients: list[Client] = []
        self._idle: list[Client] = []  # pooled clients not in use (list.pop/append are atomic)
        self._lock = threading.Lock()
        self._insert_path: Path | None = None
        # reads kept until a write that can change them (results.py): embedded stores only, whose
        # every writer is here
        self._results = (results.shared(self.url, settings.chdb_result_cache_mb * 1024 * 1024)
                         if self.embedded and settings.chdb_result_cache_mb > 0 else None)

    @property
    def result_cache(self) -> results.ResultCache | None:
        """The reads of this store kept until a write that can change them (None: not kept, see
        results.py)."""
        return self._results

    # ---- connections --------------------------------------------------------------------
    def _chdb_options(self) -> dict[str, int]:
        # chDB sizes itself for a server (90% of RAM) unless told otherwise. The uncompressed cache
        # keeps decompressed blocks of small reads (the engine skips it for large scans): a page of
        # traces or one trace reads the same few blocks of input and output text again and again,
        # and decompressing them was a quarter of such a read's CPU at 20,000 spans (docs/performance.md).
        return {
            "max_server_memory_usage": self._settings.chdb_max_memory_mb * 1024 * 1024,
            "mark_cache_size": 256 * 1024 * 1024,
            "uncompressed_cache_size": self._settings.chdb_uncompressed_cache_mb * 1024 * 1024,
            "index_mark_cache_size": 64 * 1024 * 1024,
        }

    def _connect(self) -> Client:
        s = self._settings
        if self.embedded:
            from clickhouse_connect.driver._chdbclient import ChdbClient

            mem = s.chdb_max_memory_mb * 1024 * 1024
            path = self.url[len("chdb://") :]
            try:
                return ChdbClient(
                    path=path, chdb_options=self._chdb_options(),
                    settings={"max_memory_usage": mem // 2, "max_threads": 2,
                              "use_uncompressed_cache": int(s.chdb_uncompressed_cache_mb > 0)},
                )
            except Exception as exc:
                if _has_tuple_metadata_pieces(path):
                    raise ConfigError([("OWLSCOPE_DATA_DIR", TUPLE_PIECES_PROBLEM, TUPLE_PIECES_FIX)]) from exc
                raise
        u = urlparse(self.url)
        return clickhouse_connect.get_client(
            host=u.hostname or "127.0.0.1",
            port=u.port or (8443 if u.scheme == "https" else 8123),
            secure=u.scheme == "https",
            username=u.username or s.clickhouse_user,
            password=u.password or s.clickhouse_password,
            compress=False,
            autogenerate_session_id=False,
            connect_timeout=5,
            send_receive_timeout=120,
        )

    @property
    def client(self) -> Client:
        """This thread's own client, for callers that stream or send several statements on one
        client. Single statements go through the pool (`query`, `command`); Native chunks through
        `read_native` / `insert_native`. What is sent on this client is not seen by the result
        cache, so handing it out turns the cache of this store off."""
        if self._results is not None:
            self._results.disable()
        c = getattr(self._local, "client", None)
        if c is None:
            c = self._connect()
            self._local.client = c
            with self._lock:
                self._clients.append(c)
        return c

    @contextmanager
    def _lease(self) -> Iterator[Client]:
        """A pooled client for one statement: an idle one, or a new one when all are busy (the pool
        grows to the number of statements ever run at once, and is closed with the Olap)."""
        try:
            c = self._idle.pop()
        except IndexError:
            c = self._connect()
            with self._lock:
                self._clients.append(c)
        try:
            yield c
        finally:
            self._idle.append(c)

    def close(self) -> None:
        with self._lock:
            for c in self._clients:
                try:
                    c.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
            self._clients.clear()
            self._idle.clear()
        self._local = threading.local()

    # ---- statements ---------------------------------------------------------------------
    def sql(self, text: str) -> str:
        """Fill the `{db}` placeholder (database names are settings, not user input)."""
        return text.replace("{db}", self.database)

    def command(self, text: str, params: dict[str, Any] | None = None, *, project: str | None = None) -> Any:
        """Run a statement; `project`: the caller knows it writes rows of this project only (it
        then leaves the kept reads of other projects alone, and those of this project's tables the
        statement does not write: see `results.written_table`)."""
        try:
            with self._lease() as c:
                return c.command(self.sql(text), parameters=params)
        finally:
            if project is None:
                self._written()
            else:
                self._written([project], results.written_table(text))

    def _written(self, projects: list[str] | None = None, table: str | None = None,
                 keys: Iterable[str] | None = None) -> None:
        """After a statement that may have changed the store (also one that failed part-way);
        `projects`: it wrote rows of these projects only (None: anything); `table`: it wrote this
        table only (and what its views reach; None: any table); `keys`: the rows of these keys only
        (None: any rows; see results.py)."""
        if self._results is not None:
            self._results.written(projects, None if table is None or projects is None else self.reached(table),
                                  keys)

    def reached(self, table: str) -> frozenset[str] | None:
        """`table` and every table the store's materialized views carry rows inserted into it to;
        None when the views cannot be read (a write then counts as one of every table)."""
        cache = self._results
        if cache is None:
            return None

        def load() -> dict[str, set[str]] | None:
            with self._lease() as c:
                rows = c.query("SELECT create_table_query FROM system.tables WHERE database = {d:String}"
                               " AND engine = 'MaterializedView'", parameters={"d": self.database}).result_rows
            return results.view_edges(r[0] for r in rows)

        try:
            edges = cache.views(self.database, load)
        except Exception:  # noqa: BLE001 - after a write: never fail it, drop more instead
            log.warning("cannot read the materialized views of %s", self.database, exc_info=True)
            return None
        return None if edges is None else results.reached(table, edges)

    def _read(self, text: str, params: dict[str, Any] | None,
              keys: Iterable[str] | None = None) -> tuple[tuple[str, ...], list]:
        """(column names, rows) of a statement: a plain read from the result cache when it holds
        it, else from the engine (and kept when it may be); `keys`: the caller knows it reads only
        rows of these keys (see results.py)."""
        sql = self.sql(text)
        cache = self._results
        if cache is None:
            return self._run(sql, params)[:2]
        if not results.is_read(sql):
            try:
                return self._run(sql, params)[:2]
            finally:
                cache.written()  # a statement other than a read, sent as a query
        if results.volatile(sql):
            return self._run(sql, params)[:2]
        key = (sql, repr(params))
        kept = cache.get(key)
        if kept is not None:
            return kept.names, kept.copy_rows()
        scope = results.read_scope(text, params)
        if scope is not None and keys is not None:
            scope = results.Scope(scope.project, scope.tables, frozenset(keys))
        generation = cache.generation(scope)
        names, rows, types = self._run(sql, params)
        if len(rows) <= results.MAX_ROWS:
            # keeps copies: these rows stay the caller's
            cache.put(key, scope, generation, names, rows, results.container_columns(types))
        return names, rows

    def _run(self, sql: str, params: dict[str, Any] | None) -> tuple[tuple[str, ...], list, list[str]]:
        """(column names, rows, column type names) of a statement, from the engine."""
        with _engine_limits(), self._lease() as c:  # the rows are read before the client goes back to the pool
            res = c.query(sql, parameters=params)
            return tuple(res.column_names), res.result_rows, [t.name for t in res.column_types]

    def query(self, text: str, params: dict[str, Any] | None = None, *,
              keys: Iterable[str] | None = None) -> list[tuple]:
        """The rows of a read; `keys`: the caller knows it reads only the rows of these keys (a write
        of other keys then leaves it kept, see results.py)."""
        return self._read(text, params, keys)[1]

    def query_dicts(self, text: str, params: dict[str, Any] | None = None, *,
                    keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The rows of a read as dicts; `keys` as for `query`."""
        names, rows = self._read(text, params, keys)
        return [dict(zip(names, row, strict=True)) for row in rows]

    def read_native(self, text: str, params: dict[str, Any] | None = None) -> bytes:
        """The rows of a read as ClickHouse Native bytes (copies, backups)."""
        with self._lease() as c:
            return c.raw_query(self.sql(text), parameters=params, fmt="Native")

    def insert_native(self, table: str, data: bytes) -> None:
        """Insert rows given as ClickHouse Native bytes (a chunk `read_native` made)."""
        try:
            with self._lease() as c:
                c.raw_insert(f"{self.database}.`{table}`", insert_block=data, fmt="Native")
        finally:
            self._written()

    def insert_arrow(self, table: str, data: pa.Table, settings: dict[str, int] | None = None, *,
                     projects: Iterable[str] | None = None, keys: Iterable[str] | None = None) -> None:
        """Insert an Arrow table; `projects`: the caller knows the rows are of these projects only
        (the store's kept reads of other projects then stay); `keys`: and of these keys only (the
        kept reads of other keys stay, see results.py); `settings`: engine settings over the
        defaults below (benchmarks compare variants with them). `optimize_on_insert = 0`: the
        engine would otherwise merge the rows of each new part that share a sort key before
        writing it, which for the aggregate tables is a second fold of every state the
        materialized view has just folded (the view's GROUP BY already made one row per key); it
        cost about a fifth of the insert's CPU. Rows of one key in different parts are merged by
        background merges and by every read either way."""
        if not data.num_rows:
            return
        try:
            self._insert_arrow(table, data, settings)
        finally:
            self._written(None if projects is None else list(projects), table, keys)

    def _insert_arrow(self, table: str, data: pa.Table, settings: dict[str, int] | None) -> None:
        engine = {"optimize_on_insert": 0, **(settings or {})}
        if self.embedded:
            # The engine reads the rows from an Arrow stream file in its own temporary directory,
            # deleted right after. (Its `Python()` table function could read the table from this
            # process's memory, but imports pandas to find it: 0.3 s on the first insert and ~40 MiB
            # resident, for a library nothing else here uses. Writing and reading the file costs
            # about as much: `bench/insert_cost.py` has both.)
            engine = {"max_insert_threads": 2, "max_threads": 2, **engine}
            columns = ", ".join(f"`{n}`" for n in data.schema.names)
            path = self._insert_dir() / f"{INSERT_FILE_PREFIX}{uuid.uuid4().hex}.arrows"
            try:
                with pa.OSFile(str(path), "wb") as f, pa.ipc.new_stream(f, data.schema) as writer:
                    writer.write_table(data)
                self._chdb_conn().query(
                    f"INSERT INTO {self.database}.{table} ({columns}) SELECT {columns} "
                    f"FROM file({format_str(str(path))}, 'ArrowStream') "
                    "SETTINGS " + ", ".join(f"{k} = {v}" for k, v in engine.items())
                )
            finally:
                path.unlink(missing_ok=True)
            return
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, data.schema, options=ARROW_WRITE_OPTIONS) as writer:
            writer.write_table(data)
        with self._lease() as c:
            c.raw_insert(f"{self.database}.{table}", data.schema.names, sink.getvalue(), fmt="Arrow",
                         settings=engine)

    def _insert_dir(self) -> Path:
        """The embedded engine's temporary directory, where inserts stage their rows. Files left by
        a process that died mid-insert are removed by the first insert of the next one (those older
        than STALE_INSERT_SECONDS: another Olap on the same store may be inserting right now)."""
        with self._lock:
            if self._insert_path is None:
                d = Path(self.url[len("chdb://") :]) / "tmp"
                d.mkdir(parents=True, exist_ok=True)
                before = time.time() - STALE_INSERT_SECONDS
                for stale in d.glob(f"{INSERT_FILE_PREFIX}*.arrows"):
                    with suppress(OSError):
                        if stale.stat().st_mtime < before:
                            stale.unlink()
                self._insert_path = d
            return self._insert_path

    def _chdb_conn(self):  # noqa: ANN202 - chdb's connection type is not exported
        conn = getattr(self._local, "chdb_conn", None)
        if conn is None:
            import chdb
            from clickhouse_connect.driver._chdbclient import build_connection_string

            conn = chdb.connect(build_connection_string(self.url[len("chdb://") :], self._chdb_options()))
            self._local.chdb_conn = conn
            with self._lock:
                self._clients.append(conn)
        return conn

    def version(self) -> str:
        return str(self.query("SELECT version()")[0][0])

    def ping(self) -> bool:
        try:
            return self.query("SELECT 1")[0][0] == 1
        except Exception:  # noqa: BLE001 - reported by the caller
            return False


# A store written before OLAP migration 0006 keeps `metadata_pieces` as a tuple of arrays merged with
# maxMap, an aggregate the lite engine (chdb-core-lite) does not have: it cannot open such a store.
TUPLE_PIECES_PROBLEM = ("the embedded OLAP store was created by an earlier Owlscope with the full chDB engine and "
                        "needs OLAP migration 0006, which the lite chDB engine installed now cannot run")
TUPLE_PIECES_FIX = ("run the migration once with the full engine, then go back to the lite one: "
                    "pip install --force-reinstall --no-deps chdb-core && owlscope migrate && "
                    "pip uninstall -y chdb-core chdb && pip install --force-reinstall --no-deps chdb-core-lite "
                    "(docs/deploy.md, Upgrading)")


def _has_tuple_metadata_pieces(path: str) -> bool:
    """Whether a table definition of the embedded store at `path` has the pre-0006 `metadata_pieces`."""
    try:
        return any("maxMap, Tuple(" in f.read_text(errors="replace") for f in Path(path).glob("store/*/*/*.sql"))
    except OSError:
        return False
