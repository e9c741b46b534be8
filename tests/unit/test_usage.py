from __future__ import annotations

import math

import pytest

from owlscope.ingestion.usage import normalize_cost, normalize_usage, to_count


def _sum_without_total(u: dict[str, int]) -> int:
    return sum(v for k, v in u.items() if k != "total")


def test_openai_chat_completion_counts_cached_tokens_once():
    raw = {
        "prompt_tokens": 1000, "completion_tokens": 300, "total_tokens": 1300,
        "prompt_tokens_details": {"cached_tokens": 400, "audio_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 200, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }
    u = normalize_usage(raw)
    assert u == {
        "input": 500, "output": 100, "total": 1300,
        "input_cached_tokens": 400, "input_audio_tokens": 100,
        "output_reasoning_tokens": 200, "output_audio_tokens": 0,
        "output_accepted_prediction_tokens": 0, "output_rejected_prediction_tokens": 0,
    }
    assert _sum_without_total(u) == u["total"]


def test_openai_usage_from_the_v5_sdk_capture():
    raw = {"completion_tokens": 2, "prompt_tokens": 9, "total_tokens": 11,
           "completion_tokens_details": None, "prompt_tokens_details": None}
    assert normalize_usage(raw) == {"input": 9, "output": 2, "total": 11}


def test_openai_responses_api():
    raw = {"input_tokens": 50, "output_tokens": 30, "total_tokens": 80,
           "input_tokens_details": {"cached_tokens": 20},
           "output_tokens_details": {"reasoning_tokens": 10}}
    assert normalize_usage(raw) == {"input": 30, "output": 20, "total": 80,
                                    "input_cached_tokens": 20, "output_reasoning_tokens": 10}


def test_anthropic_cache_tokens_are_separate_from_input():
    raw = {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100,
           "cache_creation_input_tokens": 40,
           "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 10},
           "server_tool_use": {"web_search_requests": 1}, "service_tier": "standard"}
    u = normalize_usage(raw)
    assert u == {"input": 10, "output": 5, "input_cached_tokens": 100, "input_cache_creation": 0,
                 "input_cache_creation_5m": 30, "input_cache_creation_1h": 10, "total": 155}


def test_langfuse_style_keys_are_kept_and_total_is_the_sum():
    # the v5 capture's generation: {"input": 10, "output": 5, "cache_read_input_tokens": 2}
    assert normalize_usage({"input": 10, "output": 5, "cache_read_input_tokens": 2}) == {
        "input": 10, "output": 5, "input_cached_tokens": 2, "total": 17}
    assert normalize_usage({"input": 3}) == {"input": 3, "total": 3}
    assert normalize_usage({"input": 1, "output": 2, "total": 10}) == {"input": 1, "output": 2, "total": 10}
    assert normalize_usage({"input": 1, "images": 4}) == {"input": 1, "images": 4, "total": 5}


def test_langfuse_keys_win_over_aliases():
    assert normalize_usage({"prompt_tokens": 7, "input": 5, "output": 1}) == {"input": 5, "output": 1, "total": 6}


def test_legacy_camel_case():
    assert normalize_usage({"promptTokens": 3, "completionTokens": 4, "totalTokens": 7}) == {
        "input": 3, "output": 4, "total": 7}


def test_gemini_usage_metadata():
    raw = {"promptTokenCount": 100, "candidatesTokenCount": 20, "thoughtsTokenCount": 5,
           "cachedContentTokenCount": 60, "totalTokenCount": 125}
    assert normalize_usage(raw) == {"input": 40, "output": 20, "output_reasoning_tokens": 5,
                                    "input_cached_tokens": 60, "total": 125}


def test_drops_non_numeric_negative_and_nan_values():
    raw = {"input": 5, "output": -3, "x": "12", "y": None, "z": True, "w": math.nan, "f": 2.6}
    assert normalize_usage(raw) == {"input": 5, "f": 3, "total": 8}


@pytest.mark.parametrize("raw", [None, {}, {"input": None}, {"a": "b"}, "not a dict", []])
def test_empty_usage_is_none(raw):
    assert normalize_usage(raw) is None


def test_details_never_drive_input_negative():
    assert normalize_usage({"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 9}})["input"] == 0


def test_to_count():
    assert to_count(3) == 3
    assert to_count(3.4) == 3
    assert to_count(-1) is None
    assert to_count(False) is None
    assert to_count("3") is None


def test_normalize_cost():
    assert normalize_cost({"input": 0.001, "output": 0.002, "total": 0.003}) == {
        "input": 0.001, "output": 0.002, "total": 0.003}
    c = normalize_cost({"input": 1, "output": 0.5})
    assert c == {"input": 1.0, "output": 0.5, "total": 1.5}
    assert normalize_cost({"inputCost": 0.1, "outputCost": 0.2, "totalCost": 0.3}) == {
        "input": 0.1, "output": 0.2, "total": 0.3}
    assert normalize_cost({"input": -1, "output": "x", "z": None}) is None
    assert normalize_cost(None) is None
    assert normalize_cost({}) is None
