"""Fixtures for the read-API tests; import the fixture functions into a test module
(`from read_fixtures import fixture_dataset, fixture_read_api, fixture_read_olap`).

- `read_olap`: an OLAP database of its own per test module, migrated, on each engine: embedded chDB
  (the process's one chDB directory) and ClickHouse over HTTP (the chDB HTTP fixture server).
- `olap`: a migrated OLAP database of its own for one test (embedded chDB).
- `read_api`: a FastAPI app with just the read routers and the error handlers, whose services hold
  only `.olap` and whose auth is the project named by the `x-test-project` header (default A).
- `dataset`: a small, hand-checked dataset inserted as out-of-order pieces in separate inserts
  (separate parts), so every read exercises merging. `DATA` documents the expected values.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from owlscope.ingestion.rows import (
    ObservationEvent,
    ScoreEvent,
    TraceEvent,
    observations_table,
    scores_table,
    traces_table,
)
from owlscope.storage.olap.client import Olap
from owlscope.storage.olap.migrate import migrate

PA, PB = "proj-a", "proj-b"
T0 = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)
DAY2 = T0.replace(hour=0) + timedelta(days=1)
READ_ROUTERS = ("traces", "observations", "sessions", "scores_read", "metrics")


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def z(dt: datetime) -> str:
    """The API's time format."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@pytest.fixture(scope="module", params=["chdb", "http"], name="read_olap")
def fixture_read_olap(request: pytest.FixtureRequest, chdb_dir, tmp_path_factory) -> Iterator[Olap]:
    from owlscope.config import load_settings

    url = f"chdb://{chdb_dir}" if request.param == "chdb" else request.getfixturevalue("clickhouse_http_url")
    settings = load_settings(data_dir=tmp_path_factory.mktemp("read"), clickhouse_url=url)
    olap = Olap(settings, database=f"read_{uuid.uuid4().hex[:10]}")
    migrate(olap)
    yield olap
    olap.command("DROP DATABASE IF EXISTS {db}")
    olap.close()


@pytest.fixture(name="olap")
def fixture_olap(make_settings) -> Iterator[Olap]:
    """A migrated OLAP database of its own for one test (embedded chDB)."""
    o = Olap(make_settings())
    migrate(o)
    yield o
    o.command("DROP DATABASE IF EXISTS {db}")
    o.close()


def build_read_app(olap: Olap) -> FastAPI:
    from importlib import import_module

    from owlscope.api.deps import ProjectAuth, authenticate
    from owlscope.app import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)
    for name in READ_ROUTERS:
        app.include_router(import_module(f"owlscope.api.{name}").router)
    # OLTP only for the project's model definitions (the observation bodies carry the matched model)
    from owlscope.storage.oltp.db import make_engine, make_session_factory
    from owlscope.storage.oltp.models import Base

    engine = make_engine(f"sqlite:///{tempfile.mkdtemp()}/oltp.db")
    Base.metadata.create_all(engine)
    app.state.services = SimpleNamespace(olap=olap, sessions=make_session_factory(engine))

    def auth(request: Request) -> ProjectAuth:
        return ProjectAuth(project_id=request.headers.get("x-test-project", PA), org_id="o", key_id="k",
                           public_key="pk")

    app.dependency_overrides[authenticate] = auth
    return app


@dataclass
class ReadApi:
    client: TestClient
    olap: Olap

    def get(self, path: str, project: str = PA, **params):
        return self.client.get(path, params=params, headers={"x-test-project": project})

    def ok(self, path: str, project: str = PA, **params) -> dict:
        r = self.get(path, project, **params)
        assert r.status_code == 200, r.text
        return r.json()

    def delete(self, path: str, project: str = PA, json=None):
        return self.client.request("DELETE", path, json=json, headers={"x-test-project": project})


@pytest.fixture(scope="module", name="read_api")
def fixture_read_api(read_olap: Olap) -> Iterator[ReadApi]:
    with TestClient(build_read_app(read_olap)) as client:
        yield ReadApi(client, read_olap)


def insert(olap: Olap, traces=(), observations=(), scores=()) -> None:
    """One insert per kind: call several times to spread pieces over several parts."""
    if traces:
        olap.insert_arrow("trace_events", traces_table(list(traces)))
    if observations:
        olap.insert_arrow("observation_events", observations_table(list(observations)))
    if scores:
        olap.insert_arrow("scores", scores_table(list(scores)))


def _matched(model_name: str) -> str:
    """The id of the built-in model the worker would store for this name ('' when none matches)."""
    from owlscope.ingestion.pricing import PriceBook, load_default_models

    found = PriceBook(load_default_models()).match(model_name)
    return found.id if found else ""


def bulk_ts(i: int) -> datetime:
    return DAY2 + timedelta(minutes=i)


def load_dataset(olap: Olap) -> None:
    """Project A: t1 (pieces, 3 observations, 3 scores), t2, t3 (no observations), bulk-0..7;
    project B: tb1. See the test module for the values each read must return."""
    # t1: the later piece arrives first, in its own part.
    insert(olap, traces=[TraceEvent(
        PA, "t1", T0 + s(10), user_id="u1", session_id="s1", tags=["a"], metadata='{"k": "v", "n": 5}',
        release="r1", version="v1", environment="production", input='{"q": 1}')])
    insert(olap, traces=[TraceEvent(
        PA, "t1", T0 + s(1), timestamp=T0, root_name="root-1", root_input='"root in"',
        root_output='{"answer": 42}', tags=["b"])])
    o1 = ObservationEvent(PA, "o1", "t1", T0, type="SPAN", name="root-span", start_time=T0, end_time=T0 + s(2),
                          level="DEFAULT", environment="production", input='"hi"', output='"bye"',
                          metadata='{"step": "root", "long": "%s"}' % ("x" * 300))
    o2_update = ObservationEvent(
        PA, "o2", "t1", T0 + s(1.5), end_time=T0 + s(1.5), completion_start_time=T0 + s(0.7), output='"hello"',
        usage_details={"input": 10, "output": 20, "total": 30},
        cost_details={"input": 0.1, "output": 0.2, "total": 0.3})
    o2_create = ObservationEvent(
        PA, "o2", "t1", T0 + s(0.5), type="GENERATION", name="llm", parent_observation_id="o1",
        start_time=T0 + s(0.5), model="gpt-4o", model_parameters='{"temperature": 0.1}',
        input='[{"role": "user", "content": "hi"}]', prompt_id="pid1", prompt_name="p", prompt_version=2,
        environment="production", internal_model_id=_matched("gpt-4o"))
    o3 = ObservationEvent(PA, "o3", "t1", T0 + s(1.8), type="EVENT", name="warn-event", parent_observation_id="o1",
                          start_time=T0 + s(1.8), level="WARNING", status_message="careful", version="ov1",
                          environment="production")
    insert(olap, observations=[o2_update, o1])
    insert(olap, observations=[o2_create, o3])
    insert(olap, observations=[o1])  # a replayed blob: the same piece again
    # t2: explicit name wins over the root span's; same session as t1.
    t2 = T0 + timedelta(hours=1)
    insert(olap, traces=[TraceEvent(PA, "t2", t2, timestamp=t2, name="named-2", root_name="root-2", user_id="u2",
                                    session_id="s1", tags=["a", "c"], environment="staging", release="r2",
                                    version="v2")],
           observations=[ObservationEvent(
               PA, "o4", "t2", t2, type="GENERATION", name="llm", start_time=t2, end_time=t2 + s(3), model="claude-3",
               internal_model_id=_matched("claude-3"), usage_details={"input": 100, "output": 50, "total": 150}, cost_details={"total": 1.0},
               level="ERROR", environment="staging")])
    t3 = T0 + timedelta(hours=2)
    insert(olap, traces=[TraceEvent(PA, "t3", t3, timestamp=t3, name="third", public=True)])
    bulk_t, bulk_o = [], []
    for i in range(8):
        ts = bulk_ts(i)
        bulk_t.append(TraceEvent(PA, f"bulk-{i}", ts, timestamp=ts, root_name=f"bulk-{i}", user_id="u3",
                                 session_id=f"bulk-s{i // 2}", environment="production"))
        bulk_o.append(ObservationEvent(PA, f"bo-{i}", f"bulk-{i}", ts, type="SPAN", name="bulk-span", start_time=ts,
                                       end_time=ts + s(1), environment="production"))
    bulk_o += [ObservationEvent(PA, f"tie-{k}", "bulk-7", bulk_ts(7), type="EVENT", name="tie",
                                start_time=bulk_ts(7), environment="production") for k in "ab"]
    insert(olap, traces=bulk_t[:4], observations=bulk_o[:5])
    insert(olap, traces=bulk_t[4:], observations=bulk_o[5:])
    # Scores: sc1 has two versions (the later one wins).
    insert(olap, scores=[ScoreEvent(PA, "sc1", T0 + s(1), T0 + s(3), "quality", "NUMERIC", "API", value=0.5,
                                    trace_id="t1", environment="production")])
    insert(olap, scores=[
        ScoreEvent(PA, "sc1", T0 + s(5), T0 + s(3), "quality", "NUMERIC", "API", value=0.9, trace_id="t1",
                   environment="production", comment="v2"),
        ScoreEvent(PA, "sc2", T0 + s(4), T0 + s(4), "tone", "CATEGORICAL", "ANNOTATION", string_value="good",
                   trace_id="t1", observation_id="o2", comment="nice", config_id="cfg1", author_user_id="user-x",
                   queue_id="q1", environment="production", metadata='{"m": 1}'),
        ScoreEvent(PA, "sc3", T0 + s(5), T0 + s(5), "correct", "BOOLEAN", "EVAL", value=1.0, string_value="True",
                   trace_id="t1", environment="production"),
        ScoreEvent(PA, "sc4", t2 + s(1), t2 + s(1), "quality", "NUMERIC", "API", value=0.2, trace_id="t2",
                   environment="staging"),
        ScoreEvent(PA, "sc5", t3, t3, "session-score", "NUMERIC", "API", value=3.0, session_id="s1",
                   environment="production"),
    ])
    # Project B: same user and session names, must never show up for A.
    tb = T0 + timedelta(minutes=30)
    insert(olap, traces=[TraceEvent(PB, "tb1", tb, timestamp=tb, root_name="root-1", user_id="u1", session_id="s1")],
           observations=[ObservationEvent(PB, "ob1", "tb1", tb, type="SPAN", name="b-span", start_time=tb)],
           scores=[ScoreEvent(PB, "sb1", tb, tb, "quality", "NUMERIC", "API", value=0.1, trace_id="tb1")])


@pytest.fixture(scope="module", name="dataset")
def fixture_dataset(read_api: ReadApi) -> ReadApi:
    load_dataset(read_api.olap)
    return read_api
