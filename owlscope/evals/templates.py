"""Judge templates: versioned prompts with an output definition, built-in and custom.

A template family is a name in a project; each save adds a version (1, 2, ...), and evaluators
always run the latest version of their family. `family_id` (the first version's id) is stable.
Built-ins (builtin_templates.py) are seeded into a project on first use, as version 1 of their name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from owlscope.evals.builtin_templates import BUILTIN_TEMPLATES
from owlscope.evals.errors import EvalInvalid, EvalNotFound
from owlscope.evals.judge import JudgeError
from owlscope.evals.sqlutil import insert_ignore
from owlscope.evals.variables import OBSERVATION_OBJECTS, SOURCES, compile_path, extract_variables
from owlscope.storage.oltp.base import new_id, utcnow
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.eval_models import EvalTemplate, Evaluator

DATA_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL")
DEFAULT_SOURCES = (*SOURCES, "expected_output", "experiment_item_metadata")
NOT_FOUND = "Evaluator not found within authorized project"


# ---- output definitions -----------------------------------------------------------------------------
def validate_output_definition(raw: Any, field: str = "outputDefinition") -> dict[str, Any]:
    """The public `unstableEvaluatorOutputDefinition`, checked and normalized."""
    if not isinstance(raw, Mapping):
        raise EvalInvalid(f"{field} must be an object with dataType, reasoning and score")
    data_type = raw.get("dataType")
    if data_type not in DATA_TYPES:
        raise EvalInvalid(f"{field}.dataType must be one of {', '.join(DATA_TYPES)}")
    if "version" in raw:
        raise EvalInvalid(f"{field}.version is not part of the request; omit it")
    reasoning, score = raw.get("reasoning"), raw.get("score")
    for name, part in (("reasoning", reasoning), ("score", score)):
        if not isinstance(part, Mapping) or not isinstance(part.get("description"), str) \
                or not part["description"].strip():
            raise EvalInvalid(f"{field}.{name}.description is required")
    assert isinstance(reasoning, Mapping) and isinstance(score, Mapping)
    out_score: dict[str, Any] = {"description": score["description"]}
    if data_type == "NUMERIC":
        for key in ("minValue", "maxValue"):
            v = score.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)):
                raise EvalInvalid(f"{field}.score.{key} must be a number")
            out_score[key] = v
        if out_score["minValue"] is not None and out_score["maxValue"] is not None \
                and out_score["minValue"] > out_score["maxValue"]:
            raise EvalInvalid(f"{field}.score.minValue must not exceed maxValue")
    elif data_type == "CATEGORICAL":
        cats = score.get("categories")
        if not isinstance(cats, list) or not cats or not all(isinstance(c, str) and c.strip() for c in cats):
            raise EvalInvalid(f"{field}.score.categories must be a non-empty list of strings")
        if len(set(cats)) != len(cats):
            raise EvalInvalid(f"{field}.score.categories must be unique")
        multi = score.get("shouldAllowMultipleMatches")
        if not isinstance(multi, bool):
            raise EvalInvalid(f"{field}.score.shouldAllowMultipleMatches must be true or false")
        out_score.update(categories=list(cats), shouldAllowMultipleMatches=multi)
    return {"dataType": data_type, "reasoning": {"description": reasoning["description"]}, "score": out_score}


def output_schema(defn: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON schema the judge must answer with: `{"reasoning": str, "score": ...}` (strict-mode safe)."""
    score_def = defn["score"]
    desc = score_def["description"]
    data_type = defn["dataType"]
    if data_type == "NUMERIC":
        lo, hi = score_def.get("minValue"), score_def.get("maxValue")
        if lo is not None or hi is not None:
            desc += f" A number between {lo if lo is not None else '-inf'} and {hi if hi is not None else 'inf'}."
        score: dict[str, Any] = {"type": "number", "description": desc}
    elif data_type == "BOOLEAN":
        score = {"type": "boolean", "description": desc}
    elif score_def.get("shouldAllowMultipleMatches"):
        score = {"type": "array", "description": desc,
                 "items": {"type": "string", "enum": list(score_def["categories"])}}
    else:
        score = {"type": "string", "enum": list(score_def["categories"]), "description": desc}
    return {
        "type": "object",
        "properties": {"reasoning": {"type": "string", "description": defn["reasoning"]["description"]},
                       "score": score},
        "required": ["reasoning", "score"],
        "additionalProperties": False,
    }


def parse_judgement(defn: Mapping[str, Any], output: Mapping[str, Any]) -> tuple[list[float | str], str]:
    """The score value(s) and the reasoning in a judge's answer; JudgeError (retryable) when the
    answer does not follow the output definition. BOOLEAN gives 1.0/0.0; CATEGORICAL gives labels."""
    reasoning = output.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, str) else ("" if reasoning is None else str(reasoning))
    raw = output.get("score")
    data_type = defn["dataType"]
    score_def = defn["score"]
    if data_type == "BOOLEAN":
        if isinstance(raw, bool):
            return [1.0 if raw else 0.0], reasoning
        if isinstance(raw, int | float) and raw in (0, 1):
            return [float(raw)], reasoning
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return [1.0 if raw.lower() == "true" else 0.0], reasoning
        raise JudgeError("transient", f"the judge's score {raw!r} is not a boolean")
    if data_type == "NUMERIC":
        if isinstance(raw, str):
            try:
                raw = float(raw)
            except ValueError:
                pass
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise JudgeError("transient", f"the judge's score {raw!r} is not a number")
        lo, hi = score_def.get("minValue"), score_def.get("maxValue")
        if (lo is not None and raw < lo) or (hi is not None and raw > hi):
            raise JudgeError("transient", f"the judge's score {raw} is outside [{lo}, {hi}]")
        return [float(raw)], reasoning
    cats = score_def["categories"]
    values = raw if isinstance(raw, list) else [raw]
    if not values or not all(isinstance(v, str) and v in cats for v in values):
        raise JudgeError("transient", f"the judge's score {raw!r} is not among the categories {cats}")
    if len(values) > 1 and not score_def.get("shouldAllowMultipleMatches"):
        values = values[:1]
    return list(dict.fromkeys(values)), reasoning


def validate_default_mapping(raw: Any, variables: list[str]) -> list[dict[str, Any]] | None:
    """A template's default mapping: may be partial (rules complete it) and is not tied to a target;
    `object` None means the evaluated object itself, or a named observation (`object` = its type)."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise EvalInvalid("mapping must be a list of variable mappings")
    out, seen = [], set()
    for i, m in enumerate(raw):
        if not isinstance(m, Mapping) or m.get("variable") not in variables:
            raise EvalInvalid(f"mapping[{i}].variable must be one of the prompt variables: {', '.join(variables)}",
                              code="invalid_variable_mapping", details={"field": f"mapping[{i}].variable"})
        var = m["variable"]
        if var in seen:
            raise EvalInvalid(f"variable {var!r} is mapped more than once", code="duplicate_variable_mapping",
                              details={"field": f"mapping[{i}]", "variable": var})
        seen.add(var)
        if m.get("source") not in DEFAULT_SOURCES:
            raise EvalInvalid(f"mapping[{i}].source must be one of {', '.join(DEFAULT_SOURCES)}",
                              code="invalid_variable_mapping", details={"field": f"mapping[{i}].source", "variable": var})
        obj, name = m.get("object"), m.get("objectName")
        if obj not in (None, "trace", "observation", *OBSERVATION_OBJECTS):
            raise EvalInvalid(f"mapping[{i}].object {obj!r} is not a trace, observation or observation type",
                              code="invalid_variable_mapping", details={"field": f"mapping[{i}].object", "variable": var})
        if obj in OBSERVATION_OBJECTS and not (isinstance(name, str) and name.strip()):
            raise EvalInvalid(f"mapping[{i}].objectName is required when mapping from a {obj}",
                              code="invalid_variable_mapping", details={"field": f"mapping[{i}].objectName"})
        path = m.get("jsonPath") or None
        if path is not None:
            try:
                compile_path(path)
            except ValueError as exc:
                raise EvalInvalid(f"mapping[{i}].jsonPath is not a valid JSONPath: {exc}", code="invalid_json_path",
                                  details={"field": f"mapping[{i}].jsonPath", "variable": var,
                                           "value": str(path)}) from None
        out.append({"variable": var, "object": obj, "objectName": name.strip() if obj in OBSERVATION_OBJECTS else None,
                    "source": m["source"], "jsonPath": path})
    return out


# ---- storage ----------------------------------------------------------------------------------------
def ensure_builtin_templates(session: Session, project_id: str) -> None:
    """Seed the built-in templates into a project (idempotent, safe under concurrency)."""
    have = set(session.scalars(select(EvalTemplate.name).where(
        EvalTemplate.project_id == project_id, EvalTemplate.managed.is_(True))))
    rows = []
    now = utcnow()
    for t in BUILTIN_TEMPLATES:
        if t["name"] in have:
            continue
        tid = new_id()
        rows.append({"id": tid, "project_id": project_id, "family_id": tid, "name": t["name"], "version": 1,
                     "type": "llm_as_judge", "prompt": t["prompt"], "variables": extract_variables(t["prompt"]),
                     "output_definition": t["output_definition"], "provider": None, "model": None,
                     "model_params": None, "default_mapping": t["default_mapping"], "managed": True,
                     "created_at": now, "updated_at": now})
    insert_ignore(session, EvalTemplate, rows, conflict=("project_id", "name", "version"))


def create_template(
    sessions: sessionmaker[Session], project_id: str, *, name: str, prompt: str, output_definition: Any,
    provider: str | None = None, model: str | None = None, model_params: dict[str, Any] | None = None,
    default_mapping: list[dict[str, Any]] | None = None,
) -> EvalTemplate:
    """Save a new version of the template `name` (version 1 when the name is new)."""
    name = (name or "").strip()
    if not name or len(name) > 255:
        raise EvalInvalid("name must be 1 to 255 characters")
    if not isinstance(prompt, str) or not prompt.strip():
        raise EvalInvalid("prompt must be a non-empty string")
    defn = validate_output_definition(output_definition)
    if bool(provider) != bool(model):
        raise EvalInvalid("modelConfig needs both provider and model")
    default_mapping = validate_default_mapping(default_mapping, extract_variables(prompt))
    for attempt in range(3):
        try:
            with write_transaction(sessions) as s:
                ensure_builtin_templates(s, project_id)
                latest = latest_by_name(s, project_id, name)
                tid = new_id()
                row = EvalTemplate(
                    id=tid, project_id=project_id, family_id=latest.family_id if latest else tid, name=name,
                    version=(latest.version + 1) if latest else 1, type="llm_as_judge", prompt=prompt,
                    variables=extract_variables(prompt), output_definition=defn, provider=provider or None,
                    model=model or None, model_params=model_params or None, default_mapping=default_mapping,
                    managed=False,
                )
                s.add(row)
            return row
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def latest_by_name(session: Session, project_id: str, name: str) -> EvalTemplate | None:
    return session.scalars(select(EvalTemplate).where(
        EvalTemplate.project_id == project_id, EvalTemplate.name == name,
    ).order_by(EvalTemplate.version.desc()).limit(1)).first()


def latest_by_family(session: Session, project_id: str, family_id: str) -> EvalTemplate | None:
    """The latest version of a family; `family_id` may also be the id of any of its versions."""
    row = session.scalars(select(EvalTemplate).where(
        EvalTemplate.project_id == project_id, EvalTemplate.family_id == family_id,
    ).order_by(EvalTemplate.version.desc()).limit(1)).first()
    if row is None:
        version = session.scalars(select(EvalTemplate).where(
            EvalTemplate.project_id == project_id, EvalTemplate.id == family_id)).first()
        if version is not None and version.family_id != family_id:
            return latest_by_family(session, project_id, version.family_id)
    return row


def get_template(sessions: sessionmaker[Session], project_id: str, family_id: str) -> EvalTemplate:
    with write_transaction(sessions) as s:
        ensure_builtin_templates(s, project_id)
        row = latest_by_family(s, project_id, family_id)
    if row is None:
        raise EvalNotFound(NOT_FOUND)
    return row


def list_templates(sessions: sessionmaker[Session], project_id: str, *, offset: int = 0,
                   limit: int = 50) -> tuple[list[EvalTemplate], int]:
    """The latest version of each template family, by name; and the number of families."""
    with write_transaction(sessions) as s:
        ensure_builtin_templates(s, project_id)
        latest = select(EvalTemplate.family_id, func.max(EvalTemplate.version).label("v")).where(
            EvalTemplate.project_id == project_id).group_by(EvalTemplate.family_id).subquery()
        total = s.scalar(select(func.count()).select_from(latest)) or 0
        rows = list(s.scalars(select(EvalTemplate).join(
            latest, (EvalTemplate.family_id == latest.c.family_id) & (EvalTemplate.version == latest.c.v),
        ).where(EvalTemplate.project_id == project_id).order_by(EvalTemplate.name).offset(offset).limit(limit)))
    return rows, total


def list_template_versions(sessions: sessionmaker[Session], project_id: str, family_id: str) -> list[EvalTemplate]:
    with sessions() as s:
        return list(s.scalars(select(EvalTemplate).where(
            EvalTemplate.project_id == project_id, EvalTemplate.family_id == family_id,
        ).order_by(EvalTemplate.version.desc())))


def delete_template_family(sessions: sessionmaker[Session], project_id: str, family_id: str) -> None:
    """Delete every version of a template and the evaluators that use it (their scores stay)."""
    with write_transaction(sessions) as s:
        row = latest_by_family(s, project_id, family_id)
        if row is None:
            raise EvalNotFound(NOT_FOUND)
        s.execute(delete(Evaluator).where(Evaluator.project_id == project_id,
                                          Evaluator.template_family_id == row.family_id))
        s.execute(delete(EvalTemplate).where(EvalTemplate.project_id == project_id,
                                             EvalTemplate.family_id == row.family_id))


def evaluator_counts(session: Session, project_id: str, family_ids: list[str]) -> dict[str, int]:
    if not family_ids:
        return {}
    rows = session.execute(select(Evaluator.template_family_id, func.count()).where(
        Evaluator.project_id == project_id, Evaluator.template_family_id.in_(family_ids),
    ).group_by(Evaluator.template_family_id))
    return {fid: n for fid, n in rows}
