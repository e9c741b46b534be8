"""The unstable public evaluation API (`/api/public/unstable/evaluators`, `.../evaluation-rules`) as
domain functions: request bodies in, OpenAPI shapes out.

Vocabulary: the API's *evaluator* is our template family (prompt, output definition, model config;
versioned), and its *evaluation rule* is our evaluator (target, filter, sampling, mapping).
Rules with target `observation` or `experiment` (dataset run items, filtered by `datasetId`) are
created and managed here; trace-level rules (made in the UI, with delay, time scope and
named-observation mappings) are returned in the read-only legacy shape.
Not supported by this server: `code` evaluators, several evaluators on one rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from owlscope.evals import evaluators as evs
from owlscope.evals import templates
from owlscope.evals.connections import get_connection
from owlscope.evals.errors import EvalConflict, EvalInvalid, EvalNotFound, PreflightFailed, Unsupported
from owlscope.evals.variables import extract_variables
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.eval_models import EvalDefaultModel, EvalTemplate, Evaluator
from owlscope.wire import PageRequest, iso

if TYPE_CHECKING:
    from owlscope.services import Services

MAX_ACTIVE_RULES = 500
API_RULE_DELAY_SECONDS = 10
RULE_FIELDS = {"name", "evaluators", "evaluator", "target", "enabled", "sampling", "filter", "mapping"}


# ---- evaluators (template families) ----------------------------------------------------------------------
def _read_mapping(items: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if items is None:
        return None
    return [{"variable": m["variable"], "source": m.get("source"), "jsonPath": m.get("jsonPath")} for m in items]


def evaluator_shape(row: EvalTemplate, rule_count: int) -> dict[str, Any]:
    defn = row.output_definition
    return {
        "id": row.family_id, "name": row.name, "version": row.version, "type": row.type,
        "variables": list(row.variables), "mapping": _read_mapping(row.default_mapping),
        "evaluationRuleCount": rule_count, "createdAt": iso(row.created_at), "updatedAt": iso(row.updated_at),
        "prompt": row.prompt, "outputDefinition": {"dataType": defn["dataType"], "reasoning": defn["reasoning"],
                                                   "score": defn["score"]},
        "modelConfig": {"provider": row.provider, "model": row.model} if row.provider else None,
    }


def _preflight(services: Services, project_id: str, name: str, provider: str | None, model: str | None) -> None:
    with services.sessions() as s:
        if provider:
            conn = get_connection(s, project_id, provider=provider)
            if conn is None:
                raise PreflightFailed(f"evaluator {name!r}: no LLM connection with provider {provider!r} in this "
                                      "project (see GET /api/public/llm-connections)",
                                      details={"evaluatorName": name, "provider": provider, "model": model})
            if not conn.with_default_models and model not in (conn.custom_models or []):
                raise PreflightFailed(f"evaluator {name!r}: model {model!r} is not offered by connection {provider!r}",
                                      details={"evaluatorName": name, "provider": provider, "model": model})
        elif s.scalar(select(EvalDefaultModel.id).where(EvalDefaultModel.project_id == project_id)) is None:
            raise PreflightFailed(f"evaluator {name!r} has no modelConfig and the project has no default evaluation "
                                  "model: send modelConfig, or set a default evaluation model",
                                  details={"evaluatorName": name})


def create_evaluator(services: Services, project_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise EvalInvalid("the request body must be a JSON object")
    kind = body.get("type") or "llm_as_judge"
    if kind == "code":
        raise Unsupported("code evaluators are not supported by this server; create an llm_as_judge evaluator")
    if kind != "llm_as_judge":
        raise EvalInvalid("type must be llm_as_judge or code")
    name, prompt = body.get("name"), body.get("prompt")
    if not isinstance(name, str) or not isinstance(prompt, str):
        raise EvalInvalid("name and prompt are required strings",
                          details={"issues": [{"code": "invalid_type", "message": "Required", "path": [f]}
                                              for f in ("name", "prompt") if not isinstance(body.get(f), str)]})
    mc = body.get("modelConfig")
    if mc is not None and (not isinstance(mc, Mapping) or not isinstance(mc.get("provider"), str)
                           or not isinstance(mc.get("model"), str)):
        raise EvalInvalid("modelConfig must be {provider, model} or null")
    templates.validate_output_definition(body.get("outputDefinition"))
    mapping = templates.validate_default_mapping(body.get("mapping"), extract_variables(prompt))
    provider, model = (mc["provider"], mc["model"]) if mc else (None, None)
    _preflight(services, project_id, name.strip(), provider, model)
    row = templates.create_template(services.sessions, project_id, name=name, prompt=prompt,
                                    output_definition=body.get("outputDefinition"), provider=provider, model=model,
                                    default_mapping=mapping)
    with services.sessions() as s:
        count = templates.evaluator_counts(s, project_id, [row.family_id]).get(row.family_id, 0)
    return evaluator_shape(row, count)


def list_evaluators(services: Services, project_id: str, page: PageRequest) -> dict[str, Any]:
    rows, total = templates.list_templates(services.sessions, project_id, offset=page.offset, limit=page.limit)
    with services.sessions() as s:
        counts = templates.evaluator_counts(s, project_id, [r.family_id for r in rows])
    return {"data": [evaluator_shape(r, counts.get(r.family_id, 0)) for r in rows],
            "meta": page.meta(total)}


def get_evaluator(services: Services, project_id: str, evaluator_id: str) -> dict[str, Any]:
    row = templates.get_template(services.sessions, project_id, evaluator_id)
    with services.sessions() as s:
        count = templates.evaluator_counts(s, project_id, [row.family_id]).get(row.family_id, 0)
    return evaluator_shape(row, count)


def delete_evaluator(services: Services, project_id: str, evaluator_id: str) -> dict[str, str]:
    templates.delete_template_family(services.sessions, project_id, evaluator_id)
    return {"message": "Evaluator successfully deleted"}


# ---- evaluation rules (evaluators) -------------------------------------------------------------------------
def rule_shape(ev: Evaluator, template: EvalTemplate | None) -> dict[str, Any]:
    ref = {"id": template.id, "name": template.name, "type": template.type} if template else None
    base = {
        "id": ev.id, "name": ev.name, "evaluator": ref, "enabled": ev.enabled, "status": ev.status,
        "pausedReason": ev.paused_reason, "pausedMessage": ev.paused_message, "sampling": ev.sampling,
        "createdAt": iso(ev.created_at), "updatedAt": iso(ev.updated_at), "filter": list(ev.filter or []),
    }
    if ev.target in ("observation", "experiment"):
        own = _read_mapping(ev.mapping)
        default = evs.default_mapping(template, ev.target) if template else None
        effective = own if own is not None else _read_mapping(default) or []
        return {**base, "evaluators": [{"evaluator": ref, "mapping": own}] if ref else [], "target": ev.target,
                "mapping": effective}
    raw = ev.mapping if ev.mapping is not None else (template.default_mapping if template else None) or []
    legacy = [{"variable": m["variable"], "langfuseObject": m.get("object") or "trace",
               "objectName": m.get("objectName"), "source": m.get("source"), "jsonPath": m.get("jsonPath")}
              for m in raw]
    return {**base, "evaluators": [{"evaluator": ref, "mapping": legacy if ev.mapping is not None else None}]
            if ref else [], "target": "trace", "delay": ev.delay_seconds * 1000, "timeScope": list(ev.time_scope),
            "mapping": legacy}


def _rule(services: Services, project_id: str, rule_id: str) -> tuple[Evaluator, EvalTemplate | None]:
    with services.sessions() as s:
        ev = s.scalars(select(Evaluator).where(Evaluator.project_id == project_id, Evaluator.id == rule_id)).first()
        if ev is None:
            raise EvalNotFound(evs.NOT_FOUND)
        return ev, templates.latest_by_family(s, project_id, ev.template_family_id)


def _assignment(body: Mapping[str, Any]) -> tuple[str | None, Any, bool]:
    """(evaluator family name, mapping, mapping given) from either request variant."""
    if "evaluators" in body and body["evaluators"] is not None:
        if body.get("evaluator") is not None or body.get("mapping") is not None:
            raise EvalInvalid("send either evaluators, or the deprecated evaluator and mapping, not both")
        items = body["evaluators"]
        if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], Mapping):
            raise Unsupported("this server supports exactly one evaluator per evaluation rule")
        ref, mapping, given = items[0].get("evaluator"), items[0].get("mapping"), items[0].get("mapping") is not None
    else:
        ref, mapping, given = body.get("evaluator"), body.get("mapping"), "mapping" in body
    if ref is None:
        return None, mapping, given
    if not isinstance(ref, Mapping) or not isinstance(ref.get("name"), str):
        raise EvalInvalid("evaluator must be {name, type}")
    if (ref.get("type") or "llm_as_judge") != "llm_as_judge":
        raise Unsupported("code evaluators are not supported by this server")
    return ref["name"], mapping, given


def _family(services: Services, project_id: str, name: str) -> EvalTemplate:
    with write_transaction(services.sessions) as s:
        templates.ensure_builtin_templates(s, project_id)
        row = templates.latest_by_name(s, project_id, name)
    if row is None:
        raise EvalNotFound(f"no evaluator named {name!r} in this project (see GET /api/public/unstable/evaluators)")
    return row


def _check_target(target: Any) -> str:
    if target not in ("observation", "experiment"):
        raise EvalInvalid("target must be observation or experiment")
    return str(target)


def _check_active_limit(services: Services, project_id: str) -> None:
    with services.sessions() as s:
        active = s.scalar(select(func.count()).select_from(Evaluator).where(
            Evaluator.project_id == project_id, Evaluator.enabled.is_(True))) or 0
    if active >= MAX_ACTIVE_RULES:
        raise EvalConflict(f"the project already has {MAX_ACTIVE_RULES} active evaluation rules; disable one first",
                           code="conflict", details={"limit": MAX_ACTIVE_RULES})


def _api_mapping(mapping: Any, target: str) -> Any:
    if not isinstance(mapping, list):
        return mapping
    return [{**m, "object": target} if isinstance(m, Mapping) else m for m in mapping]


def create_rule(services: Services, project_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise EvalInvalid("the request body must be a JSON object")
    family, mapping, given = _assignment(body)
    if family is None:
        raise EvalInvalid("evaluator (or evaluators) is required")
    target = _check_target(body.get("target"))
    if not isinstance(body.get("enabled"), bool):
        raise EvalInvalid("enabled is required (true or false)")
    if "evaluators" not in body and not given:
        raise EvalInvalid("mapping is required with the evaluator field", code="missing_variable_mapping")
    template = _family(services, project_id, family)
    if body["enabled"]:
        _check_active_limit(services, project_id)
    sampling = body.get("sampling")
    spec = {
        "name": body.get("name") if isinstance(body.get("name"), str) else "", "template": template.family_id,
        "target": target, "filter": evs.check_filter(body.get("filter"), target),
        "mapping": _api_mapping(mapping, target) if given else None, "sampling": 1.0 if sampling is None else sampling,
        "delay_seconds": API_RULE_DELAY_SECONDS, "score_name": template.name, "time_scope": ["NEW"],
        "enabled": body["enabled"],
    }
    ev = evs.create_evaluator(services, project_id, spec, created_by_api=True)
    return rule_shape(ev, template)


def list_rules(services: Services, project_id: str, page: PageRequest) -> dict[str, Any]:
    rows, total = evs.list_evaluators(services.sessions, project_id, offset=page.offset, limit=page.limit)
    with services.sessions() as s:
        fams = {r.template_family_id for r in rows}
        latest = {fid: templates.latest_by_family(s, project_id, fid) for fid in fams}
    return {"data": [rule_shape(r, latest.get(r.template_family_id)) for r in rows], "meta": page.meta(total)}


def get_rule(services: Services, project_id: str, rule_id: str) -> dict[str, Any]:
    return rule_shape(*_rule(services, project_id, rule_id))


def _writable(ev: Evaluator) -> None:
    if ev.target not in ("observation", "experiment"):
        raise EvalInvalid(f"evaluation rule {ev.id} targets traces: such (legacy) rules are read-only through this "
                          "API; manage them in the UI", code="invalid_request")


def update_rule(services: Services, project_id: str, rule_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, Mapping) or not body:
        raise EvalInvalid("send at least one field to change")
    unknown = set(body) - RULE_FIELDS
    if unknown:
        raise EvalInvalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    ev, _ = _rule(services, project_id, rule_id)
    _writable(ev)
    changes: dict[str, Any] = {}
    if body.get("name") is not None:
        changes["name"] = body["name"]
    target = ev.target
    if body.get("target") is not None:
        target = changes["target"] = _check_target(body["target"])
    family, mapping, given = _assignment(body)
    if family is not None:
        template = _family(services, project_id, family)
        changes["template"], changes["score_name"] = template.family_id, template.name
    if given:
        changes["mapping"] = _api_mapping(mapping, target)
    elif family is not None and "evaluators" in body:
        changes["mapping"] = None
    if body.get("enabled") is not None:
        if body["enabled"] and not ev.enabled:
            _check_active_limit(services, project_id)
        changes["enabled"] = body["enabled"]
    if body.get("sampling") is not None:
        changes["sampling"] = body["sampling"]
    if body.get("filter") is not None:
        changes["filter"] = evs.check_filter(body["filter"], target)
    updated = evs.update_evaluator(services, project_id, rule_id, changes)
    return rule_shape(*_rule(services, project_id, updated.id))


def delete_rule(services: Services, project_id: str, rule_id: str) -> dict[str, str]:
    ev, _ = _rule(services, project_id, rule_id)
    _writable(ev)
    evs.delete_evaluator(services.sessions, project_id, rule_id)
    return {"message": "Evaluation rule successfully deleted"}
