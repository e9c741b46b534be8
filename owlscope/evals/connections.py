"""LLM connections per project (provider endpoint + encrypted key) and the default evaluation model.

A connection is upserted on its `provider` name (unique in the project). Keys and extra header
values are encrypted with AES-256-GCM under ENCRYPTION_KEY and leave the server only masked.
Adapters: `openai` (any OpenAI-compatible endpoint: OpenAI, LiteLLM, vLLM, Ollama...), `azure`
(Azure OpenAI: base URL of the deployments, model = deployment name) and `anthropic`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from owlscope.config import Settings
from owlscope.evals import crypto
from owlscope.evals.errors import EvalInvalid, EvalNotFound
from owlscope.evals.judge import ADAPTERS, DEFAULT_MODELS, JudgeError, JudgeModel, ping
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.eval_models import EvalDefaultModel, EvalTemplate, Evaluator, LlmConnection
from owlscope.tracing_config.common import parse_input
from owlscope.wire import Page, PageRequest, iso

KNOWN_ADAPTERS = ("anthropic", "openai", "azure", "bedrock", "google-vertex-ai", "google-ai-studio")
NOT_FOUND = "LLM connection not found within authorized project"


class UpsertConnectionRequest(BaseModel):
    """`UpsertLlmConnectionRequest` of the public API."""

    model_config = ConfigDict(extra="ignore")

    provider: str
    adapter: str
    secretKey: str
    baseURL: str | None = None
    customModels: list[str] | None = None
    withDefaultModels: bool | None = None
    extraHeaders: dict[str, str] | None = None
    config: dict[str, Any] | None = None


def connection_shape(row: LlmConnection) -> dict[str, Any]:
    """The public `LlmConnection` (secrets excluded)."""
    return {
        "id": row.id, "provider": row.provider, "adapter": row.adapter,
        "displaySecretKey": row.display_secret_key, "baseURL": row.base_url,
        "customModels": list(row.custom_models or []), "withDefaultModels": row.with_default_models,
        "extraHeaderKeys": list(row.extra_header_keys or []), "config": row.config,
        "createdAt": iso(row.created_at), "updatedAt": iso(row.updated_at),
    }


def audit_summary(shape: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the audit log keeps of a connection (its shape without timestamps; the key masked)."""
    if shape is None:
        return None
    keys = ("provider", "adapter", "baseURL", "customModels", "displaySecretKey", "extraHeaderKeys")
    return {k: shape.get(k) for k in keys}


def _check(req: UpsertConnectionRequest) -> None:
    if not req.provider.strip() or len(req.provider) > 255:
        raise EvalInvalid("provider must be 1 to 255 characters")
    if req.adapter not in KNOWN_ADAPTERS:
        raise EvalInvalid(f"adapter must be one of {', '.join(KNOWN_ADAPTERS)}")
    if req.adapter not in ADAPTERS:
        raise EvalInvalid(f"adapter {req.adapter!r} is not supported by this server; use one of "
                          f"{', '.join(ADAPTERS)} (any OpenAI-compatible endpoint works with 'openai')")
    if not req.secretKey.strip():
        raise EvalInvalid("secretKey must not be empty")
    if req.baseURL and not req.baseURL.startswith(("http://", "https://")):
        raise EvalInvalid("baseURL must start with http:// or https://")
    if req.adapter == "azure" and not req.baseURL:
        raise EvalInvalid("an azure connection needs baseURL (https://<resource>.openai.azure.com/openai/deployments)")
    if req.config is not None:
        if req.adapter != "openai" or set(req.config) - {"useResponsesApi"} or \
                not isinstance(req.config.get("useResponsesApi", False), bool):
            raise EvalInvalid("config is only accepted for the openai adapter, as {\"useResponsesApi\": <boolean>}")
    if any(not m.strip() for m in req.customModels or []):
        raise EvalInvalid("customModels must not contain empty names")


def upsert_connection(sessions: sessionmaker[Session], settings: Settings, project_id: str,
                      data: UpsertConnectionRequest | dict[str, Any]) -> dict[str, Any]:
    """Create or update (by provider name) a connection; returns the public `LlmConnection`."""
    req = parse_input(UpsertConnectionRequest, data)
    _check(req)
    key = crypto.settings_key(settings)
    headers = dict(req.extraHeaders or {})
    values: dict[str, Any] = {
        "adapter": req.adapter,
        "secret_key": crypto.encrypt(key, req.secretKey, context=project_id),
        "display_secret_key": crypto.mask_secret(req.secretKey),
        "base_url": req.baseURL or None,
        "custom_models": list(dict.fromkeys(m.strip() for m in req.customModels or [])),
        "with_default_models": True if req.withDefaultModels is None else req.withDefaultModels,
        "extra_headers": crypto.encrypt(key, json.dumps(headers), context=project_id) if headers else None,
        "extra_header_keys": sorted(headers),
        "config": req.config,
    }
    with write_transaction(sessions) as s:
        row = s.scalars(select(LlmConnection).where(
            LlmConnection.project_id == project_id, LlmConnection.provider == req.provider)).first()
        if row is None:
            row = LlmConnection(project_id=project_id, provider=req.provider, **values)
            s.add(row)
        else:
            for k, v in values.items():
                setattr(row, k, v)
        s.flush()
        # A fixed connection unblocks the evaluators it paused.
        _unpause(s, project_id, ("llm_authentication_failed", "llm_quota_exceeded", "llm_connection_missing"))
        return connection_shape(row)


def list_connections(sessions: sessionmaker[Session], project_id: str, page: PageRequest) -> Page:
    with sessions() as s:
        total = s.scalar(select(func.count()).select_from(LlmConnection).where(
            LlmConnection.project_id == project_id)) or 0
        rows = s.scalars(select(LlmConnection).where(LlmConnection.project_id == project_id)
                         .order_by(LlmConnection.provider).offset(page.offset).limit(page.limit))
        return Page([connection_shape(r) for r in rows], page.page, page.limit, total)


def delete_connection(sessions: sessionmaker[Session], project_id: str, connection_id: str) -> None:
    """Delete a connection; evaluators that depend on it are paused (and say why)."""
    with write_transaction(sessions) as s:
        row = s.scalars(select(LlmConnection).where(
            LlmConnection.project_id == project_id, LlmConnection.id == connection_id)).first()
        if row is None:
            raise EvalNotFound(NOT_FOUND)
        default = s.scalars(select(EvalDefaultModel).where(EvalDefaultModel.project_id == project_id)).first()
        uses_default = default is not None and default.connection_id == row.id
        families = set(s.scalars(select(EvalTemplate.family_id).where(
            EvalTemplate.project_id == project_id, EvalTemplate.provider == row.provider)))
        if uses_default:
            families |= set(s.scalars(select(EvalTemplate.family_id).where(
                EvalTemplate.project_id == project_id, EvalTemplate.provider.is_(None))))
        provider = row.provider
        s.delete(row)
        s.flush()
        if families:
            s.execute(update(Evaluator).where(
                Evaluator.project_id == project_id, Evaluator.template_family_id.in_(families),
            ).values(paused_reason="llm_connection_missing",
                     paused_message=f"The LLM connection {provider!r} this evaluator uses was deleted."))


def get_connection(session: Session, project_id: str, *, provider: str | None = None,
                   connection_id: str | None = None) -> LlmConnection | None:
    q = select(LlmConnection).where(LlmConnection.project_id == project_id)
    q = q.where(LlmConnection.provider == provider) if provider is not None else q.where(
        LlmConnection.id == connection_id)
    return session.scalars(q.limit(1)).first()


def judge_model(settings: Settings, row: LlmConnection, model: str, params: dict[str, Any] | None = None) -> JudgeModel:
    """A connection, decrypted, as a callable model."""
    key = crypto.settings_key(settings)
    headers = json.loads(crypto.decrypt(key, row.extra_headers, context=row.project_id)) if row.extra_headers else {}
    return JudgeModel(provider=row.provider, adapter=row.adapter,
                      api_key=crypto.decrypt(key, row.secret_key, context=row.project_id), model=model,
                      base_url=row.base_url, headers=headers, params=dict(params or {}), config=row.config)


# ---- default evaluation model -------------------------------------------------------------------------
def set_default_model(sessions: sessionmaker[Session], project_id: str, *, provider: str, model: str,
                      model_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Make `provider`/`model` the model of templates that name none."""
    if not model or not model.strip():
        raise EvalInvalid("model must not be empty")
    with write_transaction(sessions) as s:
        conn = get_connection(s, project_id, provider=provider)
        if conn is None:
            raise EvalInvalid(f"no LLM connection named {provider!r} in this project")
        row = s.scalars(select(EvalDefaultModel).where(EvalDefaultModel.project_id == project_id)).first()
        if row is None:
            row = EvalDefaultModel(project_id=project_id, connection_id=conn.id, model=model.strip(),
                                   model_params=model_params)
            s.add(row)
        else:
            row.connection_id, row.model, row.model_params = conn.id, model.strip(), model_params
        _unpause(s, project_id, ("llm_connection_missing",))
        return {"provider": conn.provider, "adapter": conn.adapter, "model": row.model, "modelParams": row.model_params}


def get_default_model(sessions: sessionmaker[Session], project_id: str) -> dict[str, Any] | None:
    with sessions() as s:
        row = s.scalars(select(EvalDefaultModel).where(EvalDefaultModel.project_id == project_id)).first()
        if row is None:
            return None
        conn = s.get(LlmConnection, row.connection_id)
        return {"provider": conn.provider if conn else None, "adapter": conn.adapter if conn else None,
                "model": row.model, "modelParams": row.model_params}




@dataclass(frozen=True)
class Resolved:
    model: JudgeModel | None
    problem: str | None = None  # why no model could be resolved


def resolve_model(session: Session, settings: Settings, project_id: str, template: EvalTemplate) -> Resolved:
    """The model a template runs on: its own provider/model, else the project's default model."""
    if template.provider:
        conn = get_connection(session, project_id, provider=template.provider)
        if conn is None:
            return Resolved(None, f"the template names LLM connection {template.provider!r}, which does not exist")
        return Resolved(judge_model(settings, conn, template.model or "", template.model_params))
    default = session.scalars(select(EvalDefaultModel).where(EvalDefaultModel.project_id == project_id)).first()
    if default is None:
        return Resolved(None, "the template has no model and the project has no default evaluation model")
    conn = session.get(LlmConnection, default.connection_id)
    if conn is None:
        return Resolved(None, "the default evaluation model's LLM connection was deleted")
    return Resolved(judge_model(settings, conn, default.model, default.model_params))


def _unpause(session: Session, project_id: str, reasons: tuple[str, ...]) -> None:
    session.execute(update(Evaluator).where(
        Evaluator.project_id == project_id, Evaluator.paused_reason.in_(reasons),
    ).values(paused_reason=None, paused_message=None, failure_streak=0))


# ---- test connection ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConnectionTest:
    ok: bool
    message: str
    model: str
    latency_ms: int


def test_connection(*, adapter: str, secret_key: str, model: str | None = None, base_url: str | None = None,
                    extra_headers: dict[str, str] | None = None, provider: str = "test") -> ConnectionTest:
    """Make a tiny real call with these (possibly unsaved) settings and report what happened."""
    if adapter not in ADAPTERS:
        return ConnectionTest(False, f"adapter {adapter!r} is not supported", model or "", 0)
    use = model or DEFAULT_MODELS[adapter]
    jm = JudgeModel(provider=provider, adapter=adapter, api_key=secret_key, model=use, base_url=base_url or None,
                    headers=dict(extra_headers or {}))
    started = time.monotonic()
    try:
        text = ping(jm)
    except JudgeError as exc:
        return ConnectionTest(False, str(exc), use, int((time.monotonic() - started) * 1000))
    ms = int((time.monotonic() - started) * 1000)
    return ConnectionTest(True, f"{use} answered in {ms} ms: {text[:60]!r}", use, ms)


test_connection.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def test_saved_connection(sessions: sessionmaker[Session], settings: Settings, project_id: str, connection_id: str,
                          *, model: str | None = None) -> ConnectionTest:
    """Test a stored connection (the UI's "test connection" button) with `model`, else its first
    custom model, else the adapter's usual small model."""
    with sessions() as s:
        row = get_connection(s, project_id, connection_id=connection_id)
        if row is None:
            raise EvalNotFound(NOT_FOUND)
        use = model or (row.custom_models[0] if row.custom_models else DEFAULT_MODELS.get(row.adapter, ""))
        jm = judge_model(settings, row, use)
    return test_connection(adapter=jm.adapter, secret_key=jm.api_key, model=use, base_url=jm.base_url,
                           extra_headers=jm.headers, provider=jm.provider)


test_saved_connection.__test__ = False  # type: ignore[attr-defined]
