"""Shared fixtures: the engines each test layer runs on.

Backends: SQLite and PostgreSQL (OWLSCOPE_TEST_PG_URL), chDB and ClickHouse-over-HTTP (a fixture
server that serves chDB through the ClickHouse HTTP interface), SQLite queue and Redis
(OWLSCOPE_TEST_REDIS_URL), local blobs and S3 (a local moto server). A backend that cannot be
reached skips its tests with the reason.

chDB allows one data directory per process: this process uses one, and tests isolate by OLAP
database name and by project id.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

PG_ADMIN_URL = os.environ.get("OWLSCOPE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("OWLSCOPE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


REQUIRE_BACKENDS = os.environ.get("OWLSCOPE_REQUIRE_BACKENDS") == "1"


def skip_or_fail(reason: str) -> None:
    """CI configures every backend, so there a missing one is a failure, not a skip."""
    if REQUIRE_BACKENDS:
        pytest.fail(reason)
    pytest.skip(reason)


def _reachable(url: str, default_port: int) -> bool:
    u = urlparse(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chdb_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """This process's chDB engine, kept open for the whole session by an Olap of its own.

    chDB shuts its engine down when the last connection to it closes, and the next connection
    starts it again, loading the metadata of every database in the directory: each test closes its
    services, so without this every test paid a restart that grew with the databases the tests
    before it had made (about 15 ms per database, seconds per test late in a run)."""
    from owlscope.config import load_settings
    from owlscope.storage.olap.client import Olap

    path = tmp_path_factory.mktemp("chdb")
    keeper = Olap(load_settings(data_dir=path.parent / f"{path.name}-data", clickhouse_url=f"chdb://{path}"))
    keeper.query("SELECT 1")
    yield keeper
    keeper.close()


@pytest.fixture(scope="session")
def chdb_dir(chdb_engine) -> Path:
    return Path(chdb_engine.url[len("chdb://"):])


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    if not _reachable(PG_ADMIN_URL, 5432):
        skip_or_fail(f"PostgreSQL not reachable at {PG_ADMIN_URL} (set OWLSCOPE_TEST_PG_URL)")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    import psycopg

    name = f"owlscope_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    u = urlparse(pg_admin_url)
    yield u._replace(path=f"/{name}").geturl()
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not _reachable(REDIS_URL, 6379):
        skip_or_fail(f"Redis not reachable at {REDIS_URL} (set OWLSCOPE_TEST_REDIS_URL)")
    return REDIS_URL


@pytest.fixture(scope="session")
def clickhouse_http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from fixtures.servers import start_chdb_http_server

    proc, port = start_chdb_http_server(tmp_path_factory.mktemp("chdb-http"))
    yield f"http://127.0.0.1:{port}"
    from fixtures.servers import stop_process

    stop_process(proc)


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from fixtures.servers import start_moto_s3

    proc, endpoint = start_moto_s3(tmp_path_factory.mktemp("moto"))
    yield endpoint
    from fixtures.servers import stop_process

    stop_process(proc)


def make_bucket(endpoint: str) -> str:
    from fixtures.servers import create_s3_bucket

    name = f"owlscope-{uuid.uuid4().hex[:10]}"
    create_s3_bucket(endpoint, name)
    return name


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """argon2id with its cheapest parameters in this process: the production parameters cost
    ~0.1 s of CPU per hash by design, paid on every sign-up and sign-in of every test. What the
    hashing itself must do is tested in tests/unit/test_passwords.py with the real parameters;
    servers started as subprocesses keep them too."""
    from argon2 import PasswordHasher

    from owlscope.auth import passwords

    real = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    passwords._dummy_hash.cache_clear()
    yield
    passwords._hasher = real
    passwords._dummy_hash.cache_clear()


STACKS = ("embedded", "scaleout")


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_settings(tmp_path: Path, chdb_dir: Path, request: pytest.FixtureRequest):
    """Build Settings for a stack: 'embedded' (SQLite, chDB, SQLite queue, local blobs) or
    'scaleout' (PostgreSQL, ClickHouse over HTTP, Redis, S3)."""
    from owlscope.config import load_settings

    made: list[str] = []

    def build(stack: str = "embedded", **overrides):
        values: dict = {
            "data_dir": tmp_path / "data",
            "clickhouse_db": f"t_{uuid.uuid4().hex[:10]}",
            # Tests share one Redis: each gets its own queue, so no test runs another's jobs.
            "queue_name": f"owlscope-test-{uuid.uuid4().hex[:10]}",
            "flush_interval_ms": 50,
        }
        if stack == "embedded":
            values["clickhouse_url"] = f"chdb://{chdb_dir}"
        else:
            values["database_url"] = request.getfixturevalue("pg_url")
            values["clickhouse_url"] = request.getfixturevalue("clickhouse_http_url")
            values["redis_url"] = request.getfixturevalue("redis_url")
            endpoint = request.getfixturevalue("s3_endpoint")
            values.update(
                s3_bucket=make_bucket(endpoint), s3_endpoint=endpoint, s3_access_key_id="testing",
                s3_secret_access_key="testing", s3_force_path_style=True, salt="test-salt",
                session_secret="test-session-secret", redis_url=values["redis_url"],
            )
        values.update(overrides)
        if values["clickhouse_url"].startswith("chdb://"):
            made.append(values["clickhouse_db"])
        return load_settings(**values)

    yield build
    if made:
        # Dropped without SYNC (which did not return in embedded chDB): the tables leave the
        # catalog now and their files go in the background.
        keeper = request.getfixturevalue("chdb_engine")
        for name in made:
            keeper.command(f"DROP DATABASE IF EXISTS `{name}`")


class LiveServer:
    """A real server on a loopback port, running the full app (API, UI and worker) in a thread."""

    def __init__(self, settings, run_worker: bool = True):
        import uvicorn

        from owlscope.app import create_app

        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings, run_worker=run_worker)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    @property
    def services(self):
        return self.app.state.services

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def create_project_key(services, *, org_name: str = "org", project_name: str = "proj") -> dict:
    from owlscope.accounts.bootstrap import create_org_project_user

    return create_org_project_user(
        services.sessions, services.settings, org_name=org_name, project_name=project_name,
    )


class SdkServer:
    """One real server per test process for the official SDK, which keeps a process-wide client
    (`get_client()`, used by `@observe` and `langfuse.openai`)."""

    def __init__(self, server: LiveServer, keys: dict):
        self.server = server
        self.url = server.url
        self.keys = keys
        self.public_key = keys["public_key"]
        self.secret_key = keys["secret_key"]
        self.project_id = keys["project_id"]

    @property
    def services(self):
        return self.server.services

    @property
    def auth(self) -> tuple[str, str]:
        return (self.public_key, self.secret_key)

    def get(self, path: str, **params):
        import httpx

        return httpx.get(f"{self.url}{path}", params=params, auth=self.auth, timeout=30)

    def wait_for(self, path: str, predicate=lambda r: r.status_code == 200, timeout: float = 10, **params):
        """Poll a read endpoint until `predicate(response)` holds (data becomes visible
        asynchronously, within about a second)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(path, **params)
            if predicate(r):
                return r
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {path}: {r.status_code} {r.text[:500]}")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def sdk_server(tmp_path_factory: pytest.TempPathFactory, chdb_dir: Path) -> Iterator[SdkServer]:
    from owlscope.config import load_settings

    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("sdk-data"), clickhouse_url=f"chdb://{chdb_dir}",
        clickhouse_db=f"sdk_{uuid.uuid4().hex[:10]}", flush_interval_ms=50,
    )
    with LiveServer(settings) as server:
        keys = create_project_key(server.services, org_name="sdk-org", project_name="sdk-project")
        env = {"LANGFUSE_PUBLIC_KEY": keys["public_key"], "LANGFUSE_SECRET_KEY": keys["secret_key"],
               "LANGFUSE_HOST": server.url, "LANGFUSE_BASE_URL": server.url}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        from langfuse import Langfuse

        client = Langfuse(public_key=keys["public_key"], secret_key=keys["secret_key"], base_url=server.url,
                          flush_interval=0.2)
        sdk = SdkServer(server, keys)
        sdk.client = client
        try:
            yield sdk
        finally:
            client.shutdown()
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(autouse=True)
def _sdk_project(request: pytest.FixtureRequest):
    """Tests on the shared SDK server: `@observe`, the OpenAI wrapper and `get_client()` trace to
    its project even when other SDK clients exist in this process."""
    if "sdk_server" not in request.fixturenames:
        yield
        return
    from langfuse._client.get_client import _set_current_public_key

    sdk_server = request.getfixturevalue("sdk_server")
    with _set_current_public_key(sdk_server.public_key):
        yield
