"""Copy an embedded installation into scale-out stores: SQLite -> PostgreSQL, chDB -> ClickHouse,
local blobs -> S3. Each part is resumable after an interruption and ends with a verification count.

- OLTP rows are inserted in foreign-key order with ON CONFLICT DO NOTHING: a rerun skips what is there.
- OLAP chunks go in key order; the last key written per table is kept in a state file beside the
  source data, so a rerun resumes after it (a chunk written twice merges to the same records).
- Blobs already in the bucket with the same size are skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from owlscope.config import Settings
from owlscope.ops.olap_copy import count_records, data_tables, read_chunks, write_chunk
from owlscope.storage.blob import BlobStore
from owlscope.storage.olap.client import Olap

Progress = Callable[[str, int, int], None]
OLTP_BATCH = 1000
STATE_FILE = "transfer-state.json"


@dataclass
class PartResult:
    name: str
    rows: int = 0
    seconds: float = 0.0
    verified: dict[str, tuple[int, int]] = field(default_factory=dict)  # what: (source, target)

    @property
    def ok(self) -> bool:
        return all(src == dst for src, dst in self.verified.values())

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def oltp_metadata() -> MetaData:
    from owlscope.storage.oltp import dataset_models, eval_models, models, prompt_models, ui_models  # noqa: F401

    return models.Base.metadata


def transfer_oltp(source: Engine, target: Engine, progress: Progress) -> PartResult:
    started, result = time.monotonic(), PartResult("oltp")
    for table in oltp_metadata().sorted_tables:
        with source.connect() as src:
            total = src.execute(select(func.count()).select_from(table)).scalar_one()
            order = list(table.primary_key.columns) or list(table.columns)
            done = 0
            rows = src.execute(select(table).order_by(*order)).mappings()
            while batch := rows.fetchmany(OLTP_BATCH):
                with target.begin() as dst:
                    dst.execute(pg_insert(table).on_conflict_do_nothing(), [dict(r) for r in batch])
                done += len(batch)
                result.rows += len(batch)
                progress(f"oltp {table.name}", done, total)
        with target.connect() as dst:
            result.verified[table.name] = (total, dst.execute(select(func.count()).select_from(table)).scalar_one())
    result.seconds = time.monotonic() - started
    return result


def _key_text(value: Any) -> str:
    """A sort-key value JSON cannot hold (a DateTime of a rollup table's key) as the text the engine
    parses back for the typed parameter."""
    if isinstance(value, datetime):
        text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        return text + (f".{value.microsecond // 1000:03d}" if value.microsecond else "")
    raise TypeError(f"cannot save a key value of type {type(value).__name__}")


class OlapState:
    """Where each table's copy stopped, per target (a JSON file beside the source data)."""

    def __init__(self, path: Path, target: str):
        self.path, self.target = path, target
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def last_key(self, table: str) -> list[Any] | None:
        return self.data.get(self.target, {}).get(table)

    def save(self, table: str, key: list[Any]) -> None:
        self.data.setdefault(self.target, {})[table] = key
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, default=_key_text))
        tmp.replace(self.path)


def transfer_olap(source: Olap, target: Olap, state: OlapState, progress: Progress,
                  chunk_rows: int = 50_000) -> PartResult:
    started, result = time.monotonic(), PartResult("olap")
    targets = {t.name for t in data_tables(target)}
    for table in data_tables(source):
        if table.name not in targets:
            raise RuntimeError(f"the target has no table {table.name}: run `owlscope migrate` against it")
        total = int(source.query(f"SELECT count() FROM {{db}}.`{table.name}`")[0][0])
        done = 0
        for chunk in read_chunks(source, table, after=state.last_key(table.name), chunk_rows=chunk_rows):
            write_chunk(target, table.name, chunk.data)
            state.save(table.name, chunk.last_key)
            done += chunk.rows
            result.rows += chunk.rows
            progress(f"olap {table.name}", done, total)
        result.verified[table.name] = (count_records(source, table), count_records(target, table))
    result.seconds = time.monotonic() - started
    return result


def transfer_blobs(source: BlobStore, target: BlobStore, progress: Progress, threads: int = 8) -> PartResult:
    started, result = time.monotonic(), PartResult("blobs")
    have = {b.key: b.size for b in target.list("")}
    todo = [b for b in source.list("") if have.get(b.key) != b.size]

    def copy(key: str) -> None:
        target.put(key, source.get(key))

    with ThreadPoolExecutor(threads) as pool:
        for i, _ in enumerate(pool.map(copy, [b.key for b in todo]), 1):
            result.rows += 1
            progress("blobs", i, len(todo))
    source_keys = {b.key for b in source.list("")}
    target_keys = {b.key for b in target.list("")}
    result.verified["blobs"] = (len(source_keys), len(source_keys & target_keys))
    result.seconds = time.monotonic() - started
    return result


def embedded_source(data_dir: Path) -> Settings:
    """The embedded stores of a data directory, whatever the environment points elsewhere."""
    from owlscope.config import load_settings

    return load_settings(data_dir=data_dir, database_url=None, clickhouse_url=None, redis_url=None,
                         blob_url=f"file://{data_dir / 'blobs'}", s3_bucket=None)


def target_settings(source: Settings, *, db: str, olap: str, blob: str, olap_database: str | None = None) -> Settings:
    """Scale-out settings for the targets; the embedded secrets carry over (API key hashes use the
    salt, stored LLM keys the encryption key)."""
    from owlscope.config import load_settings

    return load_settings(data_dir=source.data_dir, database_url=db, clickhouse_url=olap, blob_url=blob,
                         clickhouse_db=olap_database or source.clickhouse_db, salt=source.salt, session_secret=source.session_secret,
                         encryption_key=source.encryption_key)


def scale_out_env(target: Settings) -> str:
    """The settings a scale-out deployment needs to serve the transferred data (a .env file)."""
    lines = {
        "DATABASE_URL": target.database_url, "CLICKHOUSE_URL": target.clickhouse_url,
        "CLICKHOUSE_DB": target.clickhouse_db, "BLOB_URL": target.blob_url, "S3_ENDPOINT": target.s3_endpoint,
        "S3_REGION": target.s3_region, "S3_FORCE_PATH_STYLE": str(target.s3_force_path_style).lower(),
        "SALT": target.salt, "SESSION_SECRET": target.session_secret, "ENCRYPTION_KEY": target.encryption_key,
    }
    return "".join(f"{k}={v}\n" for k, v in lines.items() if v)
