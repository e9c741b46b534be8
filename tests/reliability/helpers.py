"""Helpers shared by the reliability tests."""

from __future__ import annotations

import time

from conftest import LiveServer
from owlscope.pipeline import blobs
from support.ingest_http import Api


def project_api(srv: LiveServer, name: str = "proj", **user) -> Api:
    """A project with an API key (and, given `email` and `password`, its owner)."""
    from owlscope.accounts.bootstrap import create_org_project_user

    return Api(srv, create_org_project_user(srv.services.sessions, srv.services.settings,
                                            org_name=f"org-{name}", project_name=name, **user))


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
