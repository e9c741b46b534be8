"""A live server (API, worker, ingestion) with the local OpenAI-compatible judge, for the
evaluator tests: ingest, wait for stored traces, scores and settled executions."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from conftest import LiveServer, create_project_key
from owlscope.evals.connections import set_default_model, upsert_connection
from owlscope.evals.evaluators import execution_counts
from support.fake_openai import FakeOpenAI


def wait_until(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last value {value!r}")
        time.sleep(0.1)


class Env:
    def __init__(self, srv: LiveServer, key: dict, llm: FakeOpenAI):
        self.srv, self.key, self.llm = srv, key, llm
        self.pid = key["project_id"]

    @property
    def services(self):
        return self.srv.services

    def connect(self, model: str = "gpt-4o-mini", *, adapter: str = "openai", provider: str = "fake") -> None:
        upsert_connection(self.services.sessions, self.services.settings, self.pid, {
            "provider": provider, "adapter": adapter, "secretKey": "sk-test-123456789", "baseURL": self.llm.base_url})
        set_default_model(self.services.sessions, self.pid, provider=provider, model=model)

    def ingest(self, events: list[dict[str, Any]]) -> None:
        r = httpx.post(f"{self.srv.url}/api/public/ingestion", json={"batch": events},
                       auth=(self.key["public_key"], self.key["secret_key"]), timeout=30)
        assert r.status_code == 207, r.text
        assert not r.json()["errors"], r.text

    def traces(self, bodies: list[dict[str, Any]]) -> None:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self.ingest([{"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": now, "body": b} for b in bodies])

    def visible(self, ids: list[str]) -> None:
        wait_until(lambda: self.services.olap.query(
            "SELECT uniqExact(id) FROM {db}.traces WHERE project_id = {p:String} AND id IN {ids:Array(String)}",
            {"p": self.pid, "ids": ids})[0][0] == len(ids), what="traces to be stored")

    def scores(self) -> list[dict[str, Any]]:
        return self.services.olap.query_dicts(
            "SELECT id, trace_id, observation_id, name, value, string_value, data_type, source, comment, environment "
            "FROM {db}.scores FINAL WHERE project_id = {p:String} ORDER BY trace_id", {"p": self.pid})

    def wait_scores(self, n: int, timeout: float = 30) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            found = self.scores()
            return found if len(found) == n else None
        return wait_until(check, timeout, f"{n} scores")

    def counts(self, evaluator_id: str) -> dict[str, int]:
        return execution_counts(self.services.sessions, self.pid, evaluator_id)

    def settled(self, evaluator_id: str, total: int, timeout: float = 60) -> dict[str, int]:
        """Wait until `total` executions exist and none is pending or running."""
        def check() -> dict[str, int] | None:
            c = self.counts(evaluator_id)
            done = c["completed"] + c["error"] + c["cancelled"]
            return c if done == total and sum(c.values()) == total else None
        return wait_until(check, timeout, f"{total} finished executions")


@contextmanager
def live(make_settings, **overrides: Any) -> Iterator[Env]:
    with FakeOpenAI() as llm, LiveServer(make_settings(**overrides)) as srv:
        yield Env(srv, create_project_key(srv.services), llm)


@pytest.fixture
def env(make_settings) -> Iterator[Env]:
    with live(make_settings) as e:
        yield e


@pytest.fixture
def env_any(stack: str, make_settings) -> Iterator[Env]:
    """Both stacks; scale-out needs ENCRYPTION_KEY set (it is not generated there)."""
    with live(lambda **kw: make_settings(stack, encryption_key="7c" * 32, **kw)) as e:
        yield e
