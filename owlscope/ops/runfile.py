"""`<data dir>/serve.json`: where a running `owlscope serve` can be asked.

chDB allows one process per data directory, so a second command on the same directory (`doctor`,
`backup`) must not open the OLAP store while `serve` runs. `serve` records its pid and loopback
URL here while it runs; other commands find it and ask it over HTTP instead.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from owlscope.config import Settings

FILENAME = "serve.json"


@dataclass(frozen=True)
class RunningServer:
    pid: int
    url: str
    token: str


def _path(settings: Settings) -> Path:
    return settings.data_dir / FILENAME


@contextmanager
def recorded(settings: Settings) -> Iterator[str]:
    """Record this server while it runs; yields the local control token that only readers of the
    data directory (the file is 0600) can present to its /api/local endpoints."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    token = secrets.token_urlsafe(32)
    path = _path(settings)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "url": f"http://{host}:{settings.port}", "token": token}, f)
    tmp.replace(path)
    try:
        yield token
    finally:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_server(settings: Settings) -> RunningServer | None:
    """The `serve` process that holds this data directory, if one runs (a stale file is ignored)."""
    try:
        info = json.loads(_path(settings).read_text())
    except (FileNotFoundError, ValueError):
        return None
    if info.get("pid") == os.getpid() or not _alive(int(info["pid"])):
        return None
    return RunningServer(pid=int(info["pid"]), url=str(info["url"]), token=str(info.get("token", "")))


def own_token(settings: Settings) -> str | None:
    """The control token if this process is the recorded server of its data directory."""
    try:
        info = json.loads(_path(settings).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return str(info["token"]) if info.get("pid") == os.getpid() and info.get("token") else None
