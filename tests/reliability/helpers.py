"""Helpers shared by the reliability tests."""

from __future__ import annotations

import time

from conftest import LiveServer, create_project_key
from owlscope.pipeline import blobs
from support.ingest_http import Api


def project_api(srv: LiveServer, name: str = "proj", **kw) -> Api:
    return Api(srv, create_project_key(srv.services, org_name=f"org-{name}", project_name=name, **kw))


def keys_under(services, prefix: str) -> list[str]:
    return [b.key for b in services.blobs.list(prefix)]


def wait_until(predicate, timeout: float = 15, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def failed_keys(services, project_id: str) -> list[str]:
    return keys_under(services, f"{blobs.FAILED}{project_id}/")


def pending_keys(services, project_id: str) -> list[str]:
    return keys_under(services, f"{blobs.PENDING}{project_id}/")
