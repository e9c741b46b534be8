"""The masker of a project: the instance detectors (MASKING_DETECTORS) plus the project's custom
rules (table `masking_rules`), cached per project for 30 s in each process. Masking runs at accept,
before the blob of a request is written, so no store (blob, queue, OLAP) ever holds the original
text. A rule change applies at once in the process that made it, within 30 s in the others.

Text stored outside the event path is masked by its one write function, which takes the project's
masker (`masker_for`) as a required argument: dataset items (`datasets.items.upsert_item_in`, under
the API, the item form, CSV/JSON uploads, "add to dataset" and the playground), comments
(`tracing_config.comments.create_comment`) and media upload reports (`media.store.record_upload`).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import func, select

from owlscope.errors import InvalidRequest, NotFound
from owlscope.ingestion.masking import CustomRule, Masker, MaskingConfigError, parse_detectors
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.privacy_models import MaskingRule

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from owlscope.services import Services

MAX_RULES = 50
KINDS = ("regex", "path")


def _custom(kind: str, target: str, replacement: str) -> CustomRule:
    if kind not in KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}")
    try:
        return CustomRule(replacement=replacement, **({"pattern": target} if kind == "regex" else {"path": target}))
    except MaskingConfigError as exc:
        raise InvalidRequest(str(exc)) from None


def _to_api(rule: MaskingRule) -> dict[str, Any]:
    return {"id": rule.id, "kind": rule.kind, "target": rule.target, "replacement": rule.replacement,
            "position": rule.position, "createdAt": rule.created_at.isoformat()}


def list_rules(sessions: sessionmaker[Session], project_id: str) -> list[dict[str, Any]]:
    with sessions() as session:
        rows = session.scalars(select(MaskingRule).where(MaskingRule.project_id == project_id)
                               .order_by(MaskingRule.position, MaskingRule.created_at))
        return [_to_api(r) for r in rows]


def project_rules(services: Services, project_id: str) -> tuple[CustomRule, ...]:
    """The custom rules of a project, in order (stored rules were validated when saved)."""
    return tuple(_custom(r["kind"], r["target"], r["replacement"]) for r in list_rules(services.sessions, project_id))


def add_rule(services: Services, project_id: str, *, kind: str, target: str, replacement: str) -> dict[str, Any]:
    """Validate and store a rule; 400 with the reason when it cannot be used."""
    target = (target or "").strip()
    if not target:
        raise InvalidRequest("target must be a regular expression or a path like metadata.customer.ssn")
    _custom(kind, target, replacement)
    with write_transaction(services.sessions) as session:
        count, last = session.execute(select(func.count(), func.max(MaskingRule.position))
                                      .where(MaskingRule.project_id == project_id)).one()
        if count >= MAX_RULES:
            raise InvalidRequest(f"a project has at most {MAX_RULES} masking rules")
        rule = MaskingRule(id=str(uuid.uuid4()), project_id=project_id, kind=kind, target=target,
                           replacement=replacement, position=(last or 0) + 1)
        session.add(rule)
        session.flush()
        out = _to_api(rule)
    services.maskers.pop(project_id)
    return out


def rule_summary(rule: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the audit log keeps of a rule."""
    return None if rule is None else {k: rule.get(k) for k in ("kind", "target", "replacement")}


def delete_rule(services: Services, project_id: str, rule_id: str) -> None:
    with write_transaction(services.sessions) as session:
        rule = session.get(MaskingRule, rule_id)
        if rule is None or rule.project_id != project_id:
            raise NotFound(f"masking rule {rule_id!r} not found")
        session.delete(rule)
    services.maskers.pop(project_id)


def build_masker(services: Services, project_id: str, extra: tuple[CustomRule, ...] = ()) -> Masker | None:
    masker = Masker(parse_detectors(services.settings.masking_detectors), salt=services.settings.salt or "",
                    rules=project_rules(services, project_id) + extra)
    return masker if masker.active else None


def masker_for(services: Services, project_id: str) -> Masker | None:
    """The project's masker, or None when nothing is masked (cached per project)."""
    return services.maskers.get_or_load(project_id, lambda: build_masker(services, project_id))


def masked_upload(services: Services, data: bytes) -> bytes:
    """A CSV/JSON file uploaded for a dataset, as it may be kept until it is imported: the instance
    detectors applied to its UTF-8 text (their values never hold a delimiter or a quote, so the
    structure stays). The project's custom rules apply per field when the items are imported (a
    pattern run over the whole file could swallow delimiters)."""
    masker = Masker(parse_detectors(services.settings.masking_detectors), salt=services.settings.salt or "")
    if not masker.active:
        return data
    text = data.decode("utf-8")
    masked = masker.text(text)
    return data if masked is text else masked.encode("utf-8")


def masked_text(services: Services, project_id: str, text: str | None) -> str | None:
    """Free text stored outside the event path (a media upload's error report) as it may be stored."""
    masker = masker_for(services, project_id)
    return text if masker is None or not text else masker.text(text)


def preview(services: Services, project_id: str, sample: str, *, kind: str = "", target: str = "",
            replacement: str = "<REDACTED>") -> str:
    """`sample` as it would be stored: a JSON object is treated as an event body (paths apply to it,
    every string in it is scanned), anything else as text. A draft rule (kind, target) is applied
    too, so a rule can be tried before it is saved."""
    extra = (_custom(kind, target.strip(), replacement),) if kind and target.strip() else ()
    masker = build_masker(services, project_id, extra) or Masker()
    try:
        doc = orjson.loads(sample)
    except orjson.JSONDecodeError:
        return masker.text(sample)
    if isinstance(doc, dict):
        masker.apply_paths(doc)
    return orjson.dumps(masker.value(doc), option=orjson.OPT_INDENT_2).decode()
