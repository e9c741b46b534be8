"""Backup and restore of an embedded installation (SQLite, chDB, local blobs), consistent while
`owlscope serve` runs.

A backup directory holds `owlscope.db` (SQLite's online backup API: a consistent snapshot while
writers go on), `secrets.json`, `blobs/` and `olap/<table>/<n>.native` (ClickHouse Native chunks),
and `manifest.json` with the counts that restore verifies.

Order gives consistency without stopping ingestion: the blobs are copied before the OLAP cut, so a
batch copied as processed has its rows in the OLAP copy, and one copied as pending is replayed
after restore (replays merge to the same rows). The OLAP cut is taken with inserts paused, so the
tables agree with each other.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from owlscope import __version__
from owlscope.ops.olap_copy import count_records, data_tables, read_chunks, write_chunk
from owlscope.storage.olap.client import Olap

Progress = Callable[[str, int, int], None]
MANIFEST = "manifest.json"


def _noop(label: str, done: int, total: int) -> None:
    pass


def backup_sqlite(src: Path, dest: Path, progress: Progress = _noop) -> None:
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(dest)
    try:
        source.backup(target, pages=256, progress=lambda _s, left, total: progress("oltp", total - left, total))
    finally:
        target.close()
        source.close()


def copy_blobs(root: Path, dest: Path, progress: Progress = _noop) -> int:
    """Copy every blob file. A pending batch may move to processed/ while we copy: then copy it
    from there (its rows are inserted, and the OLAP cut comes later)."""
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    copied = 0
    for i, path in enumerate(files, 1):
        rel = path.relative_to(root)
        for candidate in (rel, _processed(rel)):
            if candidate is None:
                continue
            try:
                target = dest / candidate
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(root / candidate, target)
                copied += 1
                break
            except FileNotFoundError:
                continue
        progress("blobs", i, len(files))
    return copied


def _processed(rel: Path) -> Path | None:
    from owlscope.pipeline.blobs import PENDING, PROCESSED

    text = rel.as_posix()
    return Path(PROCESSED + text[len(PENDING):]) if text.startswith(PENDING) else None


def export_olap(olap: Olap, dest: Path, progress: Progress = _noop) -> dict[str, dict[str, int]]:
    tables: dict[str, dict[str, int]] = {}
    for table in data_tables(olap):
        folder = dest / table.name
        folder.mkdir(parents=True, exist_ok=True)
        records = count_records(olap, table)
        rows = files = 0
        for n, chunk in enumerate(read_chunks(olap, table)):
            (folder / f"{n:06d}.native").write_bytes(chunk.data)
            rows += chunk.rows
            files += 1
            progress(f"olap {table.name}", rows, rows)
        tables[table.name] = {"rows": rows, "records": records, "files": files}
    return tables


def import_olap(olap: Olap, src: Path, expected: dict[str, dict[str, int]], progress: Progress = _noop) -> None:
    by_name = {t.name: t for t in data_tables(olap)}
    for name, counts in expected.items():
        if name not in by_name:
            raise RuntimeError(f"the backup has table {name}, which this version does not know")
        chunks = sorted((src / name).glob("*.native"))
        for i, path in enumerate(chunks, 1):
            write_chunk(olap, name, path.read_bytes())
            progress(f"olap {name}", i, len(chunks))
        got = count_records(olap, by_name[name])
        if got != counts["records"]:
            raise RuntimeError(f"restored {got} records into {name}, the backup holds {counts['records']}")


def write_manifest(dest: Path, **fields: Any) -> dict[str, Any]:
    manifest = {"owlscope": __version__, "created_at": time.time(), **fields}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def read_manifest(src: Path) -> dict[str, Any]:
    return json.loads((src / MANIFEST).read_text())
