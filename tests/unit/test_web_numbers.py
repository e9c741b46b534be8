"""The UI's one number format (owlscope/web/numbers.py), used as Jinja filters on every page; the
browser test checks that owlscope.js's Owlscope.format gives the same text for the same values."""

from __future__ import annotations

import math

import pytest

from owlscope.web import numbers
from owlscope.web.templating import build_templates

# (value, text) pairs; tests/e2e/test_browser_ui.py feeds the same pairs to the JavaScript side.
COSTS = [
    (None, "—"), (0, "$0"), (0.00033975, "$0.00034"), (0.0107, "$0.0107"), (0.5, "$0.5"), (0.123456, "$0.123"),
    (0.0000012345, "$0.00000123"), (0.9996, "$1.00"), (1, "$1.00"), (12.345, "$12.35"), (1234.5, "$1,234.50"),
    (-0.0042, "-$0.0042"), (math.inf, "—"),
]
DURATIONS = [
    (None, "—"), (-1, "—"), (0, "0ms"), (0.0423, "42ms"), (0.9994, "999ms"), (0.9996, "1.00s"), (1, "1.00s"),
    (2.5, "2.50s"), (59.99, "59.99s"), (75, "1m 15s"), (4000, "1h 6m"), (90061, "1d 1h"),
]
NUMBERS = [
    (None, ""), (0, "0"), (1234, "1,234"), (1234.0, "1,234"), (1234.5, "1,234.5"), (0.25, "0.25"),
    (1 / 3, "0.3333"), (0.1 + 0.2, "0.3"), (-1234567, "-1,234,567"), (1e-9, "0"),
]
COMPACT = [(None, "—"), (999, "999"), (12345, "12,345"), (1234567, "1.23M"), (2.5e9, "2.50B"), (0.126, "0.13")]


@pytest.mark.parametrize(("value", "text"), COSTS)
def test_cost_has_three_significant_digits_below_a_dollar(value, text) -> None:
    assert numbers.cost(value) == text


@pytest.mark.parametrize(("value", "text"), DURATIONS)
def test_duration_is_ms_below_a_second_and_seconds_above(value, text) -> None:
    assert numbers.duration(value) == text


@pytest.mark.parametrize(("value", "text"), NUMBERS)
def test_number_has_thousands_separators_and_no_trailing_zeros(value, text) -> None:
    assert numbers.number(value) == text


@pytest.mark.parametrize(("value", "text"), COMPACT)
def test_compact(value, text) -> None:
    assert numbers.compact(value) == text


def test_number_digits() -> None:
    assert numbers.number(2 / 3, 2) == "0.67"
    assert numbers.number(1234.56789, 1) == "1,234.6"


def test_the_templates_use_the_same_filters() -> None:
    env = build_templates().env
    out = env.from_string("{{ a|cost }} {{ b|duration }} {{ c|number }} {{ d|compact }}").render(
        a=0.00033975, b=1.5, c=12345.678, d=2_000_000)
    assert out == "$0.00034 1.50s 12,345.678 2.00M"
