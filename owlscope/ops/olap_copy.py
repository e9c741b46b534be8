"""Copy the OLAP tables, in key-ordered chunks of ClickHouse Native format, between two OLAP
stores (transfer) or to and from files (backup, restore).

Only the tables that hold data are copied: MergeTree tables that no materialized view fills from
another copied table (a view's target is filled again by the insert into its source). Aggregate
states travel as they are, so a chunk copied twice merges to the same records: every table merges
with idempotent functions (argMax, min, max, groupUniqArray, Replacing), which is what makes a
resumed copy safe.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from owlscope.storage.olap.client import Olap

CHUNK_ROWS = 50_000
SKIP = frozenset({"schema_migrations"})
# Rollups are derived (tracing/rollups.py): not copied; the target reads raw rows until its own
# refresh has marks to build from.
SKIP_PREFIXES = ("rollup_",)


@dataclass(frozen=True)
class Table:
    name: str
    keys: list[str]
    key_types: list[str]

    def key_tuple(self) -> str:
        return "(" + ", ".join(f"`{k}`" for k in self.keys) + ")"

    def params(self, prefix: str, values: list[Any]) -> tuple[str, dict[str, Any]]:
        names = [f"{prefix}{i}" for i in range(len(self.keys))]
        sql = "(" + ", ".join(f"{{{n}:{t}}}" for n, t in zip(names, self.key_types, strict=True)) + ")"
        return sql, dict(zip(names, values, strict=True))


@dataclass(frozen=True)
class Chunk:
    table: str
    data: bytes
    rows: int
    last_key: list[Any]


def data_tables(olap: Olap) -> list[Table]:
    rows = olap.query_dicts(
        "SELECT name, engine, sorting_key, create_table_query, dependencies_table FROM system.tables "
        "WHERE database = {d:String} ORDER BY name", {"d": olap.database})
    merge = {r["name"]: r for r in rows if "MergeTree" in r["engine"] and r["name"] not in SKIP
             and not r["name"].startswith(SKIP_PREFIXES)}
    fed_by_view = set()
    for r in rows:
        if r["engine"] != "MaterializedView":
            continue
        target = re.search(r"\bTO\s+`?\w+`?\.`?(\w+)`?", r["create_table_query"])
        if target and any(r["name"] in merge[s]["dependencies_table"] for s in merge):
            fed_by_view.add(target.group(1))
    types = {(c[0], c[1]): c[2] for c in olap.query(
        "SELECT table, name, type FROM system.columns WHERE database = {d:String}", {"d": olap.database})}
    tables = []
    for name, r in merge.items():
        if name in fed_by_view:
            continue
        keys = [k.strip().strip("`") for k in r["sorting_key"].split(",") if k.strip()]
        tables.append(Table(name=name, keys=keys, key_types=[types[(name, k)] for k in keys]))
    return tables


def count_records(olap: Olap, table: Table) -> int:
    """Distinct records (sorting keys): what a reader sees after merges, on any number of parts."""
    return int(olap.query(f"SELECT uniqExact({table.key_tuple()}) FROM {{db}}.`{table.name}`")[0][0])


def read_chunks(olap: Olap, table: Table, after: list[Any] | None = None,
                chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """Rows with a key after `after`, in key order, a chunk at a time (rows sharing a key stay in
    one chunk, so `last_key` is a safe place to resume)."""
    keys = table.key_tuple()
    while True:
        where, params = "", {}
        if after is not None:
            sql, params = table.params("a", after)
            where = f"WHERE {keys} > {sql}"
        bound = olap.query(
            f"SELECT {', '.join(f'`{k}`' for k in table.keys)} FROM {{db}}.`{table.name}` {where} "
            f"ORDER BY {keys} LIMIT 1 OFFSET {chunk_rows - 1}", params)
        upper = ""
        if bound:
            sql, upper_params = table.params("b", list(bound[0]))
            params.update(upper_params)
            upper = f"{'AND' if where else 'WHERE'} {keys} <= {sql}"
        selection = f"FROM {{db}}.`{table.name}` {where} {upper}"
        last = olap.query(f"SELECT count(), max({keys}) {selection}", params)[0]
        if not last[0]:
            return
        data = olap.read_native(f"SELECT * {selection}", params)
        after = list(last[1])
        yield Chunk(table=table.name, data=data, rows=int(last[0]), last_key=after)
        if not bound:
            return


def write_chunk(olap: Olap, table: str, data: bytes) -> None:
    olap.insert_native(table, data)
