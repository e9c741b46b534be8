from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from otlp_builders import CAPTURE_V5, load_capture
from owlscope.ingestion.errors import InvalidPayload
from owlscope.ingestion.scores import normalize_score_body, score_from_body

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
TS = datetime(2026, 1, 2, 3, 0, 0, tzinfo=UTC)


def _score(body: dict, **kw):
    return score_from_body(normalize_score_body(body, now=NOW), "proj", event_ts=TS, **kw)


def test_numeric_score_with_all_fields():
    body = {"id": "s1", "traceId": "t1", "observationId": "o1", "name": "quality", "value": 0.9,
            "comment": "good", "metadata": {"k": [1, 2]}, "environment": "prod", "configId": "c1",
            "queueId": "q1", "timestamp": "2026-01-01T00:00:00.5+01:00"}
    n = normalize_score_body(body, now=NOW)
    assert n["dataType"] == "NUMERIC"
    assert n["timestamp"] == "2025-12-31T23:00:00.500000Z"
    s = score_from_body(n, "proj", event_ts=TS)
    assert (s.project_id, s.id, s.name, s.data_type, s.value, s.string_value) == (
        "proj", "s1", "quality", "NUMERIC", 0.9, None)
    assert (s.trace_id, s.observation_id, s.session_id, s.dataset_run_id) == ("t1", "o1", None, None)
    assert (s.comment, s.config_id, s.queue_id, s.environment, s.source) == ("good", "c1", "q1", "prod", "API")
    assert json.loads(s.metadata) == {"k": [1, 2]}
    assert s.timestamp == datetime(2025, 12, 31, 23, 0, 0, 500000, tzinfo=UTC)
    assert s.event_ts == TS


def test_fills_id_timestamp_and_data_type():
    n = normalize_score_body({"traceId": "t", "name": "n", "value": 3})
    assert uuid.UUID(n["id"]).version == 4
    assert n["dataType"] == "NUMERIC"
    assert n["environment"] == "default"
    datetime.fromisoformat(n["timestamp"])  # ISO with Z
    n2 = normalize_score_body({"traceId": "t", "name": "n", "value": 3}, now=NOW)
    assert n2["timestamp"] == "2026-01-02T03:04:05.678901Z"


def test_score_from_body_is_pure():
    n = normalize_score_body({"sessionId": "s", "name": "n", "value": "x"}, now=NOW)
    assert score_from_body(n, "p", event_ts=TS) == score_from_body(n, "p", event_ts=TS)


@pytest.mark.parametrize(("value", "expected_type"), [(1, "NUMERIC"), (0.5, "NUMERIC"), ("good", "CATEGORICAL"),
                                                      (True, "BOOLEAN")])
def test_data_type_inferred_from_value(value, expected_type):
    assert normalize_score_body({"traceId": "t", "name": "n", "value": value})["dataType"] == expected_type


def test_data_type_is_case_insensitive():
    assert normalize_score_body({"traceId": "t", "name": "n", "value": 1, "dataType": "numeric"})["dataType"] == "NUMERIC"


def test_boolean_score():
    s = _score({"traceId": "t", "name": "n", "value": 1.0, "dataType": "BOOLEAN"})
    assert (s.data_type, s.value, s.string_value) == ("BOOLEAN", 1.0, "True")
    s = _score({"traceId": "t", "name": "n", "value": False})
    assert (s.data_type, s.value, s.string_value) == ("BOOLEAN", 0.0, "False")
    with pytest.raises(InvalidPayload, match="0 or 1"):
        normalize_score_body({"traceId": "t", "name": "n", "value": 0.5, "dataType": "BOOLEAN"})
    with pytest.raises(InvalidPayload, match="0 or 1"):
        normalize_score_body({"traceId": "t", "name": "n", "value": "true", "dataType": "BOOLEAN"})


def test_categorical_score():
    s = _score({"traceId": "t", "name": "n", "value": "good", "dataType": "CATEGORICAL"})
    assert (s.data_type, s.value, s.string_value) == ("CATEGORICAL", None, "good")
    s = _score({"traceId": "t", "name": "n", "value": 2, "dataType": "CATEGORICAL"})
    assert (s.data_type, s.value, s.string_value) == ("CATEGORICAL", 2.0, None)


def test_categorical_score_of_a_config_keeps_value_and_label():
    s = _score({"traceId": "t", "name": "n", "value": 2, "stringValue": "friendly", "dataType": "CATEGORICAL"})
    assert (s.value, s.string_value) == (2.0, "friendly")
    # a label as the value wins; stringValue means nothing for other types
    s = _score({"traceId": "t", "name": "n", "value": "good", "stringValue": "bad", "dataType": "CATEGORICAL"})
    assert (s.value, s.string_value) == (None, "good")
    s = _score({"traceId": "t", "name": "n", "value": 0.5, "stringValue": "x"})
    assert (s.data_type, s.value, s.string_value) == ("NUMERIC", 0.5, None)
    with pytest.raises(InvalidPayload):
        normalize_score_body({"traceId": "t", "name": "n", "value": 1, "stringValue": 3, "dataType": "CATEGORICAL"})


def test_numeric_score_rejects_string():
    with pytest.raises(InvalidPayload, match="NUMERIC score needs a numeric value"):
        normalize_score_body({"traceId": "t", "name": "n", "value": "high", "dataType": "NUMERIC"})


def test_text_and_correction_scores():
    s = _score({"traceId": "t", "name": "n", "value": "some text", "dataType": "TEXT"})
    assert (s.data_type, s.value, s.string_value) == ("TEXT", None, "some text")
    with pytest.raises(InvalidPayload, match="1-500"):
        normalize_score_body({"traceId": "t", "name": "n", "value": "x" * 501, "dataType": "TEXT"})
    with pytest.raises(InvalidPayload, match="string value"):
        normalize_score_body({"traceId": "t", "name": "n", "value": 1, "dataType": "TEXT"})
    s = _score({"traceId": "t", "name": "n", "value": "fixed output", "dataType": "CORRECTION"})
    assert (s.data_type, s.value, s.string_value) == ("CORRECTION", 0.0, "fixed output")


@pytest.mark.parametrize(("body", "message"), [
    ({"traceId": "t", "value": 1}, "name"),
    ({"traceId": "t", "name": "", "value": 1}, "name must not be empty"),
    ({"traceId": "t", "name": "n"}, "value is required"),
    ({"traceId": "t", "name": "n", "value": 1, "dataType": "PERCENT"}, "dataType must be one of"),
    ({"name": "n", "value": 1}, "traceId, sessionId or datasetRunId"),
    ({"sessionId": "s", "observationId": "o", "name": "n", "value": 1}, "observationId requires traceId"),
    ({"traceId": "t", "name": "n", "value": 1, "timestamp": "not a time"}, "timestamp"),
    ({"traceId": 5, "name": "n", "value": 1}, "traceId"),
    ({"traceId": "t", "name": "n", "value": [1]}, "value"),
    ({"traceId": "t", "name": "n", "value": 1, "source": "HUMAN"}, "source"),
    ({"traceId": "t", "name": "n", "value": float("inf")}, "finite"),
])
def test_invalid_scores(body, message):
    with pytest.raises(InvalidPayload, match=message):
        normalize_score_body(body)


def test_not_an_object():
    with pytest.raises(InvalidPayload, match="JSON object"):
        normalize_score_body([1, 2])


def test_source_from_body_or_argument():
    n = normalize_score_body({"traceId": "t", "name": "n", "value": 1, "source": "annotation",
                              "authorUserId": "u1"}, now=NOW)
    s = score_from_body(n, "p", event_ts=TS, source="EVAL")
    assert (s.source, s.author_user_id) == ("ANNOTATION", "u1")
    n = normalize_score_body({"traceId": "t", "name": "n", "value": 1}, now=NOW)
    assert score_from_body(n, "p", event_ts=TS, source="EVAL").source == "EVAL"


def test_v5_sdk_scores_capture():
    requests = [r for r in load_capture(CAPTURE_V5) if r["path"] == "/api/public/scores"]
    bodies = [b for r in requests for b in (r["json"] if isinstance(r["json"], list) else [r["json"]])]
    assert len(bodies) == 9
    scores = {b["id"]: _score(b) for b in bodies}
    assert scores["c88b5b409dbdf57c"].data_type == "NUMERIC"
    assert scores["c88b5b409dbdf57c"].value == 0.9
    assert scores["c88b5b409dbdf57c"].observation_id == "d7bd0521cf580101"
    assert scores["c88b5b409dbdf57c"].timestamp == datetime(2026, 11, 27, 8, 29, 5, 623175, tzinfo=UTC)
    assert (scores["20e4ae891643eb63"].data_type, scores["20e4ae891643eb63"].string_value) == ("BOOLEAN", "True")
    assert (scores["4a19a8390224cebd"].data_type, scores["4a19a8390224cebd"].string_value) == ("CATEGORICAL", "good")
    assert scores["20fec8cdbb75221c"].session_id == "sess-1"
    text = scores["04297234debc2b45"]
    assert (text.data_type, text.string_value, json.loads(text.metadata)) == ("TEXT", "some text", {"k": "v"})
    assert scores["8b21c55425c41631"].dataset_run_id == "7983e38207da61e8"
