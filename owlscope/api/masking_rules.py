"""A project's custom masking rules: /api/public/masking-rules (list, create, delete) and
/api/public/masking-rules/preview (a sample as it would be stored)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from owlscope.api.deps import ActorDep, AuthDep, ServicesDep, audit_action
from owlscope.api.schemas import MaskingPreview, MaskingRule, MaskingRules, Message, typed
from owlscope.pipeline.masking import add_rule, delete_rule, list_rules, preview, rule_summary

router = APIRouter(tags=["MaskingRules"])


class CreateMaskingRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: StrictStr = Field(description="regex or path")
    target: StrictStr = Field(description="a regular expression, or a path like metadata.customer.ssn")
    replacement: StrictStr = "<REDACTED>"


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample: StrictStr = Field(max_length=100_000)
    kind: StrictStr = ""
    target: StrictStr = ""
    replacement: StrictStr = "<REDACTED>"


@router.get("/api/public/masking-rules", **typed(MaskingRules))
def masking_rules_list(auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return {"data": list_rules(services.sessions, auth.project_id)}


@router.post("/api/public/masking-rules", **typed(MaskingRule))
def masking_rules_create(body: CreateMaskingRule, auth: AuthDep, services: ServicesDep,
                         actor: ActorDep) -> dict[str, Any]:
    rule = add_rule(services, auth.project_id, kind=body.kind, target=body.target, replacement=body.replacement)
    audit_action(services, auth, actor, "masking_rule.created", "masking_rule", rule["id"],
                 after=rule_summary(rule))
    return rule


@router.delete("/api/public/masking-rules/{ruleId}", **typed(Message))
def masking_rules_delete(ruleId: str, auth: AuthDep, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    before = next((r for r in list_rules(services.sessions, auth.project_id) if r["id"] == ruleId), None)
    delete_rule(services, auth.project_id, ruleId)
    audit_action(services, auth, actor, "masking_rule.deleted", "masking_rule", ruleId, before=rule_summary(before))
    return {"message": "Masking rule deleted"}


@router.post("/api/public/masking-rules/preview", **typed(MaskingPreview))
def masking_rules_preview(body: PreviewRequest, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return {"masked": preview(services, auth.project_id, body.sample, kind=body.kind, target=body.target,
                              replacement=body.replacement)}
