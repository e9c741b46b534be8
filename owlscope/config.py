"""One typed settings object, read from the environment and an optional `.env` file.

Every setting is documented in docs/configuration.md. `load_settings()` validates everything at
once and raises `ConfigError` listing every problem with its fix; the CLI prints that and exits 1.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")

# The fix shown for each setting when it is missing or malformed.
FIXES: dict[str, str] = {
    "DATABASE_URL": "set DATABASE_URL=postgresql://user:pass@host:5432/db, or unset it for the embedded SQLite file",
    "CLICKHOUSE_URL": "set CLICKHOUSE_URL=http://host:8123, or unset it for embedded chDB",
    "REDIS_URL": "set REDIS_URL=redis://host:6379/0, or unset it for the embedded SQLite queue",
    "SALT": "generate one with: openssl rand -base64 32  (then export SALT=...)",
    "SESSION_SECRET": "generate one with: openssl rand -base64 32  (then export SESSION_SECRET=...)",
    "ENCRYPTION_KEY": "generate one with: openssl rand -hex 32  (then export ENCRYPTION_KEY=...)",
    "PORT": "set PORT to a number between 1 and 65535",
    "OTLP_GRPC_PORT": "set OTLP_GRPC_PORT to a number between 1 and 65535 (usually 4317), or unset it",
    "MASKING_DETECTORS": "a comma list of email, phone, credit_card, iban, ip, api_key, jwt (or all), each "
                         "optionally with :hash, e.g. MASKING_DETECTORS=email:hash,credit_card,api_key",
    "LOG_FORMAT": "set LOG_FORMAT=text (for people) or LOG_FORMAT=json (for log collectors)",
    "S3_BUCKET": "set S3_BUCKET to the bucket name that holds raw events",
    "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": "use a key that starts with pk-lf-",
    "LANGFUSE_INIT_PROJECT_SECRET_KEY": "use a key that starts with sk-lf-",
}


class ConfigError(Exception):
    """Every problem found in the configuration, each with its fix."""

    def __init__(self, problems: list[tuple[str, str, str]]):
        self.problems = problems
        lines = [f"  {name}: {problem}\n      fix: {fix}" for name, problem, fix in problems]
        super().__init__("Configuration is invalid:\n" + "\n".join(lines))


def default_data_dir() -> Path:
    return Path.home() / ".owlscope"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default_factory=default_data_dir, alias="OWLSCOPE_DATA_DIR")
    host: str = Field("127.0.0.1", alias="HOST")
    port: int = Field(3000, alias="PORT", ge=1, le=65535)
    log_level: str = Field("info", alias="LOG_LEVEL")
    log_format: str = Field("text", alias="LOG_FORMAT", pattern="^(text|json)$")
    metrics_port: int | None = Field(None, alias="METRICS_PORT", ge=1, le=65535)
    public_url: str | None = Field(None, alias="OWLSCOPE_PUBLIC_URL")

    database_url: str | None = Field(None, alias="DATABASE_URL")

    clickhouse_url: str | None = Field(None, alias="CLICKHOUSE_URL")
    clickhouse_user: str = Field("default", alias="CLICKHOUSE_USER")
    clickhouse_password: str = Field("", alias="CLICKHOUSE_PASSWORD")
    clickhouse_db: str = Field("owlscope", alias="CLICKHOUSE_DB")
    clickhouse_cluster_enabled: bool = Field(False, alias="CLICKHOUSE_CLUSTER_ENABLED")
    clickhouse_cluster_name: str = Field("default", alias="CLICKHOUSE_CLUSTER_NAME")
    chdb_max_memory_mb: int = Field(2048, alias="CHDB_MAX_MEMORY_MB", ge=256)
    chdb_uncompressed_cache_mb: int = Field(128, alias="CHDB_UNCOMPRESSED_CACHE_MB", ge=0)
    chdb_result_cache_mb: int = Field(64, alias="CHDB_RESULT_CACHE_MB", ge=0)

    redis_url: str | None = Field(None, alias="REDIS_URL")
    queue_name: str = Field("owlscope", alias="QUEUE_NAME", min_length=1)
    queue_max_pending: int = Field(20000, alias="QUEUE_MAX_PENDING", ge=1)
    worker_threads: int = Field(2, alias="WORKER_THREADS", ge=1, le=64)
    local_ingest_threads: int = Field(2, alias="INGEST_THREADS", ge=0, le=64)

    blob_url: str | None = Field(None, alias="BLOB_URL")
    s3_bucket: str | None = Field(None, alias="S3_BUCKET")
    s3_endpoint: str | None = Field(None, alias="S3_ENDPOINT")
    s3_region: str = Field("us-east-1", alias="S3_REGION")
    s3_access_key_id: str | None = Field(None, alias="S3_ACCESS_KEY_ID")
    s3_secret_access_key: str | None = Field(None, alias="S3_SECRET_ACCESS_KEY")
    s3_force_path_style: bool = Field(False, alias="S3_FORCE_PATH_STYLE")
    s3_prefix: str = Field("", alias="S3_PREFIX")

    salt: str | None = Field(None, alias="SALT")
    session_secret: str | None = Field(None, alias="SESSION_SECRET")
    encryption_key: str | None = Field(None, alias="ENCRYPTION_KEY")

    ingest_max_body_mb: int = Field(16, alias="INGEST_MAX_BODY_MB", ge=1)
    otlp_max_spans: int = Field(50_000, alias="OTLP_MAX_SPANS", ge=1)
    sweeper_grace_seconds: int = Field(60, alias="SWEEPER_GRACE_SECONDS", ge=1)
    flush_interval_ms: int = Field(500, alias="INGEST_FLUSH_INTERVAL_MS", ge=10)
    handoff_max_spans: int = Field(20_000, alias="INGEST_HANDOFF_SPANS", ge=0)
    small_flush_gap_ms: int = Field(0, alias="INGEST_SMALL_FLUSH_GAP_MS", ge=0, le=60_000)
    prompt_cache_ttl_seconds: int = Field(300, alias="PROMPT_CACHE_TTL_SECONDS", ge=0)
    run_worker: bool = Field(True, alias="OWLSCOPE_RUN_WORKER")
    otlp_grpc_port: int | None = Field(None, alias="OTLP_GRPC_PORT", ge=1, le=65535)
    media_max_mb: int = Field(1024, alias="MEDIA_MAX_MB", ge=1)
    media_url_expiry_seconds: int = Field(3600, alias="MEDIA_URL_EXPIRY_SECONDS", ge=60, le=7 * 86400)
    auth_disable_signup: bool = Field(False, alias="AUTH_DISABLE_SIGNUP")
    # Single sign-on (Langfuse's setting names): see docs/configuration.md and owlscope.auth.oidc.
    auth_custom_issuer: str | None = Field(None, alias="AUTH_CUSTOM_ISSUER")
    auth_custom_client_id: str | None = Field(None, alias="AUTH_CUSTOM_CLIENT_ID")
    auth_custom_client_secret: str | None = Field(None, alias="AUTH_CUSTOM_CLIENT_SECRET")
    auth_custom_name: str | None = Field(None, alias="AUTH_CUSTOM_NAME")
    auth_custom_scope: str | None = Field(None, alias="AUTH_CUSTOM_SCOPE")
    auth_google_client_id: str | None = Field(None, alias="AUTH_GOOGLE_CLIENT_ID")
    auth_google_client_secret: str | None = Field(None, alias="AUTH_GOOGLE_CLIENT_SECRET")
    auth_google_allowed_domains: str | None = Field(None, alias="AUTH_GOOGLE_ALLOWED_DOMAINS")
    auth_github_client_id: str | None = Field(None, alias="AUTH_GITHUB_CLIENT_ID")
    auth_github_client_secret: str | None = Field(None, alias="AUTH_GITHUB_CLIENT_SECRET")
    auth_azure_ad_client_id: str | None = Field(None, alias="AUTH_AZURE_AD_CLIENT_ID")
    auth_azure_ad_client_secret: str | None = Field(None, alias="AUTH_AZURE_AD_CLIENT_SECRET")
    auth_azure_ad_tenant_id: str | None = Field(None, alias="AUTH_AZURE_AD_TENANT_ID")
    auth_okta_client_id: str | None = Field(None, alias="AUTH_OKTA_CLIENT_ID")
    auth_okta_client_secret: str | None = Field(None, alias="AUTH_OKTA_CLIENT_SECRET")
    auth_okta_issuer: str | None = Field(None, alias="AUTH_OKTA_ISSUER")
    auth_keycloak_client_id: str | None = Field(None, alias="AUTH_KEYCLOAK_CLIENT_ID")
    auth_keycloak_client_secret: str | None = Field(None, alias="AUTH_KEYCLOAK_CLIENT_SECRET")
    auth_keycloak_issuer: str | None = Field(None, alias="AUTH_KEYCLOAK_ISSUER")
    auth_keycloak_name: str | None = Field(None, alias="AUTH_KEYCLOAK_NAME")
    auth_domains_with_sso_enforcement: str | None = Field(None, alias="AUTH_DOMAINS_WITH_SSO_ENFORCEMENT")
    auth_sso_default_org_id: str | None = Field(None, alias="AUTH_SSO_DEFAULT_ORG_ID")
    auth_sso_default_org_role: str = Field("VIEWER", alias="AUTH_SSO_DEFAULT_ORG_ROLE",
                                           pattern="^(OWNER|ADMIN|MEMBER|VIEWER)$")
    auth_sso_default_org_domains: str | None = Field(None, alias="AUTH_SSO_DEFAULT_ORG_DOMAINS")
    raw_events_retention_days: int = Field(7, alias="RAW_EVENTS_RETENTION_DAYS", ge=0)
    masking_detectors: str = Field("", alias="MASKING_DETECTORS")

    init_org_id: str | None = Field(None, alias="LANGFUSE_INIT_ORG_ID")
    init_org_name: str | None = Field(None, alias="LANGFUSE_INIT_ORG_NAME")
    init_project_id: str | None = Field(None, alias="LANGFUSE_INIT_PROJECT_ID")
    init_project_name: str | None = Field(None, alias="LANGFUSE_INIT_PROJECT_NAME")
    init_project_public_key: str | None = Field(None, alias="LANGFUSE_INIT_PROJECT_PUBLIC_KEY")
    init_project_secret_key: str | None = Field(None, alias="LANGFUSE_INIT_PROJECT_SECRET_KEY")
    init_user_email: str | None = Field(None, alias="LANGFUSE_INIT_USER_EMAIL")
    init_user_password: str | None = Field(None, alias="LANGFUSE_INIT_USER_PASSWORD")
    init_user_name: str | None = Field(None, alias="LANGFUSE_INIT_USER_NAME")

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, v: str | None) -> str | None:
        if v and not v.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("must start with sqlite:// or postgresql://")
        if v and v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://") :]
        return v

    @field_validator("clickhouse_url")
    @classmethod
    def _check_ch(cls, v: str | None) -> str | None:
        if v and not v.startswith(("chdb://", "http://", "https://", "clickhouse://")):
            raise ValueError("must start with http://, https:// or chdb://")
        return v

    @field_validator("redis_url")
    @classmethod
    def _check_redis(cls, v: str | None) -> str | None:
        if v and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis:// or rediss://")
        return v

    @field_validator("blob_url")
    @classmethod
    def _check_blob(cls, v: str | None) -> str | None:
        if v and not v.startswith(("file://", "s3://", "memory://")):
            raise ValueError("must start with file://, s3:// or memory://")
        return v

    @field_validator("masking_detectors")
    @classmethod
    def _check_masking(cls, v: str) -> str:
        from owlscope.privacy import parse_detectors

        parse_detectors(v)  # MaskingConfigError is a ValueError: reported with the fix below
        return v

    @field_validator("encryption_key")
    @classmethod
    def _check_key(cls, v: str | None) -> str | None:
        if v and not HEX64.match(v):
            raise ValueError("must be 64 hex characters (256 bits)")
        return v

    # ---- derived values -------------------------------------------------------------------
    @property
    def is_embedded(self) -> bool:
        return not (self.database_url or "").startswith("postgresql")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'owlscope.db'}"

    @property
    def olap_url(self) -> str:
        return self.clickhouse_url or f"chdb://{self.data_dir / 'olap'}"

    @property
    def uses_chdb(self) -> bool:
        return self.olap_url.startswith("chdb://")

    @property
    def blob_location(self) -> str:
        if self.blob_url:
            return self.blob_url
        if self.s3_bucket:
            return f"s3://{self.s3_bucket}"
        return f"file://{self.data_dir / 'blobs'}"

    @property
    def max_body_bytes(self) -> int:
        return self.ingest_max_body_mb * 1024 * 1024

    @property
    def media_max_bytes(self) -> int:
        return self.media_max_mb * 1024 * 1024

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


def _embedded_secrets(data_dir: Path) -> dict[str, str]:
    """Embedded mode creates its secrets once and keeps them in the data directory."""
    path = data_dir / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    data_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "SALT": secrets.token_urlsafe(32),
        "SESSION_SECRET": secrets.token_urlsafe(32),
        "ENCRYPTION_KEY": secrets.token_hex(32),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return values


def check_settings(settings: Settings) -> list[tuple[str, str, str]]:
    """Problems that span several settings (each: name, problem, fix)."""
    problems: list[tuple[str, str, str]] = []
    if not settings.is_embedded:
        for name, value in (("SALT", settings.salt), ("SESSION_SECRET", settings.session_secret)):
            if not value:
                problems.append((name, "is required when DATABASE_URL points at PostgreSQL", FIXES[name]))
    if settings.blob_location.startswith("s3://") and settings.blob_location == "s3://":
        problems.append(("S3_BUCKET", "is empty", FIXES["S3_BUCKET"]))
    pk, sk = settings.init_project_public_key, settings.init_project_secret_key
    if settings.init_org_id:
        if pk and not pk.startswith("pk-lf-"):
            problems.append(("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "must start with pk-lf-", FIXES[
                "LANGFUSE_INIT_PROJECT_PUBLIC_KEY"]))
        if sk and not sk.startswith("sk-lf-"):
            problems.append(("LANGFUSE_INIT_PROJECT_SECRET_KEY", "must start with sk-lf-", FIXES[
                "LANGFUSE_INIT_PROJECT_SECRET_KEY"]))
        if bool(pk) != bool(sk):
            problems.append(("LANGFUSE_INIT_PROJECT_SECRET_KEY", "public and secret key must be set together",
                             "set both LANGFUSE_INIT_PROJECT_PUBLIC_KEY and LANGFUSE_INIT_PROJECT_SECRET_KEY"))
    problems.extend(check_sso_settings(settings))
    return problems


# Each provider: (setting prefix, needs an issuer URL setting, extra required settings).
SSO_PROVIDERS = (
    ("AUTH_CUSTOM", True, ()), ("AUTH_GOOGLE", False, ()), ("AUTH_GITHUB", False, ()),
    ("AUTH_AZURE_AD", False, ("AUTH_AZURE_AD_TENANT_ID",)), ("AUTH_OKTA", True, ()), ("AUTH_KEYCLOAK", True, ()),
)


def _alias_value(settings: Settings, alias: str) -> Any:
    return getattr(settings, alias.lower())


def check_sso_settings(settings: Settings) -> list[tuple[str, str, str]]:
    """A provider is on when its client id is set; it then needs its secret, issuer URL, etc."""
    problems: list[tuple[str, str, str]] = []
    for prefix, needs_issuer, extra in SSO_PROVIDERS:
        client_id = _alias_value(settings, f"{prefix}_CLIENT_ID")
        required = [f"{prefix}_CLIENT_SECRET", *extra] + ([f"{prefix}_ISSUER"] if needs_issuer else [])
        if not client_id:
            others = [name for name in required if _alias_value(settings, name)]
            if others:
                problems.append((f"{prefix}_CLIENT_ID", f"is missing while {others[0]} is set",
                                 f"set {prefix}_CLIENT_ID to the client id registered with the provider, "
                                 f"or unset the other {prefix}_* settings"))
            continue
        for name in required:
            if not _alias_value(settings, name):
                problems.append((name, f"is required when {prefix}_CLIENT_ID is set",
                                 f"set {name} (see docs/configuration.md, Single sign-on)"))
        issuer = _alias_value(settings, f"{prefix}_ISSUER") if needs_issuer else None
        if issuer and not re.match(r"^https?://[^/\s]+", issuer):
            problems.append((f"{prefix}_ISSUER", f"must be the provider's issuer URL (got {issuer!r})",
                             f"set {prefix}_ISSUER=https://idp.example.com/... (the `issuer` of its "
                             "/.well-known/openid-configuration)"))
    for name in ("AUTH_DOMAINS_WITH_SSO_ENFORCEMENT", "AUTH_SSO_DEFAULT_ORG_DOMAINS", "AUTH_GOOGLE_ALLOWED_DOMAINS"):
        for domain in (_alias_value(settings, name) or "").split(","):
            if domain.strip() and not re.match(r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}$", domain.strip()):
                problems.append((name, f"{domain.strip()!r} is not a domain name",
                                 f"set {name} to comma-separated domains, e.g. acme.com,corp.example"))
    if settings.auth_domains_with_sso_enforcement and not any(
        _alias_value(settings, f"{prefix}_CLIENT_ID") for prefix, _, _ in SSO_PROVIDERS
    ):
        problems.append(("AUTH_DOMAINS_WITH_SSO_ENFORCEMENT", "is set but no single sign-on provider is configured",
                         "configure a provider (e.g. AUTH_CUSTOM_ISSUER/CLIENT_ID/CLIENT_SECRET) or unset it"))
    if settings.auth_sso_default_org_domains and not settings.auth_sso_default_org_id:
        problems.append(("AUTH_SSO_DEFAULT_ORG_ID", "is required when AUTH_SSO_DEFAULT_ORG_DOMAINS is set",
                         "set AUTH_SSO_DEFAULT_ORG_ID to the id of the organization new users join"))
    return problems


def load_settings(**overrides: Any) -> Settings:
    """Read and validate all settings; raise ConfigError listing every problem at once.

    `overrides` are field names (``data_dir=...``) and win over the environment.
    """
    problems: list[tuple[str, str, str]] = []
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for err in exc.errors():
            loc = str(err["loc"][0]) if err["loc"] else "?"
            field = Settings.model_fields.get(loc)
            name = field.alias if field and field.alias else loc
            msg = err["msg"].removeprefix("Value error, ")
            problems.append((name, f"{msg} (got {err.get('input')!r})", FIXES.get(name, f"correct {name}")))
        raise ConfigError(problems) from None
    problems.extend(check_settings(settings))
    if problems:
        raise ConfigError(problems)
    if settings.is_embedded:
        generated = _embedded_secrets(settings.data_dir)
        settings.salt = settings.salt or generated["SALT"]
        settings.session_secret = settings.session_secret or generated["SESSION_SECRET"]
        settings.encryption_key = settings.encryption_key or generated["ENCRYPTION_KEY"]
    return settings


def redact_url(url: str | None) -> str:
    """A connection URL fit for logs and reports: the credentials replaced by `***`."""
    if not url:
        return ""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
