from __future__ import annotations

from pathlib import Path

import pytest

from owlscope.config import ConfigError, load_settings


def test_defaults_put_everything_under_the_data_dir(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)
    assert s.port == 3000 and s.host == "127.0.0.1"
    assert s.db_url == f"sqlite:///{tmp_path / 'owlscope.db'}"
    assert s.olap_url == f"chdb://{tmp_path / 'olap'}"
    assert s.blob_location == f"file://{tmp_path / 'blobs'}"
    assert s.is_embedded and s.uses_chdb and s.redis_url is None


def test_embedded_secrets_are_generated_once_and_kept(tmp_path: Path) -> None:
    a = load_settings(data_dir=tmp_path)
    b = load_settings(data_dir=tmp_path)
    assert a.salt and a.salt == b.salt
    assert a.encryption_key == b.encryption_key and len(a.encryption_key or "") == 64
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_every_problem_is_reported_at_once_with_its_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "not-a-port")
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    monkeypatch.setenv("ENCRYPTION_KEY", "short")
    monkeypatch.setenv("REDIS_URL", "http://nope")
    with pytest.raises(ConfigError) as err:
        load_settings(data_dir=tmp_path)
    names = [p[0] for p in err.value.problems]
    assert sorted(names) == ["DATABASE_URL", "ENCRYPTION_KEY", "PORT", "REDIS_URL"]
    text = str(err.value)
    assert "openssl rand -hex 32" in text and "postgresql://" in text


def test_scale_out_requires_shared_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(data_dir=tmp_path, database_url="postgresql://u@h/db")
    assert {p[0] for p in err.value.problems} == {"SALT", "SESSION_SECRET"}
    assert all("openssl rand" in p[2] for p in err.value.problems)


def test_init_keys_are_checked_only_when_init_is_enabled(tmp_path: Path) -> None:
    load_settings(data_dir=tmp_path, init_project_public_key="bad")  # ignored without an org id
    with pytest.raises(ConfigError) as err:
        load_settings(data_dir=tmp_path, init_org_id="org", init_project_public_key="bad",
                      init_project_secret_key="sk-lf-1")
    assert [p[0] for p in err.value.problems] == ["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"]


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PORT=4123\nCLICKHOUSE_DB=from_dotenv\n")
    s = load_settings(data_dir=tmp_path)
    assert s.port == 4123 and s.clickhouse_db == "from_dotenv"
