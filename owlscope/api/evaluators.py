"""The unstable evaluation API: /api/public/unstable/evaluators and /api/public/unstable/evaluation-rules.

Its errors carry the `unstablePublicApiError` envelope (`message`, `code`, `details`; plus the usual
`error`): a route class maps the domain errors of these routes once, here at the edge.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from owlscope import audit
from owlscope.api.deps import ActorDep, AuthDep, ServicesDep, audit_action
from owlscope.api.error_routes import error_route_class
from owlscope.api.schemas import Evaluator, Evaluators, Message, typed
from owlscope.errors import OwlscopeError
from owlscope.evals import public_api
from owlscope.wire import PageRequest

_CODES = {400: "invalid_body", 401: "authentication_failed", 403: "access_denied", 404: "resource_not_found",
          405: "method_not_allowed", 409: "conflict", 422: "unprocessable_content", 429: "rate_limited"}


def _error(exc: OwlscopeError) -> Response:
    return JSONResponse({
        "message": exc.message, "error": exc.error,
        "code": getattr(exc, "code", None) or _CODES.get(exc.status, "internal_error"),
        "details": getattr(exc, "details", None),
    }, status_code=exc.status, headers=exc.headers or None)


def _invalid(exc: RequestValidationError) -> Response:
    issues = [{"code": str(e.get("type", "invalid")), "message": str(e.get("msg", "invalid")),
               "path": [p for p in e.get("loc", ()) if p != "body"]} for e in exc.errors()]
    return JSONResponse({"message": "; ".join(i["message"] for i in issues) or "invalid request",
                         "error": "InvalidRequestError", "code": "invalid_body",
                         "details": {"issues": issues}}, status_code=400)


# The unstable API's error envelope ({message, error, code, details}); the dashboards API shares it.
UnstableRoute = error_route_class(_error, _invalid)
router = APIRouter(tags=["UnstableEvaluators"], route_class=UnstableRoute)
EVALUATORS = "/api/public/unstable/evaluators"
RULES = "/api/public/unstable/evaluation-rules"


RULE_AUDITED = ("name", "enabled", "sampling", "evaluator", "target", "filter")


@router.post(EVALUATORS, **typed(Evaluator))
def evaluators_create(auth: AuthDep, services: ServicesDep, actor: ActorDep, body: Any = Body(...)) -> dict[str, Any]:
    created = public_api.create_evaluator(services, auth.project_id, body)
    audit_action(services, auth, actor, "eval_template.created", "eval_template", created["id"],
           after=audit.pick(created, "name", "version", "modelConfig"))
    return created


@router.get(EVALUATORS, **typed(Evaluators))
def evaluators_list(auth: AuthDep, services: ServicesDep, page: int | None = None,
                    limit: int | None = None) -> dict[str, Any]:
    return public_api.list_evaluators(services, auth.project_id, PageRequest.of(page, limit, maximum=100))


@router.get(EVALUATORS + "/{evaluatorId}", **typed(Evaluator))
def evaluators_get(evaluatorId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return public_api.get_evaluator(services, auth.project_id, evaluatorId)


@router.delete(EVALUATORS + "/{evaluatorId}", **typed(Message))
def evaluators_delete(evaluatorId: str, auth: AuthDep, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    before = public_api.get_evaluator(services, auth.project_id, evaluatorId)
    answer = public_api.delete_evaluator(services, auth.project_id, evaluatorId)
    audit_action(services, auth, actor, "eval_template.deleted", "eval_template", evaluatorId,
           before=audit.pick(before, "name", "version", "evaluationRuleCount"))
    return answer


@router.post(RULES, **typed(Evaluator))
def rules_create(auth: AuthDep, services: ServicesDep, actor: ActorDep, body: Any = Body(...)) -> dict[str, Any]:
    created = public_api.create_rule(services, auth.project_id, body)
    audit_action(services, auth, actor, "evaluator.created", "evaluator", created["id"],
           after=audit.pick(created, *RULE_AUDITED))
    return created


@router.get(RULES, **typed(Evaluators))
def rules_list(auth: AuthDep, services: ServicesDep, page: int | None = None,
               limit: int | None = None) -> dict[str, Any]:
    return public_api.list_rules(services, auth.project_id, PageRequest.of(page, limit, maximum=100))


@router.get(RULES + "/{evaluationRuleId}", **typed(Evaluator))
def rules_get(evaluationRuleId: str, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    return public_api.get_rule(services, auth.project_id, evaluationRuleId)


@router.patch(RULES + "/{evaluationRuleId}", **typed(Evaluator))
def rules_update(evaluationRuleId: str, auth: AuthDep, services: ServicesDep, actor: ActorDep,
                 body: Any = Body(...)) -> dict[str, Any]:
    before = public_api.get_rule(services, auth.project_id, evaluationRuleId)
    updated = public_api.update_rule(services, auth.project_id, evaluationRuleId, body)
    audit_action(services, auth, actor, "evaluator.updated", "evaluator", evaluationRuleId,
           before=audit.pick(before, *RULE_AUDITED), after=audit.pick(updated, *RULE_AUDITED))
    return updated


@router.delete(RULES + "/{evaluationRuleId}", **typed(Message))
def rules_delete(evaluationRuleId: str, auth: AuthDep, services: ServicesDep, actor: ActorDep) -> dict[str, Any]:
    before = public_api.get_rule(services, auth.project_id, evaluationRuleId)
    answer = public_api.delete_rule(services, auth.project_id, evaluationRuleId)
    audit_action(services, auth, actor, "evaluator.deleted", "evaluator", evaluationRuleId,
           before=audit.pick(before, *RULE_AUDITED))
    return answer
