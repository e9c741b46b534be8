"""The OLTP engine and models behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from owlscope.storage.oltp import (
    Comment,
    CommentObjectType,
    Model,
    Organization,
    Price,
    PricingTier,
    Project,
    ProjectMembership,
    Role,
    ScoreConfig,
    ScoreDataType,
    User,
    make_engine,
    make_session_factory,
    sqlite_optimize,
    upgrade,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'm.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    eng = make_engine(url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def project(sessions: sessionmaker[Session]) -> Project:
    with sessions.begin() as s:
        org = Organization(name="o")
        s.add(org)
        s.flush()
        proj = Project(org_id=org.id, name="p")
        s.add(proj)
    return proj


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "dir" / "x.db"
    eng = make_engine(f"sqlite:///{db}")
    try:
        with eng.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
            }
        assert pragma == {"journal_mode": "wal", "busy_timeout": 5000, "foreign_keys": 1, "synchronous": 1}
        assert db.parent.is_dir()
    finally:
        eng.dispose()


def test_sqlite_ddl_is_transactional(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    try:
        with eng.connect() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.rollback()
        with eng.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 't'")).scalar() == 0
        # AUTOCOMMIT connections still work, and the next transaction is a real one again.
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        with eng.connect() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            conn.execute(text("CREATE TABLE t2 (x INTEGER)"))
            conn.rollback()
        with eng.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 't2'")).scalar() == 0
    finally:
        eng.dispose()


def test_postgres_urls_use_psycopg3() -> None:
    for url in ("postgresql://u@h/db", "postgres://u@h/db"):
        eng = make_engine(url)
        assert eng.dialect.driver == "psycopg"
        assert eng.pool.size() == 10
        eng.dispose()
    with pytest.raises(ValueError):
        make_engine("mysql://u@h/db")


def test_sqlite_optimize(engine: Engine, sessions: sessionmaker[Session], project: Project) -> None:
    sqlite_optimize(engine)  # no statistics yet: ANALYZE
    sqlite_optimize(engine)  # PRAGMA optimize
    sqlite_optimize(engine, full=True)
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar() == 1


def test_timestamps_come_back_as_aware_utc(sessions: sessionmaker[Session], project: Project) -> None:
    tz = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=tz)
    with sessions.begin() as s:
        s.get(Project, project.id).deleted_at = local
    with sessions() as s:
        p = s.get(Project, project.id)
        assert p.deleted_at == local
        assert p.deleted_at.utcoffset() == timedelta(0)
        assert p.created_at.tzinfo is not None
        assert p.updated_at >= p.created_at


def test_model_with_pricing_tiers_and_exact_prices(sessions: sessionmaker[Session], project: Project) -> None:
    with sessions.begin() as s:
        model = Model(
            project_id=project.id, model_name="gpt-x", match_pattern="(?i)^gpt-x$", unit="TOKENS",
            tokenizer_id="openai", tokenizer_config={"tokensPerMessage": 3},
        )
        default = PricingTier(name="Standard", is_default=True, priority=0, conditions=[])
        fast = PricingTier(
            name="Fast", priority=1,
            conditions=[{"source": "model_parameters", "key": "service_tier", "operator": "in", "values": ["fast"]}],
        )
        model.pricing_tiers = [fast, default]
        s.add(model)
        s.flush()
        for tier, price in ((default, "0.0000025"), (fast, "0.000000125")):
            s.add(Price(model_id=model.id, pricing_tier_id=tier.id, usage_type="input", price=Decimal(price)))
        s.add(Model(model_name="global", match_pattern="x"))
    with sessions() as s:
        m = s.scalars(select(Model).where(Model.project_id == project.id)).one()
        assert [t.name for t in m.pricing_tiers] == ["Standard", "Fast"]
        assert m.tokenizer_config == {"tokensPerMessage": 3}
        prices = {t.name: t.prices[0].price for t in m.pricing_tiers}
        assert prices == {"Standard": Decimal("0.0000025"), "Fast": Decimal("0.000000125")}
        assert s.scalars(select(Model).where(Model.project_id.is_(None))).one().is_global
        # JSON None is SQL NULL
        assert s.execute(text("SELECT count(*) FROM models WHERE tokenizer_config IS NULL")).scalar() == 1

    with sessions.begin() as s:
        s.delete(s.get(Model, m.id))
    with sessions() as s:
        assert s.scalars(select(PricingTier)).all() == []
        assert s.scalars(select(Price)).all() == []


def test_pricing_tier_priorities_are_unique_per_model(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError), sessions.begin() as s:
        m = Model(model_name="m", match_pattern="m")
        m.pricing_tiers = [PricingTier(name="a", priority=0), PricingTier(name="b", priority=0)]
        s.add(m)


def test_emails_are_lowercased_and_unique(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        s.add(User(email="  Mixed.Case@Example.COM "))
    with sessions() as s:
        assert s.scalars(select(User.email)).one() == "mixed.case@example.com"
    with pytest.raises(IntegrityError), sessions.begin() as s:
        s.add(User(email="MIXED.case@example.com"))


def test_enums_roundtrip_and_reject_unknown_values(sessions: sessionmaker[Session], project: Project) -> None:
    with sessions.begin() as s:
        user = User(email="u@example.com")
        s.add(user)
        s.flush()
        s.add(ProjectMembership(project_id=project.id, user_id=user.id, role=Role.VIEWER))
        s.add(ScoreConfig(project_id=project.id, name="quality", data_type=ScoreDataType.CATEGORICAL,
                          categories=[{"label": "good", "value": 1}, {"label": "bad", "value": 0}]))
        s.add(Comment(project_id=project.id, object_type=CommentObjectType.TRACE, object_id="t1",
                      content="hi", author_user_id=user.id))
    with sessions() as s:
        assert s.scalars(select(ProjectMembership.role)).one() is Role.VIEWER
        cfg = s.scalars(select(ScoreConfig)).one()
        assert (cfg.data_type, cfg.is_archived, cfg.categories[0]["label"]) == (ScoreDataType.CATEGORICAL, False, "good")
        assert s.execute(text("SELECT role FROM project_memberships")).scalar() == "VIEWER"
    with pytest.raises(StatementError), sessions.begin() as s:
        s.add(Comment(project_id=project.id, object_type="DATASET", object_id="x", content="c"))


def test_deleting_a_user_keeps_their_comments(sessions: sessionmaker[Session], project: Project) -> None:
    with sessions.begin() as s:
        user = User(email="gone@example.com")
        s.add(user)
        s.flush()
        s.add(Comment(project_id=project.id, object_type=CommentObjectType.SESSION, object_id="s", content="c",
                      author_user_id=user.id))
    with sessions.begin() as s:
        s.execute(User.__table__.delete())
    with sessions() as s:
        assert s.scalars(select(Comment.author_user_id)).one() is None


def test_foreign_keys_are_enforced(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(IntegrityError), sessions.begin() as s:
        s.add(Project(org_id="no-such-org", name="p"))
