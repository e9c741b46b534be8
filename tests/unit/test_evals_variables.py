"""Prompt variables, JSONPath selection, tool calls and mapping validation."""

from __future__ import annotations

import pytest

from owlscope.evals.errors import EvalInvalid
from owlscope.evals.variables import (
    as_text,
    extract_variables,
    fill_prompt,
    resolve_values,
    select,
    tool_calls,
    validate_mapping,
)


def test_variables_in_order_and_filled() -> None:
    prompt = "Q: {{input}}\nA: {{ output }}\nQ again: {{input}} {{missing}}"
    assert extract_variables(prompt) == ["input", "output", "missing"]
    assert fill_prompt(prompt, {"input": "why?", "output": "because"}) == (
        "Q: why?\nA: because\nQ again: why? {{missing}}")
    assert fill_prompt("{{a}}", {"a": "{{b}}", "b": "x"}) == "{{b}}"  # values are not templates


@pytest.mark.parametrize("value, path, expected", [
    ({"a": {"b": [1, 2]}}, "$.a.b[0]", 1),
    ({"a": {"b": [1, 2]}}, "$.a.b", [1, 2]),
    ({"a": {"b": [1, 2]}}, "$.a.b[*]", [1, 2]),
    ([{"name": "x"}, {"name": "y"}], "$[*].name", ["x", "y"]),
    ({"msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
     "$.msgs[?(@.role == 'assistant')].content", "yo"),
    ('{"reference_context": "Paris"}', "$.reference_context", "Paris"),  # JSON text is parsed
    ({"a": 1}, "$.nope", None),
    ("plain text", "$.a", None),
    ({"a": 1}, None, {"a": 1}),
])
def test_select(value, path, expected) -> None:
    assert select(value, path) == expected


def test_as_text() -> None:
    assert (as_text(None), as_text("é"), as_text({"k": "é"}), as_text([1])) == ("", "é", '{"k": "é"}', "[1]")


def test_tool_calls_from_openai_shapes() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "search", "arguments": '{"q": 1}'}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    expected = [{"id": "c1", "name": "search", "arguments": '{"q": 1}', "type": "function", "index": 0}]
    assert tool_calls(message) == expected
    assert tool_calls([{"role": "user", "content": "x"}, message]) == expected
    assert tool_calls({"choices": [{"message": message}]}) == expected
    assert tool_calls("text") == []


def test_resolve_values_from_trace_observation_and_named_observation() -> None:
    trace = {"input": {"q": "Q"}, "output": "A", "metadata": {"ctx": "C"}}
    obs = {"input": "gen-in", "output": {"tool_calls": [{"id": "1", "function": {"name": "f", "arguments": "{}"}}]},
           "metadata": None}
    named = {("retriever", "search"): {"output": ["doc1", "doc2"]}}
    mapping = [
        {"variable": "q", "object": "trace", "source": "input", "jsonPath": "$.q"},
        {"variable": "ctx", "object": "trace", "source": "metadata", "jsonPath": "$.ctx"},
        {"variable": "docs", "object": "retriever", "objectName": "search", "source": "output"},
        {"variable": "gone", "object": "span", "objectName": "missing", "source": "output"},
        {"variable": "tools", "object": "observation", "source": "tool_calls", "jsonPath": "$[*].name"},
    ]
    values = resolve_values(mapping, trace=trace, observation=obs, named=lambda k, n: named.get((k, n)))
    assert values == {"q": "Q", "ctx": "C", "docs": '["doc1", "doc2"]', "gone": "", "tools": "f"}


def test_validate_mapping_normalizes() -> None:
    out = validate_mapping([{"variable": "a", "source": "input"},
                            {"variable": "b", "object": "generation", "objectName": " llm ", "source": "output",
                             "jsonPath": "$.x"}], ["a", "b"], "trace")
    assert out == [{"variable": "a", "object": "trace", "objectName": None, "source": "input", "jsonPath": None},
                   {"variable": "b", "object": "generation", "objectName": "llm", "source": "output",
                    "jsonPath": "$.x"}]
    obs = validate_mapping([{"variable": "a", "source": "tool_calls"}], ["a"], "observation")
    assert obs[0]["object"] == "observation"


@pytest.mark.parametrize("mapping, target, code", [
    ([{"variable": "a", "source": "input"}], "trace", "missing_variable_mapping"),
    ([{"variable": "a", "source": "input"}, {"variable": "a", "source": "output"}, {"variable": "b", "source": "input"}],
     "trace", "duplicate_variable_mapping"),
    ([{"variable": "c", "source": "input"}], "trace", "invalid_variable_mapping"),
    ([{"variable": "a", "source": "tool_calls"}, {"variable": "b", "source": "input"}], "trace",
     "invalid_variable_mapping"),  # tool calls live on observations
    ([{"variable": "a", "object": "generation", "source": "input"}, {"variable": "b", "source": "input"}], "trace",
     "invalid_variable_mapping"),  # a named observation needs its name
    ([{"variable": "a", "object": "generation", "objectName": "x", "source": "input"},
      {"variable": "b", "source": "input"}], "observation", "invalid_variable_mapping"),
    ([{"variable": "a", "source": "input", "jsonPath": "a.b"}, {"variable": "b", "source": "input"}], "trace",
     "invalid_json_path"),
    ([{"variable": "a", "source": "input", "jsonPath": "$.[["}, {"variable": "b", "source": "input"}], "trace",
     "invalid_json_path"),
    ("nope", "trace", "invalid_body"),
])
def test_validate_mapping_errors(mapping, target: str, code: str) -> None:
    with pytest.raises(EvalInvalid) as exc:
        validate_mapping(mapping, ["a", "b"], target)
    assert exc.value.code == code


def test_experiment_mapping_reads_the_experiment_item() -> None:
    mapping = validate_mapping([
        {"variable": "q", "source": "input", "jsonPath": "$.question"},
        {"variable": "want", "source": "expected_output"},
        {"variable": "got", "source": "output"},
        {"variable": "meta", "source": "experiment_item_metadata", "jsonPath": "$.level"},
    ], ["q", "want", "got", "meta"], "experiment")
    assert {m["object"] for m in mapping} == {"experiment"}
    item = {"input": {"question": "Capital?"}, "expected_output": "Paris", "output": {"answer": "Lyon"},
            "experiment_item_metadata": {"level": 2}, "metadata": None}
    assert resolve_values(mapping, trace=None, experiment=item) == {
        "q": "Capital?", "want": "Paris", "got": '{"answer": "Lyon"}', "meta": "2"}
    for target in ("trace", "observation"):  # only experiments have an expected output
        with pytest.raises(EvalInvalid) as info:
            validate_mapping([{"variable": "want", "source": "expected_output"}], ["want"], target)
        assert info.value.code == "invalid_variable_mapping"
    with pytest.raises(EvalInvalid, match="object must be one of experiment"):
        validate_mapping([{"variable": "want", "object": "trace", "source": "input"}], ["want"], "experiment")
