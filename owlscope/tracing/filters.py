"""The structured `filter` parameter of the public API, compiled to ClickHouse SQL.

A filter is a JSON array of conditions `{"type", "column", "operator", "value", "key"}` (see the
OpenAPI descriptions of GET /traces and GET /v2/observations). Each entity module declares its
columns (`Column`: a SQL expression over merged values and a kind); `compile_condition` turns one
condition into a boolean SQL expression with bound parameters. Simple query parameters (`userId=`,
`tags=`...) are turned into the same conditions, so there is one code path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from owlscope.errors import InvalidRequest
from owlscope.tracing.common import Params, parse_time_param
from owlscope.tracing.model import KEY, not_internal

FILTER_TYPES = {
    "datetime", "string", "number", "stringOptions", "categoryOptions", "arrayOptions", "stringObject",
    "numberObject", "booleanObject", "boolean", "null",
}
STRING_OPS = {"=", "!=", "<>", "contains", "does not contain", "starts with", "ends with", "matches"}
NUMBER_OPS = {"=", "!=", "<>", ">", "<", ">=", "<="}
OPTION_OPS = {"any of", "none of"}
ARRAY_OPS = {"any of", "none of", "all of"}
NULL_OPS = {"is null", "is not null"}
# A condition type only the UI's own defaults build (`conditions_from_list` never yields it, so the
# public filter grammar is unchanged): the column is not an internal environment.
NOT_INTERNAL = "notInternal"


@dataclass(frozen=True)
class Condition:
    column: str
    operator: str
    value: Any = None
    type: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class Column:
    """A filterable column. `kind`: string, datetime, number, array, bool or object (JSON text with keys).
    `scope` tells the entity module where the expression lives (its own merged row, the parent trace,
    an aggregate over observations, scores)."""

    kind: str
    expr: str
    scope: str = "self"


def parse_filter(text: str | None) -> list[Condition] | None:
    """The `filter` query parameter (a JSON array) as conditions; None when absent."""
    if text is None or text.strip() == "":
        return None
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Invalid filter: not valid JSON ({exc})") from None
    return conditions_from_list(raw, "filter")


def conditions_from_list(raw: Any, what: str) -> list[Condition]:
    if not isinstance(raw, list):
        raise InvalidRequest(f"Invalid {what}: expected a JSON array of conditions")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidRequest(f"Invalid {what}[{i}]: expected an object")
        column, operator = item.get("column"), item.get("operator")
        if not isinstance(column, str) or not column:
            raise InvalidRequest(f"Invalid {what}[{i}]: 'column' is required")
        if not isinstance(operator, str) or not operator:
            raise InvalidRequest(f"Invalid {what}[{i}]: 'operator' is required")
        type_ = item.get("type")
        if type_ is not None and type_ not in FILTER_TYPES:
            raise InvalidRequest(f"Invalid {what}[{i}]: unknown type {type_!r}")
        key = item.get("key")
        if key is not None and not isinstance(key, str):
            raise InvalidRequest(f"Invalid {what}[{i}]: 'key' must be a string")
        out.append(Condition(column=column, operator=operator.strip(), value=item.get("value"), type=type_,
                             key=key))
    return out


def resolve(cond: Condition, columns: dict[str, Column], what: str = "filter") -> Column:
    col = columns.get(cond.column)
    if col is None:
        raise InvalidRequest(
            f"Invalid {what}: unknown column {cond.column!r}. Available: {', '.join(sorted(columns))}"
        )
    return col


# ---- values ----------------------------------------------------------------------------------
def _string(cond: Condition) -> str:
    v = cond.value
    if isinstance(v, bool) or v is None or isinstance(v, list | dict):
        raise InvalidRequest(f"Invalid filter on {cond.column}: expected a string value")
    return str(v)


def _strings(cond: Condition) -> list[str]:
    v = cond.value
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list) or not all(isinstance(x, str | int | float) and not isinstance(x, bool) for x in v):
        raise InvalidRequest(f"Invalid filter on {cond.column}: expected a list of strings")
    return [str(x) for x in v]


def _number(cond: Condition) -> float:
    v = cond.value
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            v = None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InvalidRequest(f"Invalid filter on {cond.column}: expected a number")
    return float(v)


def _bool(cond: Condition) -> bool:
    v = cond.value
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if not isinstance(v, bool):
        raise InvalidRequest(f"Invalid filter on {cond.column}: expected true or false")
    return v


def _check(cond: Condition, allowed: set[str], kind: str) -> None:
    if cond.operator not in allowed:
        raise InvalidRequest(f"Invalid filter on {cond.column}: operator {cond.operator!r} does not apply to {kind}")


def _cmp(op: str) -> str:
    return "!=" if op == "<>" else op


# ---- compilation -----------------------------------------------------------------------------
def not_internal_environment(column: str = "environment") -> Condition:
    """`column` is not an internal environment (see model.INTERNAL_ENV_PREFIX)."""
    return Condition(column, "not internal", type=NOT_INTERNAL)


def string_sql(expr: str, cond: Condition, p: Params, *, case_insensitive_match: bool = True) -> str:
    op = cond.operator
    if cond.type == NOT_INTERNAL:
        return not_internal(expr)
    if op in OPTION_OPS:
        sql = f"{expr} IN {p.texts(_strings(cond))}"
        return sql if op == "any of" else f"NOT ({sql})"
    if op in NULL_OPS:
        return f"{expr} {'=' if op == 'is null' else '!='} ''"
    _check(cond, STRING_OPS, "a string")
    v = _string(cond)
    if op in ("=", "!=", "<>"):
        return f"{expr} {_cmp(op)} {p.text(v)}"
    if op == "contains":
        return f"position({expr}, {p.text(v)}) > 0"
    if op == "does not contain":
        return f"position({expr}, {p.text(v)}) = 0"
    if op == "starts with":
        return f"startsWith({expr}, {p.text(v)})"
    if op == "ends with":
        return f"endsWith({expr}, {p.text(v)})"
    # matches: literal search (no LIKE wildcards)
    fn = "positionCaseInsensitive" if case_insensitive_match else "position"
    return f"{fn}({expr}, {p.text(v)}) > 0"


def number_sql(expr: str, cond: Condition, p: Params) -> str:
    op = cond.operator
    if op in NULL_OPS:
        return f"{'isNull' if op == 'is null' else 'isNotNull'}({expr})"
    _check(cond, NUMBER_OPS, "a number")
    return f"{expr} {_cmp(op)} {p.number(_number(cond))}"


def datetime_sql(expr: str, cond: Condition, p: Params) -> str:
    op = cond.operator
    if op in NULL_OPS:
        return f"toUnixTimestamp64Milli({expr}) {'=' if op == 'is null' else '!='} 0"
    _check(cond, NUMBER_OPS, "a datetime")
    when = parse_time_param(cond.value if isinstance(cond.value, str | int | float) else None,
                            f"filter value for {cond.column}")
    if when is None:
        raise InvalidRequest(f"Invalid filter on {cond.column}: expected an ISO 8601 datetime")
    return f"{expr} {_cmp(op)} {p.time(when)}"


def array_sql(expr: str, cond: Condition, p: Params) -> str:
    op = cond.operator
    if op in NULL_OPS:
        return f"{'empty' if op == 'is null' else 'notEmpty'}({expr})"
    if op in ("=", "contains"):
        return f"has({expr}, {p.text(_string(cond))})"
    _check(cond, ARRAY_OPS, "an array")
    values = p.texts(_strings(cond))
    if op == "any of":
        return f"hasAny({expr}, {values})"
    if op == "all of":
        return f"hasAll({expr}, {values})"
    return f"NOT hasAny({expr}, {values})"


def bool_sql(expr: str, cond: Condition, p: Params) -> str:
    op = cond.operator
    if op not in ("=", "!=", "<>"):
        raise InvalidRequest(f"Invalid filter on {cond.column}: operator {op!r} does not apply to a boolean")
    return f"({expr}) {_cmp(op)} {1 if _bool(cond) else 0}"


def object_sql(expr: str, cond: Condition, p: Params) -> str:
    """A key of a JSON object stored as text (metadata), or of the text a by-key expression picks."""
    if not cond.key:
        raise InvalidRequest(f"Invalid filter on {cond.column}: 'key' is required")
    k = p.text(cond.key)
    expr = expr.replace(KEY, k)  # a by-key expression (model.metadata_by_key)
    as_string = f"if(JSONType({expr}, {k}) = 'String', JSONExtractString({expr}, {k}), JSONExtractRaw({expr}, {k}))"
    if cond.type == "numberObject" or (cond.type is None and isinstance(cond.value, int | float)
                                      and not isinstance(cond.value, bool)):
        return number_sql(f"JSONExtractFloat({expr}, {k})", cond, p)
    if cond.type == "booleanObject":
        want = "true" if _bool(cond) else "false"
        eq = f"JSONExtractRaw({expr}, {k}) = '{want}'"
        return eq if cond.operator == "=" else f"NOT ({eq})"
    if cond.operator in NULL_OPS:
        has = f"JSONHas({expr}, {k})"
        return f"NOT {has}" if cond.operator == "is null" else has
    return string_sql(as_string, cond, p, case_insensitive_match=False)


def compile_condition(cond: Condition, col: Column, p: Params, *, expr: str | None = None) -> str:
    """One condition as a boolean SQL expression over `expr` (default: the column's expression)."""
    e = expr or col.expr
    if col.kind == "string":
        return string_sql(e, cond, p)
    if col.kind == "number":
        return number_sql(e, cond, p)
    if col.kind == "datetime":
        return datetime_sql(e, cond, p)
    if col.kind == "array":
        return array_sql(e, cond, p)
    if col.kind == "bool":
        return bool_sql(e, cond, p)
    if col.kind == "object":
        return object_sql(e, cond, p)
    raise InvalidRequest(f"Invalid filter: column {cond.column!r} cannot be filtered")


def eq(column: str, value: Any) -> Condition:
    return Condition(column=column, operator="=", value=value)


def time_range(column: str, start: Any, end: Any, names: tuple[str, str] = ("start", "end")) -> list[Condition]:
    """`start <= column < end` as conditions (either bound optional; a bound is an ISO-8601 string or
    a datetime, InvalidRequest naming the parameter otherwise)."""
    out = []
    for value, name, op in ((start, names[0], ">="), (end, names[1], "<")):
        when = parse_time_param(value, name)
        if when is not None:
            out.append(Condition(column, op, when.isoformat()))
    return out
