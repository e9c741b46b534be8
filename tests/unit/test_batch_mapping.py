from __future__ import annotations

import dataclasses
import itertools
import json
import random
import uuid
from datetime import UTC, datetime

import pytest

from otlp_builders import CAPTURE_V4, load_capture
from owlscope.ingestion.batch import map_batch_events, parse_ingestion_request, validate_batch
from owlscope.ingestion.errors import InvalidPayload
from owlscope.ingestion.rows import ObservationEvent, TraceEvent

T = "6f1c2a4e8b0d4f3a9c1e2b3d4f5a6b7c"


def ts(sec: int, ms: int = 0) -> str:
    return datetime(2026, 3, 1, 10, 0, sec, ms * 1000, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def dt(sec: int, ms: int = 0) -> datetime:
    return datetime(2026, 3, 1, 10, 0, sec, ms * 1000, tzinfo=UTC)


def ev(eid: str, etype: str, at: str, body: dict) -> dict:
    return {"id": eid, "type": etype, "timestamp": at, "body": body}


# --- the engine's merge, emulated: argMaxIf(field, event_ts, field IS NOT NULL) -----------------


def _merge(rows: list, *, keep_min: tuple[str, ...] = (), union: tuple[str, ...] = (),
           any_true: tuple[str, ...] = ()) -> dict[str, dict]:
    merged: dict[str, dict] = {}
    for row in rows:
        merged.setdefault(row.id, {})
    for rid in merged:
        pieces = [r for r in rows if r.id == rid]
        out: dict = {}
        for f in dataclasses.fields(pieces[0]):
            name = f.name
            values = [(p.event_ts, getattr(p, name)) for p in pieces if getattr(p, name) is not None]
            if name in union:
                out[name] = sorted({t for _, v in values for t in v})
            elif name in any_true:
                out[name] = any(v for _, v in values) if values else None
            elif name in keep_min:
                out[name] = min((v for _, v in values), default=None)
            elif values:
                latest = max(t for t, _ in values)
                candidates = {json.dumps(v, sort_keys=True, default=str) for t, v in values if t == latest}
                assert len(candidates) == 1, f"{rid}.{name}: different values at the same event_ts"
                out[name] = next(v for t, v in values if t == latest)
            else:
                out[name] = None
        out.pop("event_ts")
        merged[rid] = out
    return merged


def merge_observation_events(rows: list[ObservationEvent]) -> dict[str, dict]:
    return _merge(rows)


def merge_trace_events(rows: list[TraceEvent]) -> dict[str, dict]:
    return _merge(rows, keep_min=("timestamp",), union=("tags",), any_true=("public",))


# --- fixtures --------------------------------------------------------------------------------------


def legacy_events() -> list[dict]:
    """A trace with a span, a generation and an event, sent as creates and updates (SDK v2 style)."""
    return [
        ev("e01", "trace-create", ts(0), {"id": T, "timestamp": ts(0), "name": "chat", "userId": "u1",
                                          "sessionId": "s1", "tags": ["a"], "metadata": {"k": 1},
                                          "input": {"q": "hi"}, "release": "r1", "version": "v1",
                                          "environment": "prod"}),
        ev("e02", "span-create", ts(1), {"id": "span-1", "traceId": T, "name": "retrieve",
                                         "startTime": ts(1), "input": "query text", "metadata": {"a": 1},
                                         "environment": "prod"}),
        ev("e03", "generation-create", ts(2), {
            "id": "gen-1", "traceId": T, "parentObservationId": "span-1", "name": "llm",
            "startTime": ts(2), "model": "gpt-4o", "modelParameters": {"temperature": 0.2, "stop": ["x"]},
            "input": [{"role": "user", "content": "hi"}], "promptName": "p", "promptVersion": 3,
            "environment": "prod"}),
        ev("e04", "generation-update", ts(3), {
            "id": "gen-1", "traceId": T, "endTime": ts(3), "completionStartTime": ts(2, 500),
            "output": {"role": "assistant", "content": "hello"},
            "usage": {"input": 10, "output": 5, "total": 15, "unit": "TOKENS", "inputCost": 0.01,
                      "outputCost": 0.02}}),
        ev("e05", "span-update", ts(4), {"id": "span-1", "traceId": T, "endTime": ts(4), "output": ["doc"],
                                         "level": "warning", "statusMessage": "slow"}),
        ev("e06", "event-create", ts(5), {"id": "ev-1", "traceId": T, "name": "click", "startTime": ts(5)}),
        ev("e07", "trace-create", ts(6), {"id": T, "output": {"a": "hello"}, "tags": ["b"], "public": True}),
        ev("e08", "generation-update", ts(7), {"id": "gen-1", "traceId": T, "level": "ERROR",
                                               "statusMessage": "late failure"}),
        ev("e09", "score-create", ts(8), {"id": "sc-1", "traceId": T, "name": "q", "value": 1}),
        ev("e10", "sdk-log", ts(9), {"log": {"msg": "hello"}}),
    ]


def test_validate_accepts_well_formed_events():
    accepted, errors = validate_batch(legacy_events())
    assert errors == []
    assert [e["id"] for e in accepted] == [f"e{i:02d}" for i in range(1, 11)]
    score = accepted[8]["body"]
    assert score["dataType"] == "NUMERIC" and score["timestamp"] == "2026-03-01T10:00:08.000000Z"


def test_map_legacy_events():
    accepted, _ = validate_batch(legacy_events())
    rows = map_batch_events(accepted, "proj")
    assert len(rows.traces) == 2 and len(rows.observations) == 6 and len(rows.scores) == 1

    obs = merge_observation_events(rows.observations)
    gen = obs["gen-1"]
    assert gen["type"] == "GENERATION"
    assert gen["trace_id"] == T and gen["parent_observation_id"] == "span-1"
    assert (gen["start_time"], gen["end_time"], gen["completion_start_time"]) == (dt(2), dt(3), dt(2, 500))
    assert gen["model"] == "gpt-4o"
    assert json.loads(gen["model_parameters"]) == {"temperature": 0.2, "stop": ["x"]}
    assert json.loads(gen["input"]) == [{"role": "user", "content": "hi"}]
    assert json.loads(gen["output"]) == {"role": "assistant", "content": "hello"}
    assert gen["usage_details"] == {"input": 10, "output": 5, "total": 15}
    assert gen["cost_details"] == pytest.approx({"input": 0.01, "output": 0.02, "total": 0.03})
    assert gen["provided_cost"] is True
    assert (gen["prompt_name"], gen["prompt_version"], gen["prompt_id"]) == ("p", 3, None)
    assert (gen["level"], gen["status_message"]) == ("ERROR", "late failure")
    assert gen["environment"] == "prod"

    span = obs["span-1"]
    assert span["type"] == "SPAN" and span["name"] == "retrieve"
    assert span["input"] == '"query text"'
    assert json.loads(span["output"]) == ["doc"]
    assert (span["level"], span["status_message"], span["end_time"]) == ("WARNING", "slow", dt(4))
    assert json.loads(span["metadata"]) == {"a": 1}

    event = obs["ev-1"]
    assert (event["type"], event["name"], event["start_time"], event["environment"]) == (
        "EVENT", "click", dt(5), "default")

    trace = merge_trace_events(rows.traces)[T]
    assert trace["name"] == "chat" and trace["user_id"] == "u1" and trace["session_id"] == "s1"
    assert trace["tags"] == ["a", "b"] and trace["public"] is True
    assert trace["timestamp"] == dt(0)
    assert json.loads(trace["input"]) == {"q": "hi"} and json.loads(trace["output"]) == {"a": "hello"}
    assert json.loads(trace["metadata"]) == {"k": 1}
    assert (trace["release"], trace["version"]) == ("r1", "v1")
    assert trace["environment"] == "prod"  # the later trace-create (an update) does not reset it

    score = rows.scores[0]
    assert (score.id, score.trace_id, score.value, score.event_ts) == ("sc-1", T, 1.0, dt(8))


def test_updates_carry_only_their_fields():
    accepted, _ = validate_batch(legacy_events())
    rows = map_batch_events(accepted, "proj")
    update = next(o for o in rows.observations if o.id == "gen-1" and o.event_ts == dt(7))
    assert update.type is None and update.name is None and update.start_time is None
    assert update.environment is None and update.model is None and update.usage_details is None
    assert update.level == "ERROR"


def test_out_of_order_events_merge_to_the_same_record():
    accepted, _ = validate_batch(legacy_events())
    expected_obs = merge_observation_events(map_batch_events(accepted, "proj").observations)
    expected_traces = merge_trace_events(map_batch_events(accepted, "proj").traces)
    rnd = random.Random(42)
    orders = [list(reversed(accepted))] + [rnd.sample(accepted, len(accepted)) for _ in range(20)]
    for order in orders:
        rows = map_batch_events(order, "proj")
        assert merge_observation_events(rows.observations) == expected_obs
        assert merge_trace_events(rows.traces) == expected_traces


def test_update_before_create_in_all_orders():
    events = [
        ev("a", "span-create", ts(1), {"id": "o", "traceId": T, "name": "first", "startTime": ts(1)}),
        ev("b", "span-update", ts(2), {"id": "o", "traceId": T, "name": "renamed", "endTime": ts(3)}),
        ev("c", "span-update", ts(4), {"id": "o", "traceId": T, "output": "done"}),
    ]
    accepted, errors = validate_batch(events)
    assert errors == []
    results = {json.dumps(merge_observation_events(map_batch_events(list(p), "proj").observations),
                          default=str, sort_keys=True)
               for p in itertools.permutations(accepted)}
    assert len(results) == 1
    merged = merge_observation_events(map_batch_events(accepted, "proj").observations)["o"]
    assert (merged["name"], merged["type"], merged["end_time"], merged["output"]) == (
        "renamed", "SPAN", dt(3), '"done"')


def test_mapping_is_deterministic():
    accepted, _ = validate_batch(legacy_events())
    assert map_batch_events(accepted, "p") == map_batch_events(accepted, "p")


def test_missing_ids_are_generated_once_at_validation():
    events = [ev("e1", "span-create", ts(1), {"traceId": T, "name": "x"}),
              ev("e2", "trace-create", ts(1), {"name": "t"})]
    accepted, errors = validate_batch(events)
    assert errors == []
    span_id, trace_id = accepted[0]["body"]["id"], accepted[1]["body"]["id"]
    assert uuid.UUID(span_id) and uuid.UUID(trace_id)
    rows1, rows2 = map_batch_events(accepted, "p"), map_batch_events(accepted, "p")
    assert rows1 == rows2
    assert rows1.observations[0].id == span_id and rows1.traces[0].id == trace_id


def test_observation_without_trace_id_is_an_error():
    accepted, errors = validate_batch([ev("e1", "generation-create", ts(1), {"id": "g", "name": "x"}),
                                       ev("e2", "span-update", ts(1), {"id": "s"})])
    assert accepted == []
    assert [e["id"] for e in errors] == ["e1", "e2"]
    for e in errors:
        assert e["status"] == 400 and "traceId is required" in e["message"] and e["error"]


@pytest.mark.parametrize(("event", "message"), [
    (ev("x", "bogus-create", ts(1), {}), "unknown event type 'bogus-create'"),
    ({"id": "x", "type": "trace-create", "body": {}}, "timestamp: Field required"),
    (ev("x", "trace-create", "yesterday", {}), "invalid datetime 'yesterday'"),
    ({"id": "x", "type": "trace-create", "timestamp": ts(1)}, "body: Field required"),
    (ev("x", "trace-create", ts(1), {"tags": "a"}), "body.tags"),
    (ev("x", "span-update", ts(1), {"traceId": T}), "body.id"),
    (ev("x", "span-create", ts(1), {"traceId": T, "level": "LOUD"}), "body.level: must be one of"),
    (ev("x", "span-create", ts(1), {"traceId": T, "startTime": "noon"}), "body.startTime"),
    (ev("x", "generation-create", ts(1), {"traceId": T, "promptVersion": "3"}), "body.promptVersion"),
    (ev("x", "generation-create", ts(1), {"traceId": T, "usage": {"input": "ten"}}), "body.usage.input"),
    (ev("x", "observation-create", ts(1), {"traceId": T, "type": "BOGUS"}), "body.type"),
    (ev("x", "score-create", ts(1), {"traceId": T, "value": 1}), "name"),
    (ev("x", "sdk-log", ts(1), {}), "body.log"),
])
def test_invalid_events(event, message):
    accepted, errors = validate_batch([event])
    assert accepted == []
    assert len(errors) == 1
    assert errors[0]["id"] == "x" and errors[0]["status"] == 400
    assert message in errors[0]["message"], errors[0]["message"]


def test_errors_do_not_reject_the_rest_of_the_batch():
    accepted, errors = validate_batch([ev("ok", "trace-create", ts(1), {"id": T}), "junk",
                                       {"type": "trace-create"}])
    assert [e["id"] for e in accepted] == ["ok"]
    assert [e["id"] for e in errors] == ["unknown", "unknown"]


def test_sdk_log_is_accepted_and_produces_no_rows():
    accepted, errors = validate_batch([ev("l", "sdk-log", ts(1), {"log": "hi"})])
    assert errors == [] and len(accepted) == 1
    assert len(map_batch_events(accepted, "p")) == 0


@pytest.mark.parametrize(("etype", "otype"), [
    ("agent-create", "AGENT"), ("tool-create", "TOOL"), ("chain-create", "CHAIN"),
    ("retriever-create", "RETRIEVER"), ("evaluator-create", "EVALUATOR"), ("embedding-create", "EMBEDDING"),
    ("guardrail-create", "GUARDRAIL"), ("event-create", "EVENT"), ("span-create", "SPAN"),
    ("generation-create", "GENERATION"),
])
def test_typed_create_events(etype, otype):
    accepted, errors = validate_batch([ev("e", etype, ts(1), {"id": "o", "traceId": T})])
    assert errors == []
    (row,) = map_batch_events(accepted, "p").observations
    assert row.type == otype and row.start_time == dt(1) and row.environment == "default"


def test_legacy_observation_create_and_update():
    events = [ev("e1", "observation-create", ts(1), {"id": "o", "traceId": T, "type": "generation",
                                                      "usage": {"promptTokens": 3, "completionTokens": 4}}),
              ev("e2", "observation-update", ts(2), {"id": "o", "traceId": T, "type": "GENERATION",
                                                      "endTime": ts(2)})]
    accepted, errors = validate_batch(events)
    assert errors == []
    rows = map_batch_events(accepted, "p")
    assert [r.type for r in rows.observations] == ["GENERATION", "GENERATION"]
    assert rows.observations[0].usage_details == {"input": 3, "output": 4, "total": 7}
    assert rows.observations[1].start_time is None and rows.observations[1].end_time == dt(2)


def test_usage_details_and_cost_details_win_over_legacy_usage():
    body = {"id": "g", "traceId": T,
            "usage": {"input": 1, "output": 1, "inputCost": 9.0},
            "usageDetails": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                             "prompt_tokens_details": {"cached_tokens": 40}},
            "costDetails": {"input": 0.5, "output": 0.25}}
    accepted, errors = validate_batch([ev("e", "generation-create", ts(1), body)])
    assert errors == []
    (row,) = map_batch_events(accepted, "p").observations
    assert row.usage_details == {"input": 60, "output": 20, "total": 120, "input_cached_tokens": 40}
    assert row.cost_details == {"input": 0.5, "output": 0.25, "total": 0.75}
    assert row.provided_cost is True


def test_generation_without_cost_has_no_provided_cost():
    accepted, _ = validate_batch([ev("e", "generation-create", ts(1), {"id": "g", "traceId": T, "model": "m",
                                                                      "usage": {"input": 2, "output": 3}})])
    (row,) = map_batch_events(accepted, "p").observations
    assert row.usage_details == {"input": 2, "output": 3, "total": 5}
    assert row.cost_details is None and row.provided_cost is None


def test_non_object_metadata_is_wrapped():
    accepted, _ = validate_batch([ev("e", "trace-create", ts(1), {"id": T, "metadata": "just text"})])
    (row,) = map_batch_events(accepted, "p").traces
    assert json.loads(row.metadata) == {"metadata": "just text"}


def test_trace_timestamp_defaults_to_the_event_timestamp():
    accepted, _ = validate_batch([ev("e", "trace-create", ts(5), {"id": T})])
    (row,) = map_batch_events(accepted, "p").traces
    assert row.timestamp == dt(5) and row.event_ts == dt(5)
    assert row.name is None and row.input is None and row.tags == [] and row.public is None
    assert row.environment is None  # unset: read as "default"


def test_v4_sdk_ingestion_capture():
    request = next(r for r in load_capture(CAPTURE_V4) if r["path"] == "/api/public/ingestion")
    batch, metadata = parse_ingestion_request(request["json"])
    assert metadata["sdk_version"] == "4.14.3"
    accepted, errors = validate_batch(batch)
    assert errors == [] and len(accepted) == 7
    rows = map_batch_events(accepted, "proj")
    assert len(rows.scores) == 7 and not rows.traces and not rows.observations
    by_name = {s.name: s for s in rows.scores}
    assert by_name["gen-score"].observation_id == "576f5faef2ed97fa"
    assert by_name["gen-score"].event_ts == datetime(2026, 11, 27, 8, 29, 26, 119226, tzinfo=UTC)
    assert by_name["gen-score"].timestamp == by_name["gen-score"].event_ts
    assert (by_name["trace-bool"].data_type, by_name["trace-bool"].string_value) == ("BOOLEAN", "True")
    assert (by_name["trace-cat"].data_type, by_name["trace-cat"].string_value) == ("CATEGORICAL", "good")
    assert by_name["session-score"].session_id == "sess-1"
    assert by_name["trace-score-text"].data_type == "TEXT"
    assert json.loads(by_name["trace-score-text"].metadata) == {"k": "v"}


@pytest.mark.parametrize("payload", [None, [], {"batch": {}}, {"nobatch": []}])
def test_parse_ingestion_request_rejects_bad_envelopes(payload):
    with pytest.raises(InvalidPayload):
        parse_ingestion_request(payload)


def test_rows_convert_to_arrow_tables():
    from owlscope.ingestion.rows import observations_table, scores_table, traces_table

    accepted, _ = validate_batch(legacy_events())
    rows = map_batch_events(accepted, "p")
    assert observations_table(rows.observations).num_rows == 6
    assert traces_table(rows.traces).num_rows == 2
    assert scores_table(rows.scores).num_rows == 1


def test_lone_surrogates_still_give_valid_json_text():
    accepted, errors = validate_batch([ev("e", "span-create", ts(1), {"id": "o", "traceId": T,
                                                                      "input": "bad \ud800 char"})])
    assert errors == []
    (row,) = map_batch_events(accepted, "p").observations
    assert json.loads(row.input) == "bad \ud800 char"
    row.input.encode("utf-8")  # storable
