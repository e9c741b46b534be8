"""Bounds applied to mapped rows before they are stored (owlscope.ingestion.limits)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from owlscope.ingestion.limits import (
    MAX_JSON_DEPTH,
    MAX_USAGE,
    cap_json_depth,
    clamp_rows,
    deep_dumps,
    depth_at_most,
)
from owlscope.ingestion.rows import ObservationEvent, Rows, ScoreEvent, TraceEvent

T = datetime(2025, 1, 1, tzinfo=UTC)


def nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def test_shallow_json_is_kept_byte_for_byte() -> None:
    text = '{"b": [1, 2, {"c": null}], "a": "x"}'
    assert cap_json_depth(text) is text
    assert cap_json_depth("not json [[[[") == "not json [[[["


def test_deep_json_keeps_its_first_levels_and_the_rest_as_text() -> None:
    text = deep_dumps(nested(300))
    capped = orjson.loads(cap_json_depth(text))
    assert depth_at_most(capped, MAX_JSON_DEPTH)
    node = capped
    for _ in range(MAX_JSON_DEPTH):
        node = node[0]
    assert isinstance(node, str)
    assert node == deep_dumps(nested(300 - MAX_JSON_DEPTH))


def test_deep_dumps_writes_what_orjson_writes() -> None:
    value = {"a": [1, 2.5, None, True, "é\n", {"k": []}], 3: {}}
    assert deep_dumps(value) == orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    text = deep_dumps(nested(1000))
    assert text == "[" * 1000 + '"leaf"' + "]" * 1000
    assert deep_dumps(orjson.loads(text)) == text


def test_usage_costs_times_and_score_values_are_clamped() -> None:
    rows = Rows(
        traces=[TraceEvent(project_id="p", id="t", event_ts=datetime(500, 1, 1, tzinfo=UTC),
                           timestamp=datetime(9999, 1, 1, tzinfo=UTC))],
        observations=[ObservationEvent(project_id="p", id="o", trace_id="t", event_ts=T,
                                       start_time=datetime(2025, 1, 1, 8),  # naive: read as UTC
                                       usage_details={"input": 2**63 - 1, "output": 5, "total": 2**64 * 3},
                                       cost_details={"input": float("inf"), "total": 1.5})],
        scores=[ScoreEvent(project_id="p", id="s", event_ts=T, timestamp=T, name="n", data_type="NUMERIC",
                           value=float("nan"))],
    )
    clamp_rows(rows)
    obs = rows.observations[0]
    assert obs.usage_details == {"input": MAX_USAGE, "output": 5, "total": MAX_USAGE}
    assert obs.cost_details == {"total": 1.5}
    assert obs.start_time == datetime(2025, 1, 1, 8, tzinfo=UTC) and obs.start_time.tzinfo is not None
    assert obs.event_ts is T  # in range and aware: left as it is
    assert rows.traces[0].event_ts == datetime(1900, 1, 1, tzinfo=UTC)
    assert rows.traces[0].timestamp.year == 2299
    assert rows.scores[0].value is None


def test_clamped_rows_count_the_characters_of_their_json_text() -> None:
    deep = "[" * 300 + "]" * 300
    rows = Rows(
        traces=[TraceEvent(project_id="p", id="t", event_ts=T, input='"question"', root_output="{}")],
        observations=[ObservationEvent(project_id="p", id="o", trace_id="t", event_ts=T, output=deep,
                                       metadata='{"a":1}')],
        scores=[ScoreEvent(project_id="p", id="s", event_ts=T, timestamp=T, name="n", data_type="NUMERIC",
                           value=1.0, metadata='{"k":"v"}')],
    )
    clamp_rows(rows)
    capped = rows.observations[0].output
    assert capped != deep  # the counted text is the stored (capped) text
    assert rows.text_chars == len('"question"') + 2 + len(capped) + len('{"a":1}') + len('{"k":"v"}')
    other = Rows(traces=[TraceEvent(project_id="p", id="u", event_ts=T)], text_chars=5)
    rows.extend(other)
    assert rows.text_chars == len('"question"') + 2 + len(capped) + len('{"a":1}') + len('{"k":"v"}') + 5
