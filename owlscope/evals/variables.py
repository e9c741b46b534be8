"""Prompt variables: `{{name}}` placeholders, the mapping that fills them from a trace or an
observation, and JSONPath selection (jsonpath-ng: `$.a.b[0]`, `$..name`, `$[*].name`, filters).

A mapping item (stored on the evaluator or as a template's default):

    {"variable": "context", "object": "trace", "objectName": None, "source": "metadata",
     "jsonPath": "$.reference_context"}

- `object`: "trace" (the trace), "observation" (the target observation of an observation
  evaluator), or an observation type in lower case ("generation", "span", ...) with `objectName`:
  the latest observation of that type and name in the trace.
- `source`: input, output, metadata, or tool_calls (the tool calls in an observation's output).
- An experiment evaluator reads one object, `experiment` (the dataset run item, see
  `owlscope.evals.experiment_targets`), which also has `expected_output` and `experiment_item_metadata`.
- Strings are inserted as they are; anything else as JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from jsonpath_ng.ext import parse as parse_jsonpath

from owlscope.evals.errors import EvalInvalid
from owlscope.ingestion.rows import OBSERVATION_TYPES

_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
SOURCES = ("input", "output", "metadata", "tool_calls")
EXPERIMENT_SOURCES = (*SOURCES, "expected_output", "experiment_item_metadata")
OBSERVATION_OBJECTS = tuple(t.lower() for t in OBSERVATION_TYPES)
TARGETS = ("trace", "observation", "experiment")


def extract_variables(prompt: str) -> list[str]:
    """The `{{variables}}` of a prompt, in order of first appearance."""
    return list(dict.fromkeys(_VAR.findall(prompt)))


def fill_prompt(prompt: str, values: Mapping[str, str]) -> str:
    """Replace each `{{variable}}` that has a value; unknown ones stay visible as they are."""
    return _VAR.sub(lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), prompt)


@lru_cache(maxsize=512)
def compile_path(expr: str) -> Any:
    """A parsed JSONPath expression; ValueError when malformed or not starting with `$`."""
    if not expr.strip().startswith("$"):
        raise ValueError("a JSONPath must start with $")
    try:
        return parse_jsonpath(expr.strip())
    except Exception as exc:  # noqa: BLE001 - the lexer and parser raise several kinds
        raise ValueError(str(exc)) from None


def select(value: Any, json_path: str | None) -> Any:
    """`value` narrowed by a JSONPath: one match gives its value, several a list, none None.

    A string that holds JSON is parsed first, so a path also works on JSON-encoded input."""
    if not json_path:
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    matches = [m.value for m in compile_path(json_path).find(value)]
    if not matches:
        return None
    return matches[0] if len(matches) == 1 else matches


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def tool_calls(output: Any) -> list[dict[str, Any]]:
    """Tool calls found in an observation output (an OpenAI message, a list of messages or choices),
    as `{id, name, arguments, type, index}` in the order the model emitted them."""
    found: list[dict[str, Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, Mapping):
            calls = node.get("tool_calls")
            if isinstance(calls, list):
                for call in calls:
                    if isinstance(call, Mapping):
                        fn = call.get("function") if isinstance(call.get("function"), Mapping) else call
                        found.append({"id": call.get("id"), "name": fn.get("name"),
                                      "arguments": fn.get("arguments"), "type": call.get("type", "function"),
                                      "index": len(found)})
            elif "message" in node:
                visit(node["message"])
            elif "choices" in node:
                visit(node["choices"])

    visit(output)
    return found


def source_value(obj: Mapping[str, Any] | None, source: str) -> Any:
    if obj is None:
        return None
    if source == "tool_calls":
        return tool_calls(obj.get("output"))
    return obj.get(source)


def resolve_values(
    mapping: Iterable[Mapping[str, Any]], *, trace: Mapping[str, Any] | None,
    observation: Mapping[str, Any] | None = None,
    named: Callable[[str, str], Mapping[str, Any] | None] | None = None,
    experiment: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Variable -> text for a mapping. `trace`/`observation` are dicts with parsed input, output and
    metadata; `named(type, name)` finds a named observation of the trace (None: not found);
    `experiment` is the experiment item of an experiment evaluator."""
    values: dict[str, str] = {}
    for item in mapping:
        obj_kind = item.get("object") or ("experiment" if experiment is not None else "trace")
        if obj_kind == "trace":
            obj = trace
        elif obj_kind == "experiment":
            obj = experiment
        elif obj_kind == "observation":
            obj = observation
        else:
            obj = named(obj_kind, item.get("objectName") or "") if named else None
        values[item["variable"]] = as_text(select(source_value(obj, item.get("source") or "input"),
                                                  item.get("jsonPath")))
    return values


def validate_mapping(mapping: Any, variables: list[str], target: str, *, field: str = "mapping") -> list[dict[str, Any]]:
    """A normalized mapping that fills every variable exactly once from a source valid for `target`."""
    if not isinstance(mapping, list):
        raise EvalInvalid(f"{field} must be a list of variable mappings", code="invalid_body")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, raw in enumerate(mapping):
        where = f"{field}[{i}]"
        if not isinstance(raw, Mapping):
            raise EvalInvalid(f"{where} must be an object", code="invalid_body")
        var = raw.get("variable")
        if not isinstance(var, str) or var not in variables:
            raise EvalInvalid(f"{where}.variable {var!r} is not a variable of the evaluator prompt "
                              f"(variables: {', '.join(variables) or 'none'})",
                              code="invalid_variable_mapping", details={"field": f"{where}.variable", "variable": str(var)})
        if var in seen:
            raise EvalInvalid(f"variable {var!r} is mapped more than once", code="duplicate_variable_mapping",
                              details={"field": where, "variable": var})
        seen.add(var)
        obj = raw.get("object") or (target if target in ("observation", "experiment") else "trace")
        allowed_objects = {"observation": ("trace", "observation"), "experiment": ("experiment",)}.get(
            target, ("trace", *OBSERVATION_OBJECTS))
        if obj not in allowed_objects:
            raise EvalInvalid(f"{where}.object must be one of {', '.join(allowed_objects)} for target={target}",
                              code="invalid_variable_mapping", details={"field": f"{where}.object", "variable": var})
        name = raw.get("objectName")
        if obj in OBSERVATION_OBJECTS and (not isinstance(name, str) or not name.strip()):
            raise EvalInvalid(f"{where}.objectName is required when mapping from a {obj}",
                              code="invalid_variable_mapping", details={"field": f"{where}.objectName", "variable": var})
        source = raw.get("source")
        allowed_sources = {"trace": SOURCES[:3], "experiment": EXPERIMENT_SOURCES}.get(obj, SOURCES)
        if source not in allowed_sources:
            raise EvalInvalid(f"{where}.source must be one of {', '.join(allowed_sources)} (got {source!r})",
                              code="invalid_variable_mapping", details={"field": f"{where}.source", "variable": var})
        path = raw.get("jsonPath")
        if path in ("", None):
            path = None
        elif not isinstance(path, str):
            raise EvalInvalid(f"{where}.jsonPath must be a string", code="invalid_json_path",
                              details={"field": f"{where}.jsonPath", "variable": var})
        else:
            try:
                compile_path(path)
            except ValueError as exc:
                raise EvalInvalid(f"{where}.jsonPath {path!r} is not a valid JSONPath: {exc}", code="invalid_json_path",
                                  details={"field": f"{where}.jsonPath", "variable": var, "value": path}) from None
        out.append({"variable": var, "object": obj, "objectName": name.strip() if obj in OBSERVATION_OBJECTS else None,
                    "source": source, "jsonPath": path})
    missing = [v for v in variables if v not in seen]
    if missing:
        raise EvalInvalid(f"every prompt variable must be mapped; missing: {', '.join(missing)}",
                          code="missing_variable_mapping", details={"field": field, "variables": missing})
    return out
