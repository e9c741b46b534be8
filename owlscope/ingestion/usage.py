"""Usage and cost normalization into Langfuse's usage keys.

Clients report token usage in many shapes. Everything is flattened into one `dict[str, int]` with
Langfuse's keys, which are also the keys of the price table:

- `input`, `output`, `total`;
- details: `input_cached_tokens`, `input_cache_creation` (+ `_5m` / `_1h`), `input_audio_tokens`,
  `output_reasoning_tokens`, `output_audio_tokens`, `output_accepted_prediction_tokens`, ...;
- any other numeric key, as given.

Shapes understood:

- Langfuse: `{"input", "output", "total", <any key>}` taken as given (only the aliases below renamed).
- OpenAI Chat Completions: `prompt_tokens`, `completion_tokens`, `total_tokens`,
  `prompt_tokens_details.{cached_tokens, audio_tokens}`,
  `completion_tokens_details.{reasoning_tokens, audio_tokens, accepted_prediction_tokens, ...}`.
  Each detail becomes `input_<name>` / `output_<name>` and, because OpenAI counts the details inside
  prompt/completion tokens, is subtracted from `input` / `output` (as Langfuse does), so every token
  is counted once and the keys sum to `total`.
- OpenAI Responses: `input_tokens`, `output_tokens`, `total_tokens`, `input_tokens_details`,
  `output_tokens_details` (same rule).
- Anthropic: `input_tokens`, `output_tokens`, `cache_read_input_tokens`,
  `cache_creation_input_tokens`, `cache_creation.{ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}`.
  Anthropic's `input_tokens` already excludes cache reads and writes: nothing is subtracted, except
  that the 5m/1h split of cache creation is taken out of `input_cache_creation`.
- Gemini: `promptTokenCount` (includes `cachedContentTokenCount`, subtracted), `candidatesTokenCount`,
  `thoughtsTokenCount` (not included in candidates), `totalTokenCount`; snake_case too.
- Legacy Langfuse/OpenAI camelCase: `promptTokens`, `completionTokens`, `totalTokens`.

Values that are not numbers (strings, booleans, None, NaN) or are negative are dropped; floats are
rounded to integers. `total` is the sum of all other keys when not provided.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# Flat aliases: raw key -> Langfuse key. Keys mapped to "input"/"output"/"total" are the totals.
USAGE_ALIASES: dict[str, str] = {
    "prompt_tokens": "input",
    "input_tokens": "input",
    "promptTokens": "input",
    "inputTokens": "input",
    "prompt": "input",
    "completion_tokens": "output",
    "output_tokens": "output",
    "completionTokens": "output",
    "outputTokens": "output",
    "completion": "output",
    "total_tokens": "total",
    "totalTokens": "total",
    # cache reads (Anthropic and others): the price table's key is input_cached_tokens
    "cache_read_input_tokens": "input_cached_tokens",
    "cached_tokens": "input_cached_tokens",
    "cache_read_tokens": "input_cached_tokens",
    "input_cache_read": "input_cached_tokens",
    "cachedInputTokens": "input_cached_tokens",
    # cache writes
    "cache_creation_input_tokens": "input_cache_creation",
    "cache_write_tokens": "input_cache_creation",
    "input_cache_write": "input_cache_creation",
    # reasoning
    "reasoning_tokens": "output_reasoning_tokens",
    "output_reasoning": "output_reasoning_tokens",
    "reasoningTokens": "output_reasoning_tokens",
}

# Gemini usage_metadata (camelCase and snake_case).
_GEMINI_INPUT = ("promptTokenCount", "prompt_token_count")
_GEMINI_ALIASES: dict[str, str] = {
    "promptTokenCount": "input",
    "prompt_token_count": "input",
    "candidatesTokenCount": "output",
    "candidates_token_count": "output",
    "totalTokenCount": "total",
    "total_token_count": "total",
    "cachedContentTokenCount": "input_cached_tokens",
    "cached_content_token_count": "input_cached_tokens",
    "thoughtsTokenCount": "output_reasoning_tokens",
    "thoughts_token_count": "output_reasoning_tokens",
    "toolUsePromptTokenCount": "input_tool_use_prompt_tokens",
    "tool_use_prompt_token_count": "input_tool_use_prompt_tokens",
}

_SCALARS = frozenset({int, float, str, bool, type(None)})
_INPUT_DETAILS = ("prompt_tokens_details", "input_tokens_details")
_OUTPUT_DETAILS = ("completion_tokens_details", "output_tokens_details")


_MAX_COUNT = 2**63 - 1  # the usage columns are UInt64; stay in the signed range for safety


def to_count(value: Any) -> int | None:
    """A non-negative integer count, or None for anything else (bool, str, NaN, negative, huge...)."""
    t = type(value)
    if t is int:
        return value if 0 <= value <= _MAX_COUNT else None
    if t is float:
        if math.isfinite(value) and 0 <= value <= _MAX_COUNT:
            return int(round(value))
        return None
    if isinstance(value, int) and not isinstance(value, bool):  # int subclasses (not bool)
        return int(value) if 0 <= value <= _MAX_COUNT else None
    return None


def to_amount(value: Any) -> float | None:
    """A non-negative finite float, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    if not math.isfinite(f) or f < 0:
        return None
    return f


def normalize_usage(raw: Mapping[str, Any] | None) -> dict[str, int] | None:
    """Flatten a raw usage object into Langfuse usage keys (see the module doc). None when empty."""
    if not raw or (type(raw) is not dict and not isinstance(raw, Mapping)):
        return None

    out: dict[str, int] = {}
    aliased: dict[str, int] = {}
    in_details: dict[str, int] = {}
    out_details: dict[str, int] = {}
    cache_split: dict[str, int] = {}
    gemini = any(k in raw for k in _GEMINI_INPUT)

    for key, value in raw.items():
        tv = type(value)
        if tv is dict or (tv not in _SCALARS and isinstance(value, Mapping)):
            if key in _INPUT_DETAILS:
                _collect_details(value, "input_", in_details)
            elif key in _OUTPUT_DETAILS:
                _collect_details(value, "output_", out_details)
            elif key == "cache_creation":  # Anthropic: {"ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"}
                for sub, name in (("ephemeral_5m_input_tokens", "input_cache_creation_5m"),
                                  ("ephemeral_1h_input_tokens", "input_cache_creation_1h")):
                    n = to_count(value.get(sub))
                    if n is not None:
                        cache_split[name] = n
            continue  # other nested objects (e.g. server_tool_use) are not token counts
        n = to_count(value)
        if n is None:
            continue
        if gemini and key in _GEMINI_ALIASES:
            aliased.setdefault(_GEMINI_ALIASES[key], n)
            continue
        canonical = USAGE_ALIASES.get(key)
        if canonical is None:
            out[key] = n  # Langfuse keys and arbitrary keys win over aliases
        else:
            aliased.setdefault(canonical, n)

    for key, n in aliased.items():
        out.setdefault(key, n)

    if gemini and "input_cached_tokens" in out and "input" in out:
        # promptTokenCount includes the cached content tokens
        out["input"] = max(out["input"] - out["input_cached_tokens"], 0)

    if in_details:
        for key, n in in_details.items():
            out[key] = n
        if "input" in out:
            out["input"] = max(out["input"] - sum(in_details.values()), 0)
    if out_details:
        for key, n in out_details.items():
            out[key] = n
        if "output" in out:
            out["output"] = max(out["output"] - sum(out_details.values()), 0)
    if cache_split:
        out.update(cache_split)
        if "input_cache_creation" in out:
            out["input_cache_creation"] = max(out["input_cache_creation"] - sum(cache_split.values()), 0)

    if not out:
        return None
    if "total" not in out:
        out["total"] = sum(out.values())
    return out


_OPENAI_SHAPES = (
    (frozenset({"prompt_tokens", "completion_tokens", "total_tokens"}),
     frozenset({"prompt_tokens_details", "completion_tokens_details"})),
    (frozenset({"input_tokens", "output_tokens", "total_tokens"}),
     frozenset({"input_tokens_details", "output_tokens_details"})),
)


def sdk_usage_details(raw: Mapping[str, Any] | None) -> dict[str, int] | None:
    """`usage_details` sent through a Langfuse SDK, read as Langfuse reads them: a complete OpenAI
    usage object (Chat Completions or Responses: all three counts, optional details, nothing else)
    becomes input/output/total with the details split out; any other object keeps its keys as sent
    (numeric values only), with `total` added as their sum when absent."""
    if not raw or (type(raw) is not dict and not isinstance(raw, Mapping)):
        return None
    keys = set(raw)
    for required, optional in _OPENAI_SHAPES:
        if required <= keys <= required | optional:
            return normalize_usage(raw)
    out = {k: n for k, v in raw.items() if (n := to_count(v)) is not None}
    if not out:
        return None
    if "total" not in out:
        out["total"] = sum(out.values())
    return out


def _collect_details(details: Mapping[str, Any], prefix: str, into: dict[str, int]) -> None:
    for key, value in details.items():
        n = to_count(value)
        if n is None:
            continue
        into[key if key.startswith(prefix) else prefix + key] = n


# Legacy camelCase cost keys (Usage.inputCost etc.) and a few common spellings.
COST_ALIASES: dict[str, str] = {
    "inputCost": "input",
    "outputCost": "output",
    "totalCost": "total",
    "input_cost": "input",
    "output_cost": "output",
    "total_cost": "total",
}


def normalize_cost(raw: Mapping[str, Any] | None) -> dict[str, float] | None:
    """Cost per usage key in USD plus "total" (the sum of the others when not given). None when empty."""
    if not raw or (type(raw) is not dict and not isinstance(raw, Mapping)):
        return None
    out: dict[str, float] = {}
    aliased: dict[str, float] = {}
    for key, value in raw.items():
        f = to_amount(value)
        if f is None:
            continue
        canonical = COST_ALIASES.get(key)
        if canonical is None:
            out[key] = f
        else:
            aliased.setdefault(canonical, f)
    for key, f in aliased.items():
        out.setdefault(key, f)
    if not out:
        return None
    if "total" not in out:
        out["total"] = sum(out.values())
    return out
