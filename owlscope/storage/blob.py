"""The blob seam: raw events, media and exports, through obstore.

`file://<dir>` (default, under the data directory) or `s3://<bucket>` with the S3 settings
(endpoint, region, keys, path-style) for S3, MinIO and other S3-compatible stores.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import obstore
from obstore.store import LocalStore, MemoryStore, S3Store

from owlscope.config import Settings


class BlobUnavailable(Exception):
    """The blob store could not be reached or refused the operation."""


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    last_modified: datetime


class BlobStore:
    def __init__(self, settings: Settings):
        self.location = settings.blob_location
        if self.location.startswith("file://"):
            root = Path(self.location[len("file://") :])
            root.mkdir(parents=True, exist_ok=True)
            self.store = LocalStore(root, mkdir=True)
        elif self.location.startswith("memory://"):
            self.store = MemoryStore()
        else:
            bucket = self.location[len("s3://") :].split("/", 1)[0]
            # Fail fast: an ingestion request waits for this write, and an unreachable store must
            # become a 503 with Retry-After (which the SDKs honour), not a hung request.
            client_options: dict = {"connect_timeout": "2s", "timeout": "30s"}
            kwargs: dict = {
                "region": settings.s3_region,
                "virtual_hosted_style_request": not settings.s3_force_path_style,
                "retry_config": {
                    "max_retries": 2,
                    "retry_timeout": timedelta(seconds=10),
                    "backoff": {"init_backoff": timedelta(milliseconds=100),
                                "max_backoff": timedelta(seconds=1), "base": 2},
                },
            }
            if settings.s3_endpoint:
                kwargs["endpoint"] = settings.s3_endpoint
                if settings.s3_endpoint.startswith("http://"):
                    client_options["allow_http"] = True
            kwargs["client_options"] = client_options
            if settings.s3_access_key_id:
                kwargs["access_key_id"] = settings.s3_access_key_id
                kwargs["secret_access_key"] = settings.s3_secret_access_key or ""
            self.store = S3Store(bucket, prefix=settings.s3_prefix or None, **kwargs)

    def put(self, key: str, data: bytes) -> None:
        try:
            obstore.put(self.store, key, data)
        except Exception as exc:  # noqa: BLE001 - any store failure means "not durable"
            raise BlobUnavailable(str(exc)) from exc

    def get(self, key: str) -> bytes:
        return bytes(obstore.get(self.store, key).bytes())

    def delete(self, key: str) -> None:
        obstore.delete(self.store, key)

    def rename(self, src: str, dst: str) -> None:
        obstore.rename(self.store, src, dst)

    def list(self, prefix: str) -> Iterator[BlobInfo]:
        for chunk in obstore.list(self.store, prefix):
            for meta in chunk:
                yield BlobInfo(meta["path"], meta["size"], meta["last_modified"])

    def exists(self, key: str) -> bool:
        try:
            obstore.head(self.store, key)
            return True
        except FileNotFoundError:
            return False

    def sign_url(self, key: str, method: str = "GET", expires_seconds: int = 3600) -> str:
        return obstore.sign(self.store, method, key, timedelta(seconds=expires_seconds))

    @property
    def can_sign(self) -> bool:
        """Whether clients can be sent straight to the store with a presigned URL (S3 can; a local
        directory cannot, so the web serves those bytes itself)."""
        return isinstance(self.store, S3Store)

    # ---- streaming (async: large media never sits whole in memory or blocks the event loop) ----
    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> None:
        await obstore.put_async(self.store, key, chunks)

    async def get_stream(self, key: str, chunk_size: int = 256 * 1024) -> tuple[int, AsyncIterator[bytes]]:
        """(size, chunks) of a blob; FileNotFoundError when it does not exist."""
        result = await obstore.get_async(self.store, key)
        return result.meta["size"], aiter(result.stream(min_chunk_size=chunk_size))

    async def rename_async(self, src: str, dst: str) -> None:
        await obstore.rename_async(self.store, src, dst)

    async def delete_async(self, key: str) -> None:
        try:
            await obstore.delete_async(self.store, key)
        except FileNotFoundError:
            pass

    def ping(self) -> bool:
        try:
            key = "_health/ping"
            obstore.put(self.store, key, b"ok")
            return bytes(obstore.get(self.store, key).bytes()) == b"ok"
        except Exception:  # noqa: BLE001 - reported by the caller
            return False
