"""API keys (create, verify, revoke, cache) and headless init, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from owlscope.accounts.bootstrap import create_org_project_user, init_from_settings
from owlscope.auth.keys import (
    ApiKeyCache,
    create_api_key,
    display_secret,
    generate_key_pair,
    hash_secret,
    list_api_keys,
    revoke_api_key,
    verify_api_key,
)
from owlscope.auth.passwords import verify_password
from owlscope.config import ConfigError, Settings, load_settings
from owlscope.errors import InvalidRequest
from owlscope.storage.oltp import make_engine, make_session_factory, upgrade, utcnow
from owlscope.storage.oltp.models import (
    TABLES,
    ApiKey,
    Organization,
    OrganizationMembership,
    Project,
    Role,
    User,
)

SALT = "test-salt"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'owlscope.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def project(sessions: sessionmaker[Session]) -> Project:
    with sessions.begin() as s:
        org = Organization(name="Acme")
        s.add(org)
        s.flush()
        proj = Project(org_id=org.id, name="web")
        s.add(proj)
    return proj


def make_settings(tmp_path: Path, db_url: str, **init: Any) -> Settings:
    return load_settings(
        data_dir=tmp_path / "data", database_url=db_url, salt=SALT, session_secret="test-session", **init
    )


def _count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as s:
        return len(s.scalars(select(model)).all())


# ---- key helpers (no database) ----------------------------------------------------------------


def test_generate_key_pair_format() -> None:
    pk, sk = generate_key_pair()
    assert re.fullmatch(f"pk-lf-{UUID}", pk)
    assert re.fullmatch(f"sk-lf-{UUID}", sk)
    assert generate_key_pair() != (pk, sk)


def test_hash_secret_is_salted_sha256_hex() -> None:
    h = hash_secret("sk-lf-abc", "salt-a")
    assert re.fullmatch(r"[0-9a-f]{64}", h)
    assert h == hash_secret("sk-lf-abc", "salt-a")
    assert h != hash_secret("sk-lf-abc", "salt-b")
    assert h != hash_secret("sk-lf-abd", "salt-a")
    with pytest.raises(ValueError):
        hash_secret("sk-lf-abc", "")


def test_display_secret_shows_prefix_and_last_four() -> None:
    assert display_secret("sk-lf-0000-1111-abcd") == "sk-lf-...abcd"


# ---- keys in the database ----------------------------------------------------------------------


def test_create_and_verify(sessions: sessionmaker[Session], project: Project) -> None:
    with sessions.begin() as s:
        key, secret = create_api_key(s, project_id=project.id, salt=SALT, note="ci")
    assert key.public_key.startswith("pk-lf-") and secret.startswith("sk-lf-")
    assert key.display_secret_key == f"sk-lf-...{secret[-4:]}"

    with sessions() as s:
        found = verify_api_key(s, public_key=key.public_key, secret_key=secret, salt=SALT)
        assert found is not None and found.id == key.id
        assert found.project.org_id == project.org_id
        assert verify_api_key(s, public_key=key.public_key, secret_key=secret + "x", salt=SALT) is None
        assert verify_api_key(s, public_key=key.public_key, secret_key=secret, salt="other") is None
        assert verify_api_key(s, public_key="pk-lf-unknown", secret_key=secret, salt=SALT) is None
        assert verify_api_key(s, public_key=secret, secret_key=key.public_key, salt=SALT) is None
        assert verify_api_key(s, public_key="", secret_key="", salt=SALT) is None
        assert [k.id for k in list_api_keys(s, project_id=project.id)] == [key.id]


def test_secret_is_stored_only_as_a_hash(engine: Engine, sessions: sessionmaker[Session], project: Project) -> None:
    with sessions.begin() as s:
        key, secret = create_api_key(s, project_id=project.id, salt=SALT)
    secret_body = secret.removeprefix("sk-lf-")
    with engine.connect() as conn:
        for table in TABLES:
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                for value in row:
                    assert secret_body not in str(value), f"clear secret found in {table}"
        stored = conn.execute(text("SELECT hashed_secret_key, display_secret_key FROM api_keys")).one()
    assert stored == (hash_secret(secret, SALT), f"sk-lf-...{secret[-4:]}")


def test_register_a_given_pair_and_validate_it(sessions: sessionmaker[Session], project: Project) -> None:
    with sessions.begin() as s:
        key, secret = create_api_key(
            s, project_id=project.id, salt=SALT, public_key="pk-lf-given", secret_key="sk-lf-given-1234"
        )
    assert (key.public_key, secret, key.display_secret_key) == ("pk-lf-given", "sk-lf-given-1234", "sk-lf-...1234")
    with sessions() as s:
        assert verify_api_key(s, public_key="pk-lf-given", secret_key="sk-lf-given-1234", salt=SALT)
        for kwargs in (
            {"public_key": "pk-lf-only"},
            {"public_key": "bad", "secret_key": "sk-lf-x"},
            {"public_key": "pk-lf-x", "secret_key": "bad"},
        ):
            with pytest.raises(ValueError):
                create_api_key(s, project_id=project.id, salt=SALT, **kwargs)


def test_public_keys_are_unique(sessions: sessionmaker[Session], project: Project) -> None:
    with sessions.begin() as s:
        create_api_key(s, project_id=project.id, salt=SALT, public_key="pk-lf-dup", secret_key="sk-lf-1")
    with pytest.raises(IntegrityError), sessions.begin() as s:
        create_api_key(s, project_id=project.id, salt=SALT, public_key="pk-lf-dup", secret_key="sk-lf-2")


def test_revoke(sessions: sessionmaker[Session], project: Project) -> None:
    with sessions.begin() as s:
        key, secret = create_api_key(s, project_id=project.id, salt=SALT)
    with sessions.begin() as s:
        assert not revoke_api_key(s, project_id="another-project", key_id=key.id)
    with sessions.begin() as s:
        assert verify_api_key(s, public_key=key.public_key, secret_key=secret, salt=SALT) is not None
        assert revoke_api_key(s, project_id=project.id, key_id=key.id)
    with sessions() as s:
        assert verify_api_key(s, public_key=key.public_key, secret_key=secret, salt=SALT) is None
        assert not revoke_api_key(s, project_id=project.id, key_id=key.id)


def test_expired_keys_and_deleted_projects_are_rejected(sessions: sessionmaker[Session], project: Project) -> None:
    with sessions.begin() as s:
        old, old_secret = create_api_key(s, project_id=project.id, salt=SALT, expires_at=utcnow() - timedelta(seconds=1))
        live, live_secret = create_api_key(s, project_id=project.id, salt=SALT, expires_at=utcnow() + timedelta(days=1))
    with sessions() as s:
        assert verify_api_key(s, public_key=old.public_key, secret_key=old_secret, salt=SALT) is None
        assert verify_api_key(s, public_key=live.public_key, secret_key=live_secret, salt=SALT) is not None
    with sessions.begin() as s:
        s.get(Project, project.id).deleted_at = utcnow()
    with sessions() as s:
        assert verify_api_key(s, public_key=live.public_key, secret_key=live_secret, salt=SALT) is None


def test_deleting_a_project_deletes_its_keys(sessions: sessionmaker[Session], project: Project) -> None:
    with sessions.begin() as s:
        create_api_key(s, project_id=project.id, salt=SALT)
    with sessions.begin() as s:
        s.execute(Project.__table__.delete().where(Project.id == project.id))
    assert _count(sessions, ApiKey) == 0


# ---- the per-request cache ---------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _count_selects(engine: Engine) -> list[str]:
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "api_keys" in statement:
            seen.append(statement)

    return seen


def test_cache_serves_repeat_checks_from_memory(
    engine: Engine, sessions: sessionmaker[Session], project: Project
) -> None:
    with sessions.begin() as s:
        key, secret = create_api_key(s, project_id=project.id, salt=SALT)
    clock = FakeClock()
    cache = ApiKeyCache(sessions, SALT, ttl_seconds=60, clock=clock)
    selects = _count_selects(engine)

    assert cache.cached(key.public_key, secret) is None  # not verified yet: the database decides
    auth = cache.authenticate(key.public_key, secret)
    assert auth is not None
    assert cache.cached(key.public_key, secret) == auth
    assert cache.cached(key.public_key, "sk-lf-wrong") is None
    assert (auth.key_id, auth.project_id, auth.org_id, auth.public_key) == (
        key.id, project.id, project.org_id, key.public_key,
    )
    for _ in range(20):
        assert cache.authenticate(key.public_key, secret) == auth
    assert len(selects) == 1
    assert cache.authenticate(key.public_key, "sk-lf-wrong") is None
    assert len(cache) == 1

    with sessions() as s:
        assert s.get(ApiKey, key.id).last_used_at is not None

    # Revoked elsewhere: still served until invalidated here or the TTL runs out.
    with sessions.begin() as s:
        revoke_api_key(s, project_id=project.id, key_id=key.id)
    assert cache.authenticate(key.public_key, secret) == auth
    cache.invalidate(key_id=key.id)
    before = len(selects)
    assert cache.cached(key.public_key, secret) is None
    assert len(selects) == before  # `cached` never reads the database
    assert cache.authenticate(key.public_key, secret) is None


def test_cache_entries_expire(sessions: sessionmaker[Session], project: Project) -> None:
    with sessions.begin() as s:
        key, secret = create_api_key(s, project_id=project.id, salt=SALT)
    clock = FakeClock()
    cache = ApiKeyCache(sessions, SALT, ttl_seconds=60, clock=clock)
    assert cache.authenticate(key.public_key, secret) is not None
    with sessions.begin() as s:
        revoke_api_key(s, project_id=project.id, key_id=key.id)
    clock.now += 59
    assert cache.authenticate(key.public_key, secret) is not None
    clock.now += 2
    assert cache.authenticate(key.public_key, secret) is None


def test_cache_invalidate_all_and_by_project_and_bounded_size(
    sessions: sessionmaker[Session], project: Project
) -> None:
    with sessions.begin() as s:
        pairs = [create_api_key(s, project_id=project.id, salt=SALT) for _ in range(3)]
    cache = ApiKeyCache(sessions, SALT, max_entries=2, clock=FakeClock())
    for key, secret in pairs:
        assert cache.authenticate(key.public_key, secret) is not None
    assert len(cache) == 2
    cache.invalidate(project_id=project.id)
    assert len(cache) == 0
    cache.authenticate(pairs[0][0].public_key, pairs[0][1])
    cache.invalidate()
    assert len(cache) == 0


# ---- headless init -----------------------------------------------------------------------------

INIT = {
    "init_org_id": "org-acme",
    "init_org_name": "Acme",
    "init_project_id": "proj-web",
    "init_project_name": "Web",
    "init_project_public_key": "pk-lf-1234567890",
    "init_project_secret_key": "sk-lf-1234567890",
    "init_user_email": "Admin@Example.COM",
    "init_user_password": "first-password",
    "init_user_name": "Admin",
}


def test_headless_init_creates_everything(tmp_path: Path, db_url: str, sessions: sessionmaker[Session]) -> None:
    result = init_from_settings(sessions, make_settings(tmp_path, db_url, **INIT))
    assert result is not None
    assert result["created"] == ["organization", "project", "api_key", "user", "membership"]
    assert result["warnings"] == []
    assert (result["org_id"], result["project_id"], result["public_key"]) == (
        "org-acme", "proj-web", "pk-lf-1234567890",
    )
    with sessions() as s:
        assert s.get(Organization, "org-acme").name == "Acme"
        proj = s.get(Project, "proj-web")
        assert (proj.name, proj.org_id) == ("Web", "org-acme")
        key = verify_api_key(s, public_key="pk-lf-1234567890", secret_key="sk-lf-1234567890", salt=SALT)
        assert key is not None and key.project_id == "proj-web"
        user = s.scalars(select(User)).one()
        assert (user.email, user.name, user.id) == ("admin@example.com", "Admin", result["user_id"])
        assert verify_password("first-password", user.password_hash)
        member = s.scalars(select(OrganizationMembership)).one()
        assert (member.org_id, member.user_id, member.role) == ("org-acme", user.id, Role.OWNER)


def test_headless_init_never_overwrites(tmp_path: Path, db_url: str, sessions: sessionmaker[Session]) -> None:
    init_from_settings(sessions, make_settings(tmp_path, db_url, **INIT))
    changed = {
        **INIT,
        "init_org_name": "Renamed",
        "init_project_name": "Renamed",
        "init_project_secret_key": "sk-lf-another-secret",
        "init_user_email": "admin@example.com",
        "init_user_password": "second-password",
        "init_user_name": "Someone Else",
    }
    result = init_from_settings(sessions, make_settings(tmp_path, db_url, **changed))
    assert result is not None and result["created"] == []
    assert any("different secret" in w for w in result["warnings"])
    with sessions() as s:
        assert s.get(Organization, "org-acme").name == "Acme"
        assert s.get(Project, "proj-web").name == "Web"
        assert verify_api_key(s, public_key="pk-lf-1234567890", secret_key="sk-lf-1234567890", salt=SALT)
        assert not verify_api_key(s, public_key="pk-lf-1234567890", secret_key="sk-lf-another-secret", salt=SALT)
        user = s.scalars(select(User)).one()
        assert user.name == "Admin"
        assert verify_password("first-password", user.password_hash)
        assert not verify_password("second-password", user.password_hash)
    for model in (Organization, Project, ApiKey, User, OrganizationMembership):
        assert _count(sessions, model) == 1


def test_headless_init_is_ignored_without_org_id(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session]
) -> None:
    without_org = {k: v for k, v in INIT.items() if k != "init_org_id"}
    assert init_from_settings(sessions, make_settings(tmp_path, db_url, **without_org)) is None
    for model in (Organization, Project, ApiKey, User):
        assert _count(sessions, model) == 0


def test_headless_init_partial_settings(tmp_path: Path, db_url: str, sessions: sessionmaker[Session]) -> None:
    result = init_from_settings(
        sessions,
        make_settings(
            tmp_path, db_url, init_org_id="org-only",
            init_project_public_key="pk-lf-x", init_project_secret_key="sk-lf-x",
        ),
    )
    assert result is not None and result["created"] == ["organization"]
    assert result["public_key"] is None
    assert any("LANGFUSE_INIT_PROJECT_ID" in w for w in result["warnings"])
    with sessions() as s:
        assert s.get(Organization, "org-only").name == "org-only"
    assert _count(sessions, ApiKey) == 0


def test_headless_init_keeps_an_existing_members_role(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as s:
        s.add(Organization(id="org-acme", name="Existing"))
        user = User(email="admin@example.com", name="Pre-existing")
        s.add(user)
        s.flush()
        s.add(OrganizationMembership(org_id="org-acme", user_id=user.id, role=Role.VIEWER))
    result = init_from_settings(sessions, make_settings(tmp_path, db_url, **INIT))
    assert result is not None and result["created"] == ["project", "api_key"]
    with sessions() as s:
        assert s.scalars(select(OrganizationMembership)).one().role == Role.VIEWER
        assert s.scalars(select(User)).one().password_hash is None


def test_headless_init_from_concurrent_starts(tmp_path: Path, db_url: str, sessions: sessionmaker[Session]) -> None:
    settings = make_settings(tmp_path, db_url, **INIT)
    barrier = threading.Barrier(3)
    results: list[Any] = []

    def run() -> None:
        barrier.wait(30)
        try:
            results.append(init_from_settings(sessions, settings))
        except Exception as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(isinstance(r, dict) for r in results), results
    assert sorted(len(r["created"]) for r in results) == [0, 0, 5]
    for model in (Organization, Project, ApiKey, User, OrganizationMembership):
        assert _count(sessions, model) == 1


# ---- owlscope init -----------------------------------------------------------------------------


def test_create_org_project_user(tmp_path: Path, db_url: str, sessions: sessionmaker[Session]) -> None:
    settings = make_settings(tmp_path, db_url)
    out = create_org_project_user(
        sessions, settings, org_name="Acme", project_name="Web", email="Me@Example.com", password="password-1",
        user_name="Me",
    )
    assert out["user_created"] is True
    assert out["user_email"] == "me@example.com"
    assert out["secret_key"].startswith("sk-lf-")
    with sessions() as s:
        key = verify_api_key(s, public_key=out["public_key"], secret_key=out["secret_key"], salt=SALT)
        assert key is not None and key.id == out["api_key_id"] and key.project_id == out["project_id"]
        assert key.project.org_id == out["org_id"]
        assert s.get(Organization, out["org_id"]).name == "Acme"
        member = s.scalars(select(OrganizationMembership)).one()
        assert (member.user_id, member.role) == (out["user_id"], Role.OWNER)

    # A second organization for the same person reuses the user and leaves the password alone.
    again = create_org_project_user(
        sessions, settings, org_name="Other", project_name="P", email="me@example.com", password="password-2"
    )
    assert again["user_created"] is False and again["user_id"] == out["user_id"]
    assert again["org_id"] != out["org_id"]
    with sessions() as s:
        assert verify_password("password-1", s.get(User, out["user_id"]).password_hash)
        assert len(s.scalars(select(OrganizationMembership)).all()) == 2

    no_user = create_org_project_user(sessions, settings, org_name="Solo", project_name="P")
    assert no_user["user_id"] is None and no_user["public_key"].startswith("pk-lf-")
    with pytest.raises(InvalidRequest, match="organization name must not be empty"):
        create_org_project_user(sessions, settings, org_name=" ", project_name="P")


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("init_user_password", "short", "at least 8 characters"),
    ("init_user_email", "not-an-email", "valid email"),
    ("init_org_name", "x" * 61, "at most 60 characters"),
])
def test_headless_init_refuses_what_the_sign_up_form_refuses(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session], setting: str, value: str, message: str,
) -> None:
    with pytest.raises(ConfigError) as err:
        init_from_settings(sessions, make_settings(tmp_path, db_url, **{**INIT, setting: value}))
    assert "LANGFUSE_" + setting.upper() in str(err.value) and message in str(err.value)
    for model in (Organization, Project, ApiKey, User, OrganizationMembership):
        assert _count(sessions, model) == 0  # nothing half-written


def test_init_refuses_what_the_sign_up_form_refuses(tmp_path: Path, db_url: str,
                                                    sessions: sessionmaker[Session]) -> None:
    settings = make_settings(tmp_path, db_url)
    for kwargs, message in (
        ({"email": "a@example.com", "password": "x"}, "at least 8 characters"),
        ({"email": "nope", "password": "long enough"}, "valid email"),
        ({"org_name": "   "}, "organization name must not be empty"),
    ):
        args = {"org_name": "Acme", "project_name": "Chat", **kwargs}
        with pytest.raises(InvalidRequest, match=message):
            create_org_project_user(sessions, settings, **args)
    for model in (Organization, Project, ApiKey, User, OrganizationMembership):
        assert _count(sessions, model) == 0
