"""JSON text helpers shared by the mappers: every JSON column holds valid JSON text."""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTS = orjson.OPT_NON_STR_KEYS
_loads = orjson.loads
_dumps = orjson.dumps
# First characters of a JSON text other than a string: object, array, number, true/false/null.
_JSON_START = frozenset('{["-0123456789tfn')


def dumps(value: Any) -> str:
    """Serialize a JSON-able value to compact JSON text (NaN/Infinity become null)."""
    try:
        return _dumps(value, option=_OPTS).decode()
    except TypeError:  # integers beyond 64 bits, lone surrogates, odd keys: fall back to the stdlib
        return json.dumps(value, default=str, separators=(",", ":"))


def json_text(value: Any) -> str | None:
    """JSON text for an input/output value that arrived as an OTel attribute.

    A string that already is JSON text is kept as sent; any other string is stored JSON-encoded
    ("hi" -> '"hi"'); other values are serialized. None stays None.
    """
    if value is None:
        return None
    if type(value) is str:
        s = value.lstrip()
        if s and s[0] in _JSON_START:
            try:
                _loads(value)
                return value
            except orjson.JSONDecodeError:
                pass
        return dumps(value)
    return dumps(value)


def value_json(value: Any) -> str | None:
    """JSON text of an already-parsed JSON value (legacy API bodies). None stays None."""
    if value is None:
        return None
    return dumps(value)




def loads_or_none(value: Any) -> Any:
    """Parse JSON text; None when it is not a string or not JSON."""
    if type(value) is not str:
        return None
    try:
        return _loads(value)
    except orjson.JSONDecodeError:
        return None
