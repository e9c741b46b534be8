"""Prompt webhooks: one URL per project, notified when a prompt version is created, updated
(labels) or deleted, as Langfuse's prompt webhooks are.

Delivery is an outbox: the prompt store calls `record_prompt_change` inside the transaction that
changes the prompt, which writes one `webhook_deliveries` row per event; after the commit the row is
enqueued. A delivery POSTs the JSON payload

    {"id", "timestamp", "type": "prompt-version", "apiVersion": "v1", "action", "prompt"}

signed as `x-langfuse-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the
webhook's secret. A 2xx response delivers it; anything else is retried with exponential backoff
(RETRY_BASE_SECONDS × 4^(attempt-1)) up to MAX_ATTEMPTS, then marked failed. Each attempt first
claims the row (moves `next_attempt_at` past a lease), so a job run twice (the periodic sweep
re-enqueues what a dead worker dropped) sends once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx
import orjson
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from owlscope.errors import InvalidRequest, NotFound
from owlscope.evals.crypto import decrypt, encrypt, settings_key
from owlscope.storage.oltp.base import new_id, utcnow
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.integration_models import PromptWebhook, WebhookDelivery

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.webhooks")
DELIVER_TASK = "webhook_deliver"
SWEEP_TASK = "webhook_sweep"
MAX_ATTEMPTS = 5
RETRY_BASE_SECONDS = 2.0
TIMEOUT_SECONDS = 10.0
LEASE_SECONDS = 60.0
ACTIONS = ("created", "updated", "deleted")
_CONTEXT = "prompt-webhook"


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The `x-langfuse-signature` value of a body."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def verify(body: bytes, header: str, secret: str) -> bool:
    """Whether a signature header matches the body (what a receiver checks)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts or not parts["t"].isdigit():
        return False
    return hmac.compare_digest(sign(body, secret, int(parts["t"])), f"t={parts['t']},v1={parts['v1']}")


def backoff_seconds(attempts: int) -> float:
    return RETRY_BASE_SECONDS * 4 ** max(0, attempts - 1)


# ---- configuration -------------------------------------------------------------------------------------
def _check_url(url: str) -> str:
    url = url.strip()
    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.netloc or len(url) > 2048:
        raise InvalidRequest("The webhook URL must be an http:// or https:// URL")
    return url


def _view(row: PromptWebhook) -> dict[str, Any]:
    return {"id": row.id, "url": row.url, "enabled": row.enabled, "secretHint": row.secret_hint,
            "createdAt": row.created_at, "updatedAt": row.updated_at}


def get_webhook(services: Services, project_id: str) -> dict[str, Any] | None:
    with services.sessions() as session:
        row = session.get(PromptWebhook, project_id)
        return _view(row) if row is not None else None


def configure_webhook(services: Services, project_id: str, url: str, *, enabled: bool = True,
                      new_secret: bool = False) -> tuple[dict[str, Any], str | None]:
    """Set the project's webhook URL; a new webhook (or `new_secret`) gets a fresh secret, returned
    once (it is stored encrypted and never shown again)."""
    url = _check_url(url)
    key = settings_key(services.settings)
    with write_transaction(services.sessions) as session:
        row = session.get(PromptWebhook, project_id)
        secret = None
        if row is None or new_secret:
            secret = "whsec_" + secrets.token_urlsafe(32)
        if row is None:
            row = PromptWebhook(project_id=project_id, id=new_id(), url=url, enabled=enabled,
                                secret=encrypt(key, secret, context=_CONTEXT), secret_hint="whsec_..." + secret[-4:])
            session.add(row)
        else:
            row.url, row.enabled = url, enabled
            if secret is not None:
                row.secret, row.secret_hint = encrypt(key, secret, context=_CONTEXT), "whsec_..." + secret[-4:]
        session.flush()
        return _view(row), secret


def delete_webhook(services: Services, project_id: str) -> None:
    with write_transaction(services.sessions) as session:
        row = session.get(PromptWebhook, project_id)
        if row is None:
            raise NotFound("No webhook configured")
        session.delete(row)


def list_deliveries(services: Services, project_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """The project's latest deliveries, newest first."""
    with services.sessions() as session:
        rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.project_id == project_id)
                               .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
                               .limit(limit)).all()
    out = []
    for r in rows:
        prompt = orjson.loads(r.payload).get("prompt") or {}
        out.append({"id": r.id, "action": r.action, "status": r.status, "attempts": r.attempts,
                    "statusCode": r.last_status_code, "error": r.last_error, "createdAt": r.created_at,
                    "updatedAt": r.updated_at, "nextAttemptAt": r.next_attempt_at if r.status == "pending" else None,
                    "prompt": f"{prompt.get('name')} v{prompt.get('version')}", "url": r.url})
    return out


# ---- the outbox ----------------------------------------------------------------------------------------
def record_prompt_change(session: Session, project_id: str, action: str,
                         prompts: list[dict[str, Any]]) -> list[str]:
    """Inside the prompt store's transaction: one pending delivery per changed version when the
    project has an enabled webhook. Returns the new delivery ids (to enqueue after the commit)."""
    hook = session.get(PromptWebhook, project_id)
    if hook is None or not hook.enabled or action not in ACTIONS:
        return []
    now = utcnow()
    ids = []
    for prompt in prompts:
        payload = {"id": str(uuid.uuid4()), "timestamp": now.isoformat().replace("+00:00", "Z"),
                   "type": "prompt-version", "apiVersion": "v1", "action": action, "prompt": prompt}
        row = WebhookDelivery(id=new_id(), project_id=project_id, webhook_id=hook.id, url=hook.url, action=action,
                              payload=orjson.dumps(payload, default=str).decode(), status="pending", attempts=0,
                              next_attempt_at=now, created_at=now, updated_at=now)
        session.add(row)
        ids.append(row.id)
    return ids


def prompt_listener(services: Services) -> Callable[[Session, str, str, list[dict[str, Any]]], Callable[[], None]]:
    """The prompt store's listener: record deliveries in the transaction, enqueue them after it."""

    def listen(session: Session, project_id: str, action: str, prompts: list[dict[str, Any]]) -> Callable[[], None]:
        ids = record_prompt_change(session, project_id, action, prompts)

        def after_commit() -> None:
            for delivery_id in ids:
                try:
                    services.queue.enqueue(DELIVER_TASK, delivery_id, check_full=False)
                except Exception:  # noqa: BLE001 - the row is durable; the sweep enqueues it
                    log.warning("could not enqueue webhook delivery %s; the sweep will", delivery_id)

        return after_commit

    return listen


# ---- delivery ------------------------------------------------------------------------------------------
def _claim(services: Services, delivery_id: str) -> WebhookDelivery | None:
    now = utcnow()
    with write_transaction(services.sessions) as session:
        claimed = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                   WebhookDelivery.next_attempt_at <= now)
            .values(next_attempt_at=now + timedelta(seconds=LEASE_SECONDS), updated_at=now)
        ).rowcount
        return session.get(WebhookDelivery, delivery_id) if claimed else None


def deliver(services: Services, delivery_id: str) -> str | None:
    """One attempt of a pending delivery whose time has come; returns its status after it (None when
    it was not due or someone else holds it)."""
    row = _claim(services, delivery_id)
    if row is None:
        return None
    with services.sessions() as session:
        hook = session.get(PromptWebhook, row.project_id)
    code: int | None = None
    error: str | None = None
    if hook is None or hook.id != row.webhook_id:
        error = "the webhook was deleted or replaced"
    else:
        body = row.payload.encode()
        try:
            secret = decrypt(settings_key(services.settings), hook.secret, context=_CONTEXT)
            resp = httpx.post(row.url, content=body, timeout=TIMEOUT_SECONDS, headers={
                "content-type": "application/json", "user-agent": "owlscope-webhooks",
                "x-langfuse-signature": sign(body, secret)})
            code = resp.status_code
            if not 200 <= code < 300:
                error = f"HTTP {code}: {resp.text[:200]}"
        except Exception as exc:  # noqa: BLE001 - a network failure is a failed attempt
            error = f"{type(exc).__name__}: {exc}"[:500]
    attempts = row.attempts + 1
    now = utcnow()
    if error is None:
        status, next_at = "delivered", None
    elif attempts >= MAX_ATTEMPTS or hook is None or hook.id != row.webhook_id:
        status, next_at = "failed", None
    else:
        status, next_at = "pending", now + timedelta(seconds=backoff_seconds(attempts))
    with write_transaction(services.sessions) as session:
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(
            status=status, attempts=attempts, last_status_code=code, last_error=error, next_attempt_at=next_at,
            updated_at=now))
    if status == "pending":
        services.queue.enqueue(DELIVER_TASK, delivery_id, delay=backoff_seconds(attempts), check_full=False)
    return status


def sweep(services: Services) -> int:
    """Enqueue pending deliveries that are due (a job lost with a worker, or never enqueued)."""
    now = datetime.now(UTC)
    with services.sessions() as session:
        ids = session.scalars(select(WebhookDelivery.id).where(
            WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now).limit(1000)).all()
    for delivery_id in ids:
        services.queue.enqueue(DELIVER_TASK, delivery_id, check_full=False)
    return len(ids)


def register(services: Services) -> None:
    services.queue.register(DELIVER_TASK, lambda delivery_id: deliver(services, delivery_id))

    services.queue.every_minute(SWEEP_TASK, lambda: sweep(services), what="webhook sweep")
