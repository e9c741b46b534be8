"""`owlscope backup DEST` and `owlscope restore SRC` for an embedded installation.

Backup runs beside a running `owlscope serve` (it asks the server to write the OLAP copy: chDB
allows one process per directory) or on a stopped one. Restore fills an empty data directory and
verifies every count against the backup's manifest."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from owlscope.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    from owlscope.cli.common import settings_from_args

    settings = settings_from_args(args)
    if not settings.is_embedded or not settings.uses_chdb or not settings.blob_location.startswith("file://"):
        print("backup and restore are for an embedded installation (SQLite, chDB, local blobs). For scale-out, "
              "use your stores' own backups (pg_dump, ClickHouse BACKUP, bucket versioning); to move an "
              "embedded installation to scale-out, use `owlscope transfer`.", file=sys.stderr)
        raise SystemExit(1)
    return settings


def _sqlite_file(settings: Settings) -> Path:
    from owlscope.storage.oltp.db import sqlite_path

    return Path(sqlite_path(settings.db_url))


def cmd_backup(args: argparse.Namespace) -> int:
    import httpx

    from owlscope.cli.progress import Progress
    from owlscope.ops import backup
    from owlscope.ops.runfile import running_server

    settings = _settings(args)
    dest = Path(args.dest).resolve()
    if dest.exists() and any(dest.iterdir()):
        print(f"{dest} is not empty; back up into a new directory", file=sys.stderr)
        return 1
    dest.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    progress = Progress()
    backup.backup_sqlite(_sqlite_file(settings), dest / "owlscope.db", progress)
    shutil.copy2(settings.data_dir / "secrets.json", dest / "secrets.json")
    blobs = backup.copy_blobs(Path(settings.blob_location[len("file://"):]), dest / "blobs", progress)
    progress.end()
    server = running_server(settings)
    if server is not None:
        print(f"  olap: written by the running owlscope serve (pid {server.pid})")
        r = httpx.post(f"{server.url}/api/local/olap-export", json={"dest": str(dest / "olap")},
                       headers={"Authorization": f"Bearer {server.token}"}, timeout=3600)
        if r.status_code != 200:
            print(f"the running server could not write the OLAP copy: {r.status_code} {r.text}", file=sys.stderr)
            return 1
        tables = r.json()["tables"]
    else:
        from owlscope.storage.olap.client import Olap

        olap = Olap(settings)
        try:
            tables = backup.export_olap(olap, dest / "olap", progress)
        finally:
            olap.close()
        progress.end()
    backup.write_manifest(dest, data_dir=str(settings.data_dir), olap_database=settings.clickhouse_db,
                          blobs=blobs, tables=tables, online=server is not None)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    counts = ", ".join(f"{name} {t['records']}" for name, t in tables.items())
    print(f"Backup in {dest}: {counts}; {blobs} blobs; {size / 1e6:.1f} MB in {time.monotonic() - started:.1f}s")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from owlscope.cli.progress import Progress
    from owlscope.ops import backup
    from owlscope.ops.runfile import running_server
    from owlscope.storage.olap.client import Olap
    from owlscope.storage.olap.migrate import migrate

    settings = _settings(args)
    src = Path(args.src).resolve()
    manifest = backup.read_manifest(src)
    if running_server(settings) is not None:
        print("owlscope serve is running on this data directory; stop it first", file=sys.stderr)
        return 1
    target_db = _sqlite_file(settings)
    if target_db.exists() or (settings.data_dir / "olap").exists():
        print(f"{settings.data_dir} already holds an installation; restore into an empty data directory",
              file=sys.stderr)
        return 1
    started = time.monotonic()
    progress = Progress()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    backup.backup_sqlite(src / "owlscope.db", target_db, progress)
    shutil.copy2(src / "secrets.json", settings.data_dir / "secrets.json")
    blob_root = Path(settings.blob_location[len("file://"):])
    blobs = backup.copy_blobs(src / "blobs", blob_root, progress) if (src / "blobs").exists() else 0
    olap = Olap(settings)
    try:
        migrate(olap)
        backup.import_olap(olap, src / "olap", manifest["tables"], progress)
    finally:
        olap.close()
    progress.end()
    if blobs != manifest["blobs"]:
        print(f"restored {blobs} blobs, the backup lists {manifest['blobs']}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{name} {t['records']}" for name, t in manifest["tables"].items())
    print(f"Restored into {settings.data_dir}: {counts}; {blobs} blobs; verified, in {time.monotonic() - started:.1f}s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("backup", help="back up an embedded installation (safe while `serve` runs)")
    sp.add_argument("dest", help="a new, empty directory")
    sp.add_argument("--data-dir", help="data directory (OWLSCOPE_DATA_DIR)")
    sp.set_defaults(func=cmd_backup)
    sp = sub.add_parser("restore", help="restore a backup into an empty data directory, verifying every count")
    sp.add_argument("src", help="a directory written by `owlscope backup`")
    sp.add_argument("--data-dir", help="data directory to fill (OWLSCOPE_DATA_DIR)")
    sp.set_defaults(func=cmd_restore)
