"""`owlscope transfer --to-db postgresql://… --to-olap http://… --to-blob s3://…`: grow an embedded
installation into scale-out stores, with progress, resumable, verified by counts at the end."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from owlscope.config import ConfigError


def cmd_transfer(args: argparse.Namespace) -> int:
    from owlscope.cli.progress import Progress
    from owlscope.ops import transfer
    from owlscope.ops.runfile import running_server
    from owlscope.storage.blob import BlobStore
    from owlscope.storage.olap.client import Olap
    from owlscope.storage.olap.migrate import migrate as migrate_olap
    from owlscope.storage.oltp.db import make_engine
    from owlscope.storage.oltp.migrate import current_revision, head_revision, upgrade

    data_dir = Path(args.data_dir or os.environ.get("OWLSCOPE_DATA_DIR") or Path.home() / ".owlscope")
    try:
        source = transfer.embedded_source(data_dir)
        target = transfer.target_settings(source, db=args.to_db, olap=args.to_olap, blob=args.to_blob,
                                          olap_database=args.to_olap_db)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    if target.is_embedded or target.uses_chdb or not target.blob_location.startswith("s3://"):
        print("--to-db must be postgresql://, --to-olap http(s)://, --to-blob s3://", file=sys.stderr)
        return 1
    if running_server(source) is not None:
        print("owlscope serve is running on this data directory: stop it first (chDB allows one process)",
              file=sys.stderr)
        return 1
    progress = Progress()
    src_db, dst_db = make_engine(source.db_url), make_engine(target.db_url)
    src_olap, dst_olap = Olap(source), Olap(target)
    results = []
    try:
        if current_revision(src_db) != head_revision():
            print("the embedded database is not at the current schema: run `owlscope migrate` first", file=sys.stderr)
            return 1
        print(f"Transferring {data_dir} to scale-out stores (rerun the same command to resume)")
        upgrade(dst_db)
        migrate_olap(dst_olap)
        results.append(transfer.transfer_oltp(src_db, dst_db, progress))
        state = transfer.OlapState(data_dir / transfer.STATE_FILE, f"{dst_olap.url}/{dst_olap.database}")
        results.append(transfer.transfer_olap(src_olap, dst_olap, state, progress, chunk_rows=args.chunk_rows))
        results.append(transfer.transfer_blobs(BlobStore(source), BlobStore(target), progress))
        progress.end()
    finally:
        src_olap.close()
        dst_olap.close()
        src_db.dispose()
        dst_db.dispose()
    print("Verification (source -> target):")
    ok = True
    for part in results:
        for what, (src, dst) in part.verified.items():
            ok &= src == dst
            print(f"  [{'ok' if src == dst else 'MISMATCH'}] {part.name:<5} {what:<28} {src} -> {dst}")
        print(f"  {part.name}: {part.rows} rows copied in {part.seconds:.1f}s ({part.rate:,.0f} rows/s)")
    env_path = data_dir / "scale-out.env"
    fd = os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(transfer.scale_out_env(target))
    print(f"Settings for the scale-out deployment (secrets included, keep it private): {env_path}")
    return 0 if ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("transfer", help="copy an embedded installation into PostgreSQL, ClickHouse and S3")
    sp.add_argument("--data-dir", help="the embedded data directory (OWLSCOPE_DATA_DIR)")
    sp.add_argument("--to-db", required=True, help="postgresql://user:pass@host:5432/db")
    sp.add_argument("--to-olap", required=True, help="http(s)://host:8123 (CLICKHOUSE_USER/PASSWORD/DB apply)")
    sp.add_argument("--to-olap-db", help="ClickHouse database (default: CLICKHOUSE_DB, as in the source)")
    sp.add_argument("--to-blob", required=True, help="s3://bucket (S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY_ID, ... apply)")
    sp.add_argument("--chunk-rows", type=int, default=50_000, help="OLAP rows per chunk (the resume step)")
    sp.set_defaults(func=cmd_transfer)
