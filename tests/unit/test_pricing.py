"""Model matching and cost computation against real rows of the shipped price table."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from owlscope.ingestion.pricing import (
    PRICES_FILE,
    ModelPrice,
    PriceBook,
    load_default_models,
)


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook(load_default_models())


def _model(models: list[ModelPrice], name: str) -> ModelPrice:
    return next(m for m in models if m.model_name == name)


def test_packaged_table_loads_every_row() -> None:
    raw = json.loads(PRICES_FILE.read_text())
    models = load_default_models()
    assert len(models) == len(raw) > 100
    assert all(m.project_id is None for m in models)
    assert all(m.default_tier is not None for m in models)
    gpt4o = _model(models, "gpt-4o")
    assert gpt4o.id == "b9854a5c92dc496b997d99d20"
    assert gpt4o.tokenizer_id == "openai"
    assert gpt4o.tokenizer_config == {"tokenizerModel": "gpt-4o", "tokensPerMessage": 3, "tokensPerName": 1}
    # cached: the same objects each call, but a fresh list the caller may extend
    again = load_default_models()
    assert again is not models and again[0] is models[0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        ("openai/gpt-4o", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929"),
        ("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"),
        ("models/gemini-2.5-pro-x", None),
        ("googleai/gemini-2.5-pro", "gemini-2.5-pro"),
        ("ft:gpt-3.5-turbo-0613:acme::abc123", "ft:gpt-3.5-turbo-0613"),
    ],
)
def test_match_by_pattern(book: PriceBook, name: str, expected: str | None) -> None:
    m = book.match(name)
    assert (m.model_name if m else None) == expected


def test_gpt4o_cost_per_usage_key(book: PriceBook) -> None:
    usage = {"input": 1000, "output": 500, "total": 1500}
    cost, model_id = book.compute_cost("gpt-4o", usage, None)
    assert model_id == "b9854a5c92dc496b997d99d20"
    # $2.50 / 1M input, $10 / 1M output; the usage "total" has no price for this model
    assert cost == {"input": 0.0025, "output": 0.005, "total": 0.0075}


def test_cached_keys_priced_with_their_own_price(book: PriceBook) -> None:
    usage = {"input": 800, "input_cached_tokens": 200, "output": 100, "output_reasoning_tokens": 50}
    cost, _ = book.compute_cost("gpt-4o", usage, None)
    assert cost is not None
    assert cost["input"] == pytest.approx(800 * 2.5e-06)
    assert cost["input_cached_tokens"] == pytest.approx(200 * 1.25e-06)  # half the input price
    assert cost["output"] == pytest.approx(100 * 1e-05)
    assert "output_reasoning_tokens" not in cost  # gpt-4o has no price for it: contributes nothing
    assert cost["total"] == pytest.approx(800 * 2.5e-06 + 200 * 1.25e-06 + 100 * 1e-05)


def test_claude_cost_with_cache_reads_and_writes(book: PriceBook) -> None:
    usage = {"input": 1000, "output": 200, "input_cache_read": 10_000, "input_cache_creation": 2_000}
    result = book.price("anthropic/claude-sonnet-4-5", usage)
    assert result.model is not None and result.model.model_name == "claude-sonnet-4-5-20250929"
    assert result.tier_name == "Standard"
    assert result.cost_details == {
        "input": pytest.approx(0.003),
        "output": pytest.approx(0.003),
        "input_cache_read": pytest.approx(0.003),
        "input_cache_creation": pytest.approx(0.0075),
        "total": pytest.approx(0.0165),
    }


def test_model_priced_by_total(book: PriceBook) -> None:
    # embedding models carry one price for "total"; without a usage total it is the sum of the usage
    cost, model_id = book.compute_cost("text-embedding-3-small", {"input": 1_000_000}, None)
    assert model_id is not None
    assert cost == {"total": pytest.approx(0.02)}
    cost, _ = book.compute_cost("text-embedding-3-small", {"input": 10, "total": 2_000_000}, None)
    assert cost == {"total": pytest.approx(0.04)}


def test_large_context_tier_for_gemini(book: PriceBook) -> None:
    small = book.price("gemini-2.5-pro", {"input": 200_000, "output": 1_000})
    assert small.tier_name == "Standard"  # "gt 200000": exactly 200k is not large
    assert small.cost_details == {
        "input": pytest.approx(0.25),
        "output": pytest.approx(0.01),
        "total": pytest.approx(0.26),
    }

    large = book.price("gemini-2.5-pro", {"input": 200_001, "output": 1_000})
    assert large.tier_name == "Large Context"
    assert large.cost_details is not None
    assert large.cost_details["input"] == pytest.approx(200_001 * 2.5e-06)
    assert large.cost_details["output"] == pytest.approx(1_000 * 1.5e-05)

    # the condition sums every usage key matching (input|prompt|cached)
    summed = book.price("gemini-2.5-pro", {"input": 150_000, "input_cached_tokens": 60_000, "output": 10})
    assert summed.tier_name == "Large Context"
    assert summed.cost_details is not None
    assert summed.cost_details["input_cached_tokens"] == pytest.approx(60_000 * 2.5e-07)


def test_attribute_tiers_in_priority_order(book: PriceBook) -> None:
    # gpt-5.6-sol: 1 fast+large, 2 flex+large, 3 fast, 4 flex, 5 large, default Standard
    big, small = {"input": 300_000, "output": 10}, {"input": 1_000, "output": 10}
    cases = [
        (big, {"service_tier": "priority"}, "Fast mode · Large context (>272K)"),
        (big, {"service_tier": "flex"}, "Flex · Large context (>272K)"),
        (small, {"service_tier": "fast"}, "Fast mode"),
        (small, {"service_tier": "flex"}, "Flex"),
        (big, None, "Large Context (>272K)"),
        (big, {"service_tier": "default"}, "Large Context (>272K)"),
        (small, None, "Standard"),
        (small, {"temperature": 0.2}, "Standard"),
    ]
    for usage, params, tier in cases:
        assert book.price("gpt-5.6-sol", usage, model_parameters=params).tier_name == tier, (usage, params)
    # model parameters as stored on the observation: JSON object text
    flex = book.price("o3", {"input": 1_000_000}, model_parameters='{"service_tier": "flex"}')
    assert flex.tier_name == "Flex"
    assert flex.cost_details == {"input": pytest.approx(1.0), "total": pytest.approx(1.0)}


def test_provided_cost_wins(book: PriceBook) -> None:
    usage = {"input": 1000, "output": 500}
    cost, model_id = book.compute_cost("gpt-4o", usage, {"input": 0.5, "output": 0.25})
    assert cost == {"input": 0.5, "output": 0.25, "total": 0.75}
    assert model_id == "b9854a5c92dc496b997d99d20"  # still linked to its model
    cost, _ = book.compute_cost("gpt-4o", usage, {"input": 0.5, "total": 2.0})
    assert cost == {"input": 0.5, "total": 2.0}  # a provided total is kept as given
    cost, model_id = book.compute_cost("no-such-model", usage, {"total": 1.5})
    assert (cost, model_id) == ({"total": 1.5}, None)
    result = book.price("gpt-4o", usage, {"total": 1.0})
    assert result.provided and result.tier is None
    # empty / non-numeric provided cost: computed from usage instead
    computed, _ = book.compute_cost("gpt-4o", usage, {"input": None})
    assert computed == {"input": 0.0025, "output": 0.005, "total": 0.0075}
    assert book.compute_cost("gpt-4o", usage, {})[0] == computed


def test_no_match_or_no_usage(book: PriceBook) -> None:
    assert book.compute_cost("my-local-llama", {"input": 10}, None) == (None, None)
    assert book.compute_cost(None, {"input": 10}, None) == (None, None)
    assert book.compute_cost("", None, None) == (None, None)
    gpt4o_id = "b9854a5c92dc496b997d99d20"
    assert book.compute_cost("gpt-4o", None, None) == (None, gpt4o_id)
    assert book.compute_cost("gpt-4o", {}, None) == (None, gpt4o_id)
    # usage keys without any price: unknown cost, not zero
    assert book.compute_cost("gpt-4o", {"images": 3}, None) == (None, gpt4o_id)
    # zero usage of priced keys costs zero
    assert book.compute_cost("gpt-4o", {"input": 0}, None) == ({"input": 0.0, "total": 0.0}, gpt4o_id)


def _custom(model_id: str, pattern: str, prices: dict[str, float], **extra: object) -> ModelPrice:
    raw = {"id": model_id, "modelName": model_id, "matchPattern": pattern, "prices": prices, **extra}
    return ModelPrice.from_dict(raw, project_id="proj-1")


def test_project_model_overrides_global() -> None:
    mine = _custom("my-gpt-4o", "(?i)^(openai/)?(gpt-4o)$", {"input": 1e-06, "output": 2e-06})
    book = PriceBook(load_default_models(), project_models=[mine])
    cost, model_id = book.compute_cost("gpt-4o", {"input": 1000, "output": 1000}, None)
    assert model_id == "my-gpt-4o"
    assert cost == {"input": 0.001, "output": 0.002, "total": 0.003}
    # other models still come from the global table
    assert book.match("gpt-4o-mini").model_name == "gpt-4o-mini"
    # another project's book is not affected
    assert PriceBook(load_default_models()).match("gpt-4o").id == "b9854a5c92dc496b997d99d20"


def test_newest_start_date_wins() -> None:
    old = _custom("v1", "(?i)^acme-1$", {"input": 1.0}, startDate="2024-01-01T00:00:00Z")
    new = _custom("v2", "(?i)^acme-1$", {"input": 2.0}, startDate="2025-01-01T00:00:00Z")
    undated = _custom("v0", "(?i)^acme-1$", {"input": 0.5})
    book = PriceBook([], project_models=[undated, old, new])
    assert book.match("acme-1").id == "v2"
    assert [m.id for m in book.candidates("acme-1")] == ["v2", "v1", "v0"]
    # with the observation's time: models that start later do not apply yet
    assert book.match("acme-1", at=datetime(2024, 6, 1, tzinfo=UTC)).id == "v1"
    assert book.match("acme-1", at=datetime(2023, 6, 1)).id == "v0"  # naive: UTC
    assert book.compute_cost("acme-1", {"input": 3}, None, at=datetime(2024, 6, 1, tzinfo=UTC)) == (
        {"input": 3.0, "total": 3.0},
        "v1",
    )
    only_dated = PriceBook([], project_models=[old])
    assert only_dated.match("acme-1", at=datetime(2023, 1, 1, tzinfo=UTC)) is None


def test_legacy_flat_prices_and_api_shape() -> None:
    m = ModelPrice.from_dict(
        {
            "id": "m1",
            "modelName": "acme",
            "matchPattern": "(?i)^acme$",
            "inputPrice": 1e-06,
            "outputPrice": 3e-06,
            "unit": "TOKENS",
            "tokenizerConfig": '{"tokenizerModel": "gpt-4"}',
        },
        project_id="p",
    )
    assert m.prices == {"input": 1e-06, "output": 3e-06}
    assert m.tokenizer_config == {"tokenizerModel": "gpt-4"}
    api = m.to_dict()
    assert api["inputPrice"] == 1e-06 and api["totalPrice"] is None
    assert api["prices"] == {"input": {"price": 1e-06}, "output": {"price": 3e-06}}
    assert api["isLangfuseManaged"] is False
    assert api["pricingTiers"][0]["isDefault"] is True
    # the API's ModelPrice objects ({"price": x}) are accepted too
    again = ModelPrice.from_dict({**api, "pricingTiers": [], "prices": api["prices"]}, project_id="p")
    assert again.prices == m.prices
    # the shipped rows round-trip through the API shape
    gemini = _model(load_default_models(), "gemini-2.5-pro")
    assert ModelPrice.from_dict(gemini.to_dict()).pricing_tiers == gemini.pricing_tiers


def test_lookups_are_cached() -> None:
    book = PriceBook(load_default_models(), cache_size=8)
    for _ in range(100):
        book.compute_cost("gpt-4o", {"input": 1}, None)
        book.compute_cost("unknown-model", {"input": 1}, None)
    info = book.cache_info()
    assert info.misses == 2 and info.hits == 198
    for i in range(20):  # bounded: old names are evicted
        book.match(f"model-{i}")
    assert book.cache_info().currsize == 8
