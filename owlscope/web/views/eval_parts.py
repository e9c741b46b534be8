"""Form handling of the evaluator and template pages: form fields → EvaluatorSpec (filter, mapping,
scope), mapping rows for a template's variables, filter and template summaries for display."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from owlscope.errors import InvalidRequest
from owlscope.evals.templates import output_schema
from owlscope.evals.variables import OBSERVATION_OBJECTS
from owlscope.storage.oltp.eval_models import EvalTemplate

FILTER_FIELDS = (  # form field, label, trace column, observation column
    ("f_name", "Trace name", "name", "traceName"),
    ("f_user", "User ID", "userId", "userId"),
    ("f_session", "Session ID", "sessionId", "sessionId"),
    ("f_environment", "Environment", "environment", "environment"),
    ("f_release", "Release", "release", "release"),
    ("f_version", "Version", "version", "version"),
)
SCOPES = {"new": ["NEW"], "existing": ["EXISTING"], "both": ["NEW", "EXISTING"]}
SOURCES = ("input", "output", "metadata")
OBS_TYPES = tuple(t.upper() for t in OBSERVATION_OBJECTS)


@dataclass
class EvaluatorForm:
    """What the evaluator form holds (strings, as typed)."""

    name: str = ""
    template: str = ""
    target: str = "trace"
    obs_type: str = ""
    obs_name: str = ""
    filters: dict[str, str] = field(default_factory=dict)
    tags: str = ""
    sampling: str = "1"
    delay: str = "10"
    score_name: str = ""
    scope: str = "new"
    mapping: list[dict[str, Any]] = field(default_factory=list)
    trace_id: str = ""


def mapping_rows(template: EvalTemplate | None, target: str,
                 submitted: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per template variable: what was submitted, else the template's default, else input."""
    if template is None:
        return []
    own = "observation" if target == "observation" else "trace"
    given = {m["variable"]: m for m in submitted or []}
    defaults = {m["variable"]: m for m in template.default_mapping or []}
    rows = []
    for var in template.variables:
        m = given.get(var) or defaults.get(var) or {"source": "input"}
        obj = m.get("object") or own
        if obj not in object_choices(target):
            obj = own
        rows.append({"variable": var, "object": obj, "objectName": m.get("objectName") or "",
                     "source": m.get("source") if m.get("source") in SOURCES else "input",
                     "jsonPath": m.get("jsonPath") or ""})
    return rows


def object_choices(target: str) -> dict[str, str]:
    if target == "observation":
        return {"observation": "The evaluated observation", "trace": "Its trace"}
    return {"trace": "The trace", **{o: f"A {o} of the trace, by name" for o in OBSERVATION_OBJECTS}}


def zip_mapping(variables: list[str], objects: list[str], names: list[str], sources: list[str],
                paths: list[str]) -> list[dict[str, Any]]:
    def at(values: list[str], i: int) -> str:
        return values[i].strip() if i < len(values) else ""
    return [{"variable": v, "object": at(objects, i) or None, "objectName": at(names, i) or None,
             "source": at(sources, i) or "input", "jsonPath": at(paths, i) or None}
            for i, v in enumerate(variables)]


def _number(text: str, what: str) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise InvalidRequest(f"{what} must be a number") from None
    if not math.isfinite(value):
        raise InvalidRequest(f"{what} must be a finite number")
    return value


def build_filter(form: EvaluatorForm) -> list[dict[str, Any]]:
    trace = form.target == "trace"
    out: list[dict[str, Any]] = []
    if not trace:
        if form.obs_type:
            out.append({"column": "type", "operator": "=", "value": form.obs_type.upper(), "type": "string"})
        if form.obs_name.strip():
            out.append({"column": "name", "operator": "=", "value": form.obs_name.strip(), "type": "string"})
    for key, _label, trace_col, obs_col in FILTER_FIELDS:
        value = form.filters.get(key, "").strip()
        if value:
            out.append({"column": trace_col if trace else obs_col, "operator": "=", "value": value,
                        "type": "string"})
    tags = [t.strip() for t in form.tags.split(",") if t.strip()]
    if tags:
        out.append({"column": "tags", "operator": "any of", "value": tags, "type": "arrayOptions"})
    return out


def build_spec(form: EvaluatorForm) -> dict[str, Any]:
    """The EvaluatorSpec dict for the form (InvalidRequest on numbers that are not numbers)."""
    if not form.template:
        raise InvalidRequest("Choose a template")
    delay = _number(form.delay or "0", "Delay")
    if not delay.is_integer():
        raise InvalidRequest("Delay must be a whole number of seconds")
    return {
        "name": form.name.strip(), "template": form.template, "target": form.target if form.target in (
            "trace", "observation") else "trace",
        "filter": build_filter(form), "mapping": form.mapping or None,
        "sampling": _number(form.sampling, "Sampling rate"), "delay_seconds": int(delay),
        "score_name": form.score_name.strip() or None, "time_scope": SCOPES.get(form.scope, ["NEW"]),
    }


def filter_text(flt: list[dict[str, Any]] | None) -> list[str]:
    out = []
    for c in flt or []:
        value = c.get("value")
        value = ", ".join(map(str, value)) if isinstance(value, list) else value
        out.append(f"{c.get('column')} {c.get('operator')} {value}")
    return out


def scope_key(time_scope: list[str]) -> str:
    s = set(time_scope or [])
    return "both" if s == {"NEW", "EXISTING"} else ("existing" if s == {"EXISTING"} else "new")


def template_view(t: EvalTemplate) -> dict[str, Any]:
    defn = t.output_definition or {}
    return {
        "id": t.family_id, "versionId": t.id, "name": t.name, "version": t.version, "managed": t.managed,
        "prompt": t.prompt, "variables": list(t.variables or []), "dataType": defn.get("dataType"),
        "outputDefinition": json.dumps(defn, indent=2), "schema": json.dumps(output_schema(defn), indent=2)
        if defn else "", "provider": t.provider, "model": t.model, "createdAt": t.created_at,
        "defaultMapping": t.default_mapping or [],
    }


def output_definition_from_form(data_type: str, reasoning: str, score: str, min_value: str, max_value: str,
                                categories: str, multiple: bool) -> dict[str, Any]:
    score_def: dict[str, Any] = {"description": score}
    if data_type == "NUMERIC":
        score_def["minValue"] = _number(min_value, "Minimum") if min_value.strip() else None
        score_def["maxValue"] = _number(max_value, "Maximum") if max_value.strip() else None
    elif data_type == "CATEGORICAL":
        score_def["categories"] = [c.strip() for c in categories.replace("\n", ",").split(",") if c.strip()]
        score_def["shouldAllowMultipleMatches"] = multiple
    return {"dataType": data_type, "reasoning": {"description": reasoning}, "score": score_def}


def _fmt(v: Any) -> str:
    return "" if v is None else (str(int(v)) if float(v).is_integer() else str(v))


def template_form(t: EvalTemplate | None) -> dict[str, Any]:
    if t is None:
        return {"name": "", "prompt": "", "data_type": "NUMERIC", "reasoning": "One or two sentences explaining "
                "the score.", "score": "", "min_value": "0", "max_value": "1", "categories": "", "multiple": False,
                "provider": "", "model": ""}
    defn = t.output_definition or {}
    score = defn.get("score") or {}
    return {"name": t.name, "prompt": t.prompt, "data_type": defn.get("dataType", "NUMERIC"),
            "reasoning": (defn.get("reasoning") or {}).get("description", ""), "score": score.get("description", ""),
            "min_value": _fmt(score.get("minValue")), "max_value": _fmt(score.get("maxValue")),
            "categories": ", ".join(score.get("categories") or []),
            "multiple": bool(score.get("shouldAllowMultipleMatches")), "provider": t.provider or "",
            "model": t.model or ""}
