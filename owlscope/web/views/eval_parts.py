"""Form handling of the evaluator and template pages: form fields → EvaluatorSpec (filter, mapping,
scope) and back (editing), mapping rows for a template's variables, filter and template summaries
for display."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from owlscope.errors import InvalidRequest
from owlscope.evals.evaluators import default_mapping
from owlscope.evals.templates import output_schema
from owlscope.evals.variables import EXPERIMENT_SOURCES, OBSERVATION_OBJECTS
from owlscope.storage.oltp.eval_models import EvalTemplate, Evaluator

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
LEVELS = ("DEBUG", "DEFAULT", "WARNING", "ERROR")
TARGETS = {"trace": "traces", "observation": "observations", "experiment": "experiment items"}


def sources_for(target: str) -> tuple[str, ...]:
    return tuple(s for s in EXPERIMENT_SOURCES if s != "tool_calls") if target == "experiment" else SOURCES


@dataclass
class EvaluatorForm:
    """What the evaluator form holds (strings, as typed)."""

    name: str = ""
    template: str = ""
    target: str = "trace"
    obs_type: str = ""
    obs_name: str = ""
    obs_model: str = ""
    obs_level: str = ""
    meta_key: str = ""
    meta_value: str = ""
    datasets: list[str] = field(default_factory=list)
    filters: dict[str, str] = field(default_factory=dict)
    tags: str = ""
    sampling: str = "1"
    delay: str = "10"
    score_name: str = ""
    scope: str = "new"
    mapping: list[dict[str, Any]] = field(default_factory=list)
    trace_id: str = ""
    extra_filter: str = ""  # conditions the form cannot show (made through the API), kept as JSON
    rescore: bool = False


def mapping_rows(template: EvalTemplate | None, target: str,
                 submitted: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per template variable: what was submitted, else the template's default, else input."""
    if template is None:
        return []
    own = target if target in ("observation", "experiment") else "trace"
    given = {m["variable"]: m for m in submitted or []}
    defaults = {m["variable"]: m for m in default_mapping(template, target)}
    sources = sources_for(target)
    rows = []
    for var in template.variables:
        m = given.get(var) or defaults.get(var) or {"source": "input"}
        obj = m.get("object") or own
        if obj not in object_choices(target):
            obj = own
        rows.append({"variable": var, "object": obj, "objectName": m.get("objectName") or "",
                     "source": m.get("source") if m.get("source") in sources else "input",
                     "jsonPath": m.get("jsonPath") or ""})
    return rows


def object_choices(target: str) -> dict[str, str]:
    if target == "observation":
        return {"observation": "The evaluated observation", "trace": "Its trace"}
    if target == "experiment":
        return {"experiment": "The experiment item"}
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


def extra_conditions(form: EvaluatorForm) -> list[dict[str, Any]]:
    """The kept conditions of an edited evaluator's filter that the form has no field for."""
    if not form.extra_filter.strip():
        return []
    try:
        extra = json.loads(form.extra_filter)
    except ValueError:
        raise InvalidRequest("The kept filter conditions are not valid JSON") from None
    if not isinstance(extra, list):
        raise InvalidRequest("The kept filter conditions must be a list")
    return extra


def build_filter(form: EvaluatorForm) -> list[dict[str, Any]]:
    if form.target == "experiment":
        datasets = [d for d in form.datasets if d]
        return [{"column": "datasetId", "operator": "any of", "value": datasets, "type": "stringOptions"}
                ] if datasets else []
    trace = form.target == "trace"
    out: list[dict[str, Any]] = []
    if not trace:
        if form.obs_type:
            out.append({"column": "type", "operator": "=", "value": form.obs_type.upper(), "type": "string"})
        if form.obs_name.strip():
            out.append({"column": "name", "operator": "=", "value": form.obs_name.strip(), "type": "string"})
        if form.obs_model.strip():
            out.append({"column": "model", "operator": "=", "value": form.obs_model.strip(), "type": "string"})
        if form.obs_level in LEVELS:
            out.append({"column": "level", "operator": "any of", "value": [form.obs_level], "type": "stringOptions"})
    if form.meta_key.strip():
        out.append({"column": "metadata", "key": form.meta_key.strip(), "operator": "=",
                    "value": form.meta_value.strip(), "type": "stringObject"})
    for key, _label, trace_col, obs_col in FILTER_FIELDS:
        value = form.filters.get(key, "").strip()
        if value:
            out.append({"column": trace_col if trace else obs_col, "operator": "=", "value": value,
                        "type": "string"})
    tags = [t.strip() for t in form.tags.split(",") if t.strip()]
    if tags:
        out.append({"column": "tags", "operator": "any of", "value": tags, "type": "arrayOptions"})
    return out + extra_conditions(form)


def form_from_evaluator(ev: Evaluator, template_name: str) -> EvaluatorForm:
    """The form of an existing evaluator (editing). Conditions the form has no field for are kept
    as they are (`extra_filter`), so saving the form never drops part of a filter made elsewhere."""
    form = EvaluatorForm(name=ev.name, template=template_name, target=ev.target, sampling=f"{ev.sampling:g}",
                         delay=str(ev.delay_seconds), score_name=ev.score_name, scope=scope_key(ev.time_scope),
                         mapping=list(ev.mapping or []))
    by_column = {obs_col if ev.target == "observation" else trace_col: key
                 for key, _label, trace_col, obs_col in FILTER_FIELDS}
    extra = []
    for c in ev.filter or []:
        col, op, value = c.get("column"), c.get("operator"), c.get("value")
        one = value[0] if isinstance(value, list) and len(value) == 1 else (value if isinstance(value, str) else None)
        if ev.target == "experiment" and col == "datasetId" and op == "any of" and isinstance(value, list):
            form.datasets = [str(v) for v in value]
        elif ev.target == "observation" and col == "type" and op in ("=", "any of") and one and not form.obs_type:
            form.obs_type = one
        elif ev.target == "observation" and col == "name" and op == "=" and one and not form.obs_name:
            form.obs_name = one
        elif ev.target == "observation" and col == "model" and op == "=" and one and not form.obs_model:
            form.obs_model = one
        elif ev.target == "observation" and col == "level" and op in ("=", "any of") and one in LEVELS \
                and not form.obs_level:
            form.obs_level = one
        elif col == "metadata" and op == "=" and c.get("key") and isinstance(value, str) and not form.meta_key:
            form.meta_key, form.meta_value = c["key"], value
        elif col == "tags" and op == "any of" and isinstance(value, list) and not form.tags:
            form.tags = ", ".join(map(str, value))
        elif col in by_column and op == "=" and isinstance(value, str) and by_column[col] not in form.filters:
            form.filters[by_column[col]] = value
        else:
            extra.append(c)
    form.extra_filter = json.dumps(extra) if extra else ""
    return form


def build_spec(form: EvaluatorForm) -> dict[str, Any]:
    """The EvaluatorSpec dict for the form (InvalidRequest on numbers that are not numbers)."""
    if not form.template:
        raise InvalidRequest("Choose a template")
    delay = _number(form.delay or "0", "Delay")
    if not delay.is_integer():
        raise InvalidRequest("Delay must be a whole number of seconds")
    return {
        "name": form.name.strip(), "template": form.template, "target": form.target if form.target in TARGETS
        else "trace",
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
