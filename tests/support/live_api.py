"""A running server on a stack with one project's key, as an `Api` (for fixtures)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from conftest import LiveServer, create_project_key
from support.ingest_http import Api


@contextmanager
def live_api(make_settings, stack: str, *, org: str = "org", project: str = "proj", **settings) -> Iterator[Api]:
    srv = LiveServer(make_settings(stack, **settings), run_worker=True).__enter__()
    try:
        yield Api(srv, create_project_key(srv.services, org_name=org, project_name=project))
    finally:
        queue = srv.services.queue
        srv.__exit__(None, None, None)
        queue.flush()  # leave no keys behind in the shared Redis
