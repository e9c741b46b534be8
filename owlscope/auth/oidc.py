"""Single sign-on with OpenID Connect providers (and GitHub, which speaks plain OAuth 2).

The flow is the authorization code flow with PKCE (S256), built on authlib's OAuth 2 client:

1. `begin()` makes the provider's authorization URL and the values the browser session keeps
   until the provider sends the user back (state, nonce, PKCE verifier).
2. `complete()` exchanges the code for tokens, validates the ID token (`validate_id_token`:
   signature against the provider's published keys, issuer, audience, expiry, nonce) and
   returns the verified identity. An e-mail address counts only when the provider vouches for
   it (`email_verified`), since accounts are linked by e-mail.

Endpoints come from the provider's discovery document (`<issuer>/.well-known/openid-configuration`),
read once and kept for an hour. Which providers exist is decided by settings (`providers()`).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from authlib.common.security import generate_token
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from owlscope.errors import Forbidden, InvalidRequest

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import OAuth2Client

# Asymmetric algorithms only: "none" (unsigned) and shared-secret HMAC tokens are refused.
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
CLOCK_LEEWAY_SECONDS = 60
METADATA_TTL_SECONDS = 3600
HTTP_TIMEOUT_SECONDS = 10.0
GITHUB_API = "https://api.github.com"


class SignInFailed(InvalidRequest):
    """The provider's answer cannot sign anyone in (bad token, unverified e-mail, ...)."""


@dataclass(frozen=True)
class Provider:
    id: str  # URL segment: /auth/sso/<id>, /api/auth/callback/<id>
    name: str  # shown on the button: "Sign in with <name>"
    client_id: str
    client_secret: str
    issuer: str | None  # None for GitHub (OAuth 2 without OpenID Connect)
    scope: str = "openid email profile"
    allowed_domains: tuple[str, ...] = ()  # Google's AUTH_GOOGLE_ALLOWED_DOMAINS (the `hd` claim)
    authorize_url: str | None = None  # only for non-OIDC providers
    token_url: str | None = None
    token_auth: str = "client_secret_basic"  # how the client authenticates at the token endpoint

    @property
    def is_oidc(self) -> bool:
        return self.issuer is not None


@dataclass(frozen=True)
class Identity:
    provider: str
    subject: str
    email: str
    name: str | None


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in (value or "").split(",") if part.strip())


def providers(settings: Any) -> list[Provider]:
    """The configured providers, in the order their buttons are shown."""
    found: list[Provider] = []
    if settings.auth_google_client_id:
        found.append(Provider("google", "Google", settings.auth_google_client_id,
                              settings.auth_google_client_secret or "", "https://accounts.google.com",
                              allowed_domains=_split(settings.auth_google_allowed_domains)))
    if settings.auth_github_client_id:
        found.append(Provider("github", "GitHub", settings.auth_github_client_id,
                              settings.auth_github_client_secret or "", None, scope="read:user user:email",
                              authorize_url="https://github.com/login/oauth/authorize",
                              token_url="https://github.com/login/oauth/access_token",
                              token_auth="client_secret_post"))
    if settings.auth_azure_ad_client_id:
        found.append(Provider("azure-ad", "Microsoft", settings.auth_azure_ad_client_id,
                              settings.auth_azure_ad_client_secret or "",
                              f"https://login.microsoftonline.com/{settings.auth_azure_ad_tenant_id}/v2.0"))
    if settings.auth_okta_client_id:
        found.append(Provider("okta", "Okta", settings.auth_okta_client_id, settings.auth_okta_client_secret or "",
                              (settings.auth_okta_issuer or "").rstrip("/")))
    if settings.auth_keycloak_client_id:
        found.append(Provider("keycloak", settings.auth_keycloak_name or "Keycloak",
                              settings.auth_keycloak_client_id, settings.auth_keycloak_client_secret or "",
                              (settings.auth_keycloak_issuer or "").rstrip("/")))
    if settings.auth_custom_client_id:
        found.append(Provider("custom", settings.auth_custom_name or "SSO", settings.auth_custom_client_id,
                              settings.auth_custom_client_secret or "", (settings.auth_custom_issuer or "").rstrip("/"),
                              scope=settings.auth_custom_scope or "openid email profile"))
    return found


def find_provider(settings: Any, provider_id: str) -> Provider:
    for provider in providers(settings):
        if provider.id == provider_id:
            return provider
    raise InvalidRequest(f"No sign-in provider named {provider_id!r} is configured")


def enforced_domain(settings: Any, email: str) -> str | None:
    """The e-mail's domain when AUTH_DOMAINS_WITH_SSO_ENFORCEMENT lists it (password sign-in refused)."""
    domain = (email or "").rsplit("@", 1)[-1].strip().lower() if "@" in (email or "") else ""
    return domain if domain and domain in _split(settings.auth_domains_with_sso_enforcement) else None


# ---- discovery ----------------------------------------------------------------------------------
_metadata: dict[str, tuple[float, dict[str, Any], dict[str, Any]]] = {}
_metadata_lock = threading.Lock()


def _discover(issuer: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The provider's discovery document and its published keys (kept for an hour)."""
    with _metadata_lock:
        cached = _metadata.get(issuer)
    if cached and time.monotonic() - cached[0] < METADATA_TTL_SECONDS:
        return cached[1], cached[2]
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS) as http:
            meta = http.get(issuer + "/.well-known/openid-configuration").raise_for_status().json()
            keys = http.get(meta["jwks_uri"]).raise_for_status().json()
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise SignInFailed(f"The sign-in provider at {issuer} cannot be reached ({type(exc).__name__})") from None
    if str(meta.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
        raise SignInFailed(f"The provider's discovery document names another issuer ({meta.get('issuer')!r})")
    with _metadata_lock:
        _metadata[issuer] = (time.monotonic(), meta, keys)
    return meta, keys


# ---- ID tokens ----------------------------------------------------------------------------------
def validate_id_token(
    id_token: str, *, keys: dict[str, Any], issuer: str, client_id: str, nonce: str, now: int | None = None,
) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience, expiry and nonce check out.

    Raises SignInFailed otherwise. `keys` is the provider's JWKS document.
    """
    try:
        token = jwt.decode(id_token, KeySet.import_key_set(keys), algorithms=ID_TOKEN_ALGORITHMS)
    except (JoseError, ValueError, TypeError) as exc:
        raise SignInFailed(f"The identity token is not validly signed ({type(exc).__name__})") from None
    registry = jwt.JWTClaimsRegistry(
        now=now, leeway=CLOCK_LEEWAY_SECONDS,
        iss={"essential": True, "values": [issuer, issuer + "/"]},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(token.claims)
    except JoseError as exc:
        raise SignInFailed(f"The identity token was refused: {exc.description or exc.error}") from None
    audience = token.claims.get("aud")
    if isinstance(audience, list) and len(audience) > 1 and token.claims.get("azp") != client_id:
        raise SignInFailed("The identity token was refused: it was issued to another client (azp)")
    return dict(token.claims)


def _verified(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


# ---- the flow -----------------------------------------------------------------------------------
def _client(provider: Provider, redirect_uri: str) -> OAuth2Client:
    # authlib's httpx client loads with the first sign-in through a provider, not with the server
    from authlib.integrations.httpx_client import OAuth2Client

    return OAuth2Client(
        client_id=provider.client_id, client_secret=provider.client_secret, scope=provider.scope,
        redirect_uri=redirect_uri, code_challenge_method="S256", timeout=HTTP_TIMEOUT_SECONDS,
        token_endpoint_auth_method=provider.token_auth,
    )


def begin(provider: Provider, redirect_uri: str) -> tuple[str, dict[str, str]]:
    """The URL to send the browser to, and what the session must keep until the callback."""
    if provider.is_oidc:
        meta, _ = _discover(provider.issuer or "")
        endpoint = meta["authorization_endpoint"]
    else:
        endpoint = provider.authorize_url or ""
    pending = {"provider": provider.id, "state": generate_token(32), "nonce": generate_token(32),
               "verifier": generate_token(64)}
    with _client(provider, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            endpoint, state=pending["state"], code_verifier=pending["verifier"],
            **({"nonce": pending["nonce"]} if provider.is_oidc else {}),
        )
    return url, pending


def complete(provider: Provider, redirect_uri: str, pending: dict[str, str], params: dict[str, str]) -> Identity:
    """The verified identity from the provider's redirect back (query `params`)."""
    if params.get("error"):
        raise SignInFailed(f"The sign-in provider refused: {params.get('error_description') or params['error']}")
    if not pending or pending.get("provider") != provider.id or not secrets.compare_digest(
        str(params.get("state", "")), str(pending.get("state", ""))
    ):
        raise SignInFailed("This sign-in attempt has expired or was started elsewhere; please try again")
    code = params.get("code")
    if not code:
        raise SignInFailed("The sign-in provider sent no authorization code")
    if not provider.is_oidc:
        return _complete_github(provider, redirect_uri, pending, code)
    meta, keys = _discover(provider.issuer or "")
    with _client(provider, redirect_uri) as client:
        try:
            token = client.fetch_token(meta["token_endpoint"], code=code, code_verifier=pending["verifier"])
        except Exception as exc:  # authlib raises OAuthError and httpx errors
            raise SignInFailed(f"The code could not be exchanged for tokens ({exc})") from None
        if not token.get("id_token"):
            raise SignInFailed("The sign-in provider sent no identity token (is the `openid` scope allowed?)")
        claims = validate_id_token(token["id_token"], keys=keys, issuer=provider.issuer or "",
                                   client_id=provider.client_id, nonce=pending["nonce"])
        if not claims.get("email") and meta.get("userinfo_endpoint"):
            info = client.get(meta["userinfo_endpoint"]).json()
            if info.get("sub") == claims["sub"]:
                claims.update({k: v for k, v in info.items() if k in ("email", "email_verified", "name")})
    email = str(claims.get("email") or "").strip().lower()
    if not email:
        raise SignInFailed(f"{provider.name} did not share an e-mail address (is the `email` scope allowed?)")
    if not (_verified(claims.get("email_verified")) or _verified(claims.get("xms_edov"))):
        raise Forbidden(f"{provider.name} has not verified the e-mail address {email}")
    if provider.allowed_domains and str(claims.get("hd", "")).lower() not in provider.allowed_domains:
        raise Forbidden(f"{email} is not in a domain allowed to sign in with {provider.name}")
    return Identity(provider.id, str(claims["sub"]), email, (claims.get("name") or None))


def _complete_github(provider: Provider, redirect_uri: str, pending: dict[str, str], code: str) -> Identity:
    """GitHub has no ID token: the verified primary address comes from its API."""
    with _client(provider, redirect_uri) as client:
        try:
            client.fetch_token(provider.token_url or "", code=code, code_verifier=pending["verifier"],
                               headers={"Accept": "application/json"})
            profile = client.get(f"{GITHUB_API}/user").raise_for_status().json()
            emails = client.get(f"{GITHUB_API}/user/emails").raise_for_status().json()
        except Exception as exc:
            raise SignInFailed(f"GitHub sign-in failed ({exc})") from None
    chosen = next((e for e in emails if e.get("primary") and e.get("verified")), None)
    if chosen is None:
        raise Forbidden("Your GitHub account has no verified primary e-mail address")
    return Identity(provider.id, str(profile.get("id")), str(chosen["email"]).lower(), profile.get("name") or None)
