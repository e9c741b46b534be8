"""Scheduled exports of a project's traces, observations and scores to blob storage (Langfuse's
blob storage integration): S3 or an S3-compatible store, or (embedded mode only) a directory under
the data directory (`endpoint` "file://"), as CSV, JSON or JSONL, gzip-compressed by default.

Incremental, by a watermark on the rows' last update time: each run exports the window
(last_sync_at, end] with end = now - LAG_SECONDS, one file per table named after the window's end
(`<prefix><projectId>/<table>/<end>.<ext>`), then moves last_sync_at to end. Windows are contiguous
and disjoint, so a run exports each entity version once and skips none: an entity is in the
window that holds its last update (`owlscope.tracing.changes`). A trace updated again later (a late
span, a new score) is exported again, whole and merged, in the window of that update: files are
append-only versions, and a consumer keeps the newest row per id (`updatedAt`). The lag is there
for pieces whose event time is older than their arrival (SDK batching, queues): a piece that
arrives more than LAG_SECONDS after its event time, into an already exported window, is not
exported until the entity is updated again. A failed run keeps its window end (`window_end`), so
the retry rewrites the same files rather than adding overlapping ones.

The worker runs `schedule_due` every minute (a huey periodic task); it enqueues one export job per
integration whose `next_sync_at` has passed, and the job claims the integration (`running_since`, a
lease) so two workers never run the same project at once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import obstore
from obstore.store import LocalStore, S3Store
from sqlalchemy import or_, select, update

from owlscope.errors import Forbidden, InvalidRequest, NotFound
from owlscope.evals.crypto import decrypt, encrypt, settings_key
from owlscope.integrations.encode import encode, file_name
from owlscope.storage.oltp.base import new_id, utcnow
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.integration_models import BlobStorageIntegration
from owlscope.tracing.changes import TABLES, iter_changed

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.exports")
EXPORT_TASK = "blob_export"
SCHEDULE_TASK = "blob_export_schedule"
LAG_SECONDS = 20 * 60
LEASE_SECONDS = 3600
RETRY_SECONDS = 600
FREQUENCIES = {"every_20_minutes": 1200, "hourly": 3600, "daily": 86400, "weekly": 7 * 86400}
TYPES = ("S3", "S3_COMPATIBLE")
FILE_TYPES = ("JSON", "CSV", "JSONL")
MODES = ("FULL_HISTORY", "FROM_TODAY", "FROM_CUSTOM_DATE")
SOURCES = ("LEGACY_TRACES_OBSERVATIONS",)
FIELD_GROUPS = ("core", "basic", "time", "io", "metadata", "model", "usage", "prompt", "metrics", "tools",
                "trace_context")
LOCAL = "file://"
_CONTEXT = "blob-storage-export"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None


def sync_status(row: BlobStorageIntegration, now: datetime | None = None) -> str:
    now = now or utcnow()
    if not row.enabled:
        return "disabled"
    if row.running_since is not None and row.running_since > now - timedelta(seconds=LEASE_SECONDS):
        return "running"
    if row.last_error:
        return "error"
    if row.next_sync_at is not None and row.next_sync_at <= now:
        return "queued"
    if row.last_sync_at is None:
        return "idle"
    return "up_to_date"


def to_api(row: BlobStorageIntegration) -> dict[str, Any]:
    """The API's BlobStorageIntegrationResponse (never the secret)."""
    return {
        "id": row.id, "projectId": row.project_id, "type": row.type, "bucketName": row.bucket_name,
        "endpoint": row.endpoint, "region": row.region, "accessKeyId": row.access_key_id, "prefix": row.prefix,
        "exportFrequency": row.export_frequency, "enabled": row.enabled, "forcePathStyle": row.force_path_style,
        "fileType": row.file_type, "exportMode": row.export_mode, "exportStartDate": _iso(row.export_start_date),
        "compressed": row.compressed, "exportSource": row.export_source,
        "exportFieldGroups": row.export_field_groups, "nextSyncAt": _iso(row.next_sync_at),
        "lastSyncAt": _iso(row.last_sync_at), "lastError": row.last_error, "lastErrorAt": _iso(row.last_error_at),
        "createdAt": _iso(row.created_at), "updatedAt": _iso(row.updated_at),
    }


def status_of(row: BlobStorageIntegration) -> dict[str, Any]:
    """The API's BlobStorageIntegrationStatusResponse."""
    return {"id": row.id, "projectId": row.project_id, "syncStatus": sync_status(row), "enabled": row.enabled,
            "lastSyncAt": _iso(row.last_sync_at), "nextSyncAt": _iso(row.next_sync_at),
            "lastError": row.last_error, "lastErrorAt": _iso(row.last_error_at)}


# ---- the destination -----------------------------------------------------------------------------------
def _local_root(services: Services, bucket: str) -> Path:
    return services.settings.data_dir / "exports" / bucket


def destination(services: Services, row: BlobStorageIntegration, secret: str | None = None):
    """The obstore store an integration writes to."""
    if row.endpoint == LOCAL:
        root = _local_root(services, row.bucket_name)
        root.mkdir(parents=True, exist_ok=True)
        return LocalStore(root, mkdir=True)
    if secret is None and row.secret_access_key:
        secret = decrypt(settings_key(services.settings), row.secret_access_key, context=_CONTEXT)
    kwargs: dict[str, Any] = {"region": row.region, "virtual_hosted_style_request": not row.force_path_style}
    client_options: dict[str, Any] = {"connect_timeout": "5s", "timeout": "120s"}
    if row.endpoint:
        kwargs["endpoint"] = row.endpoint
        if row.endpoint.startswith("http://"):
            client_options["allow_http"] = True
    if row.access_key_id:
        kwargs["access_key_id"] = row.access_key_id
        kwargs["secret_access_key"] = secret or ""
    return S3Store(row.bucket_name, client_options=client_options, **kwargs)


# ---- configuration -------------------------------------------------------------------------------------
def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: Any = None) -> Any:
    value = body.get(name, default)
    if value not in allowed:
        raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _when(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"{name} must be an ISO 8601 date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def upsert_integration(services: Services, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create or replace the project's integration (after a test upload to the destination)."""
    if body.get("projectId") != project_id:
        raise Forbidden("projectId must be the project of the API key")
    if body.get("type") == "AZURE_BLOB_STORAGE":
        raise InvalidRequest("AZURE_BLOB_STORAGE is not supported; use S3 or S3_COMPATIBLE")
    kind = _choice(body, "type", TYPES)
    file_type = _choice(body, "fileType", FILE_TYPES)
    mode = _choice(body, "exportMode", MODES)
    frequency = _choice(body, "exportFrequency", tuple(FREQUENCIES))
    bucket = str(body.get("bucketName") or "").strip()
    region = str(body.get("region") or "").strip()
    if not bucket or "/" in bucket or ".." in bucket:
        raise InvalidRequest("bucketName is required (a bucket name, without slashes)")
    if not region:
        raise InvalidRequest("region is required")
    prefix = body.get("prefix") or ""
    if prefix and (not prefix.endswith("/") or prefix.startswith("/") or ".." in prefix):
        raise InvalidRequest("prefix must end with a forward slash (and not start with one)")
    endpoint = body.get("endpoint") or None
    if endpoint == LOCAL and not services.settings.blob_location.startswith("file://"):
        raise InvalidRequest("A local directory (endpoint file://) is only available in embedded mode")
    if kind == "S3_COMPATIBLE" and not endpoint:
        raise InvalidRequest("endpoint is required for S3_COMPATIBLE")
    if endpoint and endpoint != LOCAL and not endpoint.startswith(("http://", "https://")):
        raise InvalidRequest("endpoint must be an http(s) URL, or file:// for a local directory")
    start = _when(body.get("exportStartDate"), "exportStartDate")
    if mode == "FROM_CUSTOM_DATE" and start is None:
        raise InvalidRequest("exportStartDate is required when exportMode is FROM_CUSTOM_DATE")
    if start is not None and start > utcnow() + timedelta(hours=27):
        raise InvalidRequest("exportStartDate must not be in the future")
    groups = body.get("exportFieldGroups")
    if groups is not None:
        if body.get("exportSource") is None:
            raise InvalidRequest("exportFieldGroups requires exportSource")
        if not isinstance(groups, list) or "core" not in groups or any(g not in FIELD_GROUPS for g in groups):
            raise InvalidRequest(f"exportFieldGroups must include core and be among {', '.join(FIELD_GROUPS)}")
    if body.get("exportSource") is not None:
        _choice(body, "exportSource", SOURCES)
    for flag in ("enabled", "forcePathStyle"):
        if not isinstance(body.get(flag), bool):
            raise InvalidRequest(f"{flag} must be true or false")
    secret = body.get("secretAccessKey") or None
    with services.sessions() as session:
        existing = session.get(BlobStorageIntegration, project_id)
    probe = BlobStorageIntegration(
        project_id=project_id, type=kind, bucket_name=bucket, endpoint=endpoint, region=region,
        access_key_id=body.get("accessKeyId") or None, force_path_style=body["forcePathStyle"],
        secret_access_key=None if secret else (existing.secret_access_key if existing else None),
    )
    _check_destination(services, probe, secret, prefix)
    key = settings_key(services.settings) if secret else None
    now = utcnow()
    with write_transaction(services.sessions) as session:
        row = session.get(BlobStorageIntegration, project_id)
        if row is None:
            row = BlobStorageIntegration(project_id=project_id, id=new_id(), created_at=now,
                                         export_source=SOURCES[0], export_field_groups=None)
            session.add(row)
        moved = row.export_mode != mode or row.export_start_date != start
        row.type, row.bucket_name, row.endpoint, row.region = kind, bucket, endpoint, region
        row.access_key_id, row.prefix, row.export_frequency = probe.access_key_id, prefix, frequency
        row.enabled, row.force_path_style, row.file_type, row.export_mode = (
            body["enabled"], body["forcePathStyle"], file_type, mode)
        row.export_start_date = start
        row.compressed = body.get("compressed") is not False
        if body.get("exportSource") is not None:
            row.export_source, row.export_field_groups = body["exportSource"], groups
        if secret:
            row.secret_access_key = encrypt(key, secret, context=_CONTEXT)
        elif probe.secret_access_key is None:
            row.secret_access_key = None
        if moved:  # a new starting point: export from it
            row.last_sync_at, row.window_end = None, None
        row.next_sync_at = now if row.enabled else None
        row.updated_at = now
        session.flush()
        return to_api(row)


def _check_destination(services: Services, row: BlobStorageIntegration, secret: str | None, prefix: str) -> None:
    """Langfuse validates a configuration with a test upload: so do we (and remove it)."""
    path = f"{prefix}{row.project_id}/.owlscope-write-check"
    try:
        store = destination(services, row, secret)
        obstore.put(store, path, b"ok")
        obstore.delete(store, path)
    except Exception as exc:  # noqa: BLE001 - the provider's error is the message
        raise InvalidRequest(f"Could not write to the bucket: {exc}"[:1000]) from exc


def _get(services: Services, project_id: str, integration_id: str | None = None) -> BlobStorageIntegration:
    with services.sessions() as session:
        row = session.get(BlobStorageIntegration, project_id)
    if row is None or (integration_id is not None and row.id != integration_id):
        raise NotFound("Blob storage integration not found")
    return row


def project_of_integration(services: Services, integration_id: str) -> str | None:
    with services.sessions() as session:
        return session.scalar(select(BlobStorageIntegration.project_id).where(
            BlobStorageIntegration.id == integration_id))


def list_integrations(services: Services, project_id: str) -> list[dict[str, Any]]:
    with services.sessions() as session:
        row = session.get(BlobStorageIntegration, project_id)
    return [to_api(row)] if row is not None else []


def get_integration(services: Services, project_id: str) -> dict[str, Any] | None:
    """The project's integration with its sync status (for the settings page), or None."""
    with services.sessions() as session:
        row = session.get(BlobStorageIntegration, project_id)
    return {**to_api(row), "syncStatus": sync_status(row)} if row is not None else None


def integration_status(services: Services, project_id: str, integration_id: str) -> dict[str, Any]:
    return status_of(_get(services, project_id, integration_id))


def delete_integration(services: Services, project_id: str, integration_id: str) -> None:
    _get(services, project_id, integration_id)
    with write_transaction(services.sessions) as session:
        row = session.get(BlobStorageIntegration, project_id)
        if row is not None:
            session.delete(row)


# ---- running -------------------------------------------------------------------------------------------
def _initial_start(row: BlobStorageIntegration) -> datetime:
    if row.export_mode == "FROM_CUSTOM_DATE" and row.export_start_date is not None:
        return row.export_start_date
    if row.export_mode == "FROM_TODAY":
        return row.created_at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return _EPOCH


def _claim(services: Services, project_id: str, now: datetime) -> BlobStorageIntegration | None:
    with write_transaction(services.sessions) as session:
        claimed = session.execute(
            update(BlobStorageIntegration)
            .where(BlobStorageIntegration.project_id == project_id, BlobStorageIntegration.enabled.is_(True),
                   or_(BlobStorageIntegration.running_since.is_(None),
                       BlobStorageIntegration.running_since < now - timedelta(seconds=LEASE_SECONDS)))
            .values(running_since=now)
        ).rowcount
        return session.get(BlobStorageIntegration, project_id) if claimed else None


def object_key(row: BlobStorageIntegration, table: str, end: datetime) -> str:
    stem = end.astimezone(UTC).strftime("%Y-%m-%dT%H-%M-%S.%f")[:-3] + "Z"
    return f"{row.prefix}{row.project_id}/{table}/" + file_name(stem, row.file_type, gzip=row.compressed)


def run_export(services: Services, project_id: str, *, now: datetime | None = None,
               lag_seconds: float = LAG_SECONDS) -> dict[str, int] | None:
    """One run for a project: export the window (last_sync_at, now - lag] and move the watermark.
    Returns rows exported per table (None when another run holds the project or it is disabled)."""
    now = now or utcnow()
    row = _claim(services, project_id, now)
    if row is None:
        return None
    start = row.last_sync_at or _initial_start(row)
    end = row.window_end or (now - timedelta(seconds=lag_seconds))
    counts: dict[str, int] = {}
    try:
        if end > start:
            with write_transaction(services.sessions) as session:
                session.execute(update(BlobStorageIntegration).where(
                    BlobStorageIntegration.project_id == project_id).values(window_end=end))
            store = destination(services, row)
            for table in TABLES:
                counted = _Counted(iter_changed(services.olap, project_id, table, start, end))
                obstore.put(store, object_key(row, table, end),
                            encode(counted, row.file_type, gzip=row.compressed))
                counts[table] = counted.n
        values: dict[str, Any] = {"last_sync_at": max(end, start), "window_end": None, "last_error": None,
                                  "last_error_at": None}
        next_in = FREQUENCIES[row.export_frequency]
        log.info("exported %s of project %s up to %s", counts, project_id, end)
    except Exception as exc:  # noqa: BLE001 - recorded on the integration, retried later
        log.warning("export of project %s failed: %s", project_id, exc)
        values = {"last_error": f"{type(exc).__name__}: {exc}"[:2000], "last_error_at": utcnow()}
        next_in = min(RETRY_SECONDS, FREQUENCIES[row.export_frequency])
        counts = {}
    with write_transaction(services.sessions) as session:
        session.execute(update(BlobStorageIntegration).where(BlobStorageIntegration.project_id == project_id)
                        .values(running_since=None, next_sync_at=utcnow() + timedelta(seconds=next_in), **values))
    return counts if values["last_error"] is None else None


class _Counted:
    """An iterator that counts what passes through it."""

    def __init__(self, rows):
        self.rows, self.n = rows, 0

    def __iter__(self):
        for r in self.rows:
            self.n += 1
            yield r


def schedule_due(services: Services, now: datetime | None = None) -> list[str]:
    """Enqueue an export for every enabled integration whose next sync has come."""
    now = now or utcnow()
    with services.sessions() as session:
        due = session.scalars(select(BlobStorageIntegration.project_id).where(
            BlobStorageIntegration.enabled.is_(True),
            or_(BlobStorageIntegration.next_sync_at.is_(None), BlobStorageIntegration.next_sync_at <= now),
            or_(BlobStorageIntegration.running_since.is_(None),
                BlobStorageIntegration.running_since < now - timedelta(seconds=LEASE_SECONDS)),
        )).all()
    for project_id in due:
        services.queue.enqueue(EXPORT_TASK, project_id, check_full=False)
    return list(due)


def register(services: Services) -> None:
    services.queue.register(EXPORT_TASK, lambda project_id: run_export(services, project_id))

    services.queue.every_minute(SCHEDULE_TASK, lambda: schedule_due(services),
                                what="scheduling blob storage exports")
