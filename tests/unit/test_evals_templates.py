"""Judge templates: built-ins, output definitions, the structured-output schema, parsing answers,
deterministic sampling and provider error classification."""

from __future__ import annotations

import pytest

from owlscope.evals.builtin_templates import BUILTIN_TEMPLATES
from owlscope.evals.errors import EvalInvalid
from owlscope.evals.evaluators import sampled
from owlscope.evals.judge import JudgeError, _classify, _parse_json
from owlscope.evals.templates import output_schema, parse_judgement, validate_output_definition
from owlscope.evals.variables import extract_variables, validate_mapping

NUMERIC = {"dataType": "NUMERIC", "reasoning": {"description": "r"}, "score": {"description": "s", "minValue": 0,
                                                                               "maxValue": 1}}
BOOLEAN = {"dataType": "BOOLEAN", "reasoning": {"description": "r"}, "score": {"description": "s"}}
CATS = {"dataType": "CATEGORICAL", "reasoning": {"description": "r"},
        "score": {"description": "s", "categories": ["a", "b", "c"], "shouldAllowMultipleMatches": True}}


def test_builtins_are_complete_and_self_consistent() -> None:
    names = {t["name"] for t in BUILTIN_TEMPLATES}
    assert {"hallucination", "relevance", "helpfulness", "toxicity", "correctness", "conciseness"} <= names
    for t in BUILTIN_TEMPLATES:
        validate_output_definition(t["output_definition"])
        variables = extract_variables(t["prompt"])
        for target in ("trace", "observation"):
            validate_mapping(t["default_mapping"], variables, target)  # every variable mapped once
    types = {t["output_definition"]["dataType"] for t in BUILTIN_TEMPLATES}
    assert types == {"NUMERIC", "BOOLEAN", "CATEGORICAL"}


def test_output_schema_is_strict_mode_json_schema() -> None:
    s = output_schema(NUMERIC)
    assert s["required"] == ["reasoning", "score"] and s["additionalProperties"] is False
    assert s["properties"]["score"]["type"] == "number" and "between 0 and 1" in s["properties"]["score"]["description"]
    assert output_schema(BOOLEAN)["properties"]["score"]["type"] == "boolean"
    multi = output_schema(CATS)["properties"]["score"]
    assert multi["type"] == "array" and multi["items"]["enum"] == ["a", "b", "c"]
    single = output_schema({**CATS, "score": {**CATS["score"], "shouldAllowMultipleMatches": False}})
    assert single["properties"]["score"] == {"type": "string", "enum": ["a", "b", "c"], "description": "s"}


@pytest.mark.parametrize("defn, answer, values", [
    (NUMERIC, {"score": 0.5, "reasoning": "ok"}, [0.5]),
    (NUMERIC, {"score": "1", "reasoning": "ok"}, [1.0]),
    (BOOLEAN, {"score": True, "reasoning": "ok"}, [1.0]),
    (BOOLEAN, {"score": 0, "reasoning": "ok"}, [0.0]),
    (BOOLEAN, {"score": "false", "reasoning": "ok"}, [0.0]),
    (CATS, {"score": ["a", "c", "a"], "reasoning": "ok"}, ["a", "c"]),
    (CATS, {"score": "b", "reasoning": "ok"}, ["b"]),
])
def test_parse_judgement(defn, answer, values) -> None:
    assert parse_judgement(defn, answer) == (values, "ok")


@pytest.mark.parametrize("defn, answer", [
    (NUMERIC, {"score": 2, "reasoning": "x"}),
    (NUMERIC, {"score": True, "reasoning": "x"}),
    (NUMERIC, {"reasoning": "x"}),
    (BOOLEAN, {"score": 0.5, "reasoning": "x"}),
    (CATS, {"score": "z", "reasoning": "x"}),
    (CATS, {"score": [], "reasoning": "x"}),
])
def test_parse_judgement_rejects_answers_off_the_schema(defn, answer) -> None:
    with pytest.raises(JudgeError) as exc:
        parse_judgement(defn, answer)
    assert exc.value.kind == "transient"  # asked again: models are not deterministic


@pytest.mark.parametrize("raw, message", [
    (None, "must be an object"),
    ({**NUMERIC, "dataType": "TEXT"}, "dataType"),
    ({**NUMERIC, "reasoning": {}}, "reasoning.description"),
    ({**NUMERIC, "score": {"description": "s", "minValue": 2, "maxValue": 1}}, "minValue"),
    ({**CATS, "score": {"description": "s", "categories": [], "shouldAllowMultipleMatches": False}}, "categories"),
    ({**CATS, "score": {"description": "s", "categories": ["a", "a"], "shouldAllowMultipleMatches": False}}, "unique"),
    ({**CATS, "score": {"description": "s", "categories": ["a"]}}, "shouldAllowMultipleMatches"),
    ({**NUMERIC, "version": 2}, "version"),
])
def test_output_definition_validation(raw, message: str) -> None:
    with pytest.raises(EvalInvalid, match=message):
        validate_output_definition(raw)


def test_sampling_is_deterministic_and_close_to_the_rate() -> None:
    ids = [f"trace-{i}" for i in range(10_000)]
    picked = [sampled("ev1", t, 0.3) for t in ids]
    assert picked == [sampled("ev1", t, 0.3) for t in ids]
    assert 2800 < sum(picked) < 3200
    assert picked != [sampled("ev2", t, 0.3) for t in ids]  # evaluators sample independently
    assert all(sampled("ev1", t, 1.0) for t in ids[:100])


@pytest.mark.parametrize("status, code, message, kind", [
    (401, "invalid_api_key", "bad key", "auth"),
    (403, "", "forbidden", "auth"),
    (429, "insufficient_quota", "You exceeded your current quota", "quota"),
    (429, "rate_limit_exceeded", "slow down", "transient"),
    (402, "", "pay", "quota"),
    (500, "", "boom", "transient"),
    (503, "", "overloaded", "transient"),
    (400, "", "bad request", "invalid"),
    (404, "model_not_found", "no such model", "invalid"),
])
def test_error_classification(status: int, code: str, message: str, kind: str) -> None:
    assert _classify(status, code, message).kind == kind


def test_parse_model_json() -> None:
    assert _parse_json('```json\n{"score": 1, "reasoning": "x"}\n```') == {"score": 1, "reasoning": "x"}
    with pytest.raises(JudgeError):
        _parse_json("the score is 1")
    with pytest.raises(JudgeError):
        _parse_json("[1]")
