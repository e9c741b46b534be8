"""Single sign-on settings are checked at startup with every other setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from owlscope.auth.oidc import enforced_domain, providers
from owlscope.config import ConfigError, load_settings


def test_no_provider_by_default(tmp_path: Path) -> None:
    assert providers(load_settings(data_dir=tmp_path)) == []


def test_every_sso_problem_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_CUSTOM_CLIENT_ID", "client")  # no secret, no issuer
    monkeypatch.setenv("AUTH_OKTA_CLIENT_ID", "okta")
    monkeypatch.setenv("AUTH_OKTA_CLIENT_SECRET", "s")
    monkeypatch.setenv("AUTH_OKTA_ISSUER", "okta.example.com")  # not a URL
    monkeypatch.setenv("AUTH_AZURE_AD_CLIENT_ID", "azure")
    monkeypatch.setenv("AUTH_AZURE_AD_CLIENT_SECRET", "s")  # no tenant
    monkeypatch.setenv("AUTH_KEYCLOAK_ISSUER", "https://kc.example.com/realms/x")  # no client id
    monkeypatch.setenv("AUTH_DOMAINS_WITH_SSO_ENFORCEMENT", "acme.com, not a domain")
    monkeypatch.setenv("AUTH_SSO_DEFAULT_ORG_ROLE", "BOSS")
    with pytest.raises(ConfigError) as exc:
        load_settings(data_dir=tmp_path)
    names = [name for name, _, _ in exc.value.problems]
    assert names == ["AUTH_SSO_DEFAULT_ORG_ROLE"]  # type errors come first, on their own
    monkeypatch.delenv("AUTH_SSO_DEFAULT_ORG_ROLE")
    with pytest.raises(ConfigError) as exc:
        load_settings(data_dir=tmp_path)
    problems = {(name, problem.split(" (")[0]) for name, problem, _ in exc.value.problems}
    assert problems == {
        ("AUTH_CUSTOM_CLIENT_SECRET", "is required when AUTH_CUSTOM_CLIENT_ID is set"),
        ("AUTH_CUSTOM_ISSUER", "is required when AUTH_CUSTOM_CLIENT_ID is set"),
        ("AUTH_OKTA_ISSUER", "must be the provider's issuer URL"),
        ("AUTH_AZURE_AD_TENANT_ID", "is required when AUTH_AZURE_AD_CLIENT_ID is set"),
        ("AUTH_KEYCLOAK_CLIENT_ID", "is missing while AUTH_KEYCLOAK_ISSUER is set"),
        ("AUTH_DOMAINS_WITH_SSO_ENFORCEMENT", "'not a domain' is not a domain name"),
    }
    assert all(fix for _, _, fix in exc.value.problems)


def test_enforcement_needs_a_provider(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no single sign-on provider"):
        load_settings(data_dir=tmp_path, auth_domains_with_sso_enforcement="acme.com")


def test_presets_make_providers_with_their_issuers(tmp_path: Path) -> None:
    s = load_settings(
        data_dir=tmp_path,
        auth_google_client_id="g", auth_google_client_secret="s", auth_google_allowed_domains="Acme.com",
        auth_github_client_id="gh", auth_github_client_secret="s",
        auth_azure_ad_client_id="a", auth_azure_ad_client_secret="s", auth_azure_ad_tenant_id="tenant-1",
        auth_okta_client_id="o", auth_okta_client_secret="s", auth_okta_issuer="https://acme.okta.com/",
        auth_keycloak_client_id="k", auth_keycloak_client_secret="s",
        auth_keycloak_issuer="https://kc.example.com/realms/acme",
        auth_custom_client_id="c", auth_custom_client_secret="s", auth_custom_issuer="https://id.acme.com",
        auth_custom_name="Acme ID", auth_domains_with_sso_enforcement="acme.com",
    )
    found = {p.id: p for p in providers(s)}
    assert list(found) == ["google", "github", "azure-ad", "okta", "keycloak", "custom"]
    assert found["google"].issuer == "https://accounts.google.com" and found["google"].allowed_domains == ("acme.com",)
    assert found["github"].issuer is None and not found["github"].is_oidc
    assert found["azure-ad"].issuer == "https://login.microsoftonline.com/tenant-1/v2.0"
    assert found["okta"].issuer == "https://acme.okta.com"
    assert found["custom"].name == "Acme ID" and found["custom"].scope == "openid email profile"
    assert enforced_domain(s, "Bob@ACME.com") == "acme.com"
    assert enforced_domain(s, "bob@sub.acme.com") is None and enforced_domain(s, "nobody") is None
