"""Readers that used to keep their own copy of the merge SQL now agree with the traces views.

Each test is a disagreement a copy had: the evaluator's trace level, the dataset reader's metadata,
and totals summed over the cost map where the scalar cost column exists.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from owlscope.datasets.olap_reads import observations_by_key, trace_summaries
from owlscope.evals.matching import match_observations, match_traces, parse_conditions
from owlscope.ingestion.rows import ObservationEvent, TraceEvent, observations_table, traces_table
from owlscope.prompts import prompt_version_metrics
from owlscope.storage.olap.client import Olap
from owlscope.tracing import list_observations_v2, list_traces
from owlscope.tracing.prompt_usage import linked_generations
from owlscope.tracing.trace_table import TraceFilters, list_trace_table
from read_fixtures import fixture_olap  # noqa: F401

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def _ids(found) -> set[str]:
    return {r["id"] for r in found}


def test_trace_level_with_debug_and_unlevelled_observations_is_default(olap: Olap) -> None:
    """An observation without a level counts as DEFAULT, so DEBUG + unset is a DEFAULT trace for the
    traces table, the API filter and the evaluator filter alike."""
    olap.insert_arrow("trace_events", traces_table([
        TraceEvent("p", "mixed", T0, timestamp=T0), TraceEvent("p", "debug", T0, timestamp=T0 + timedelta(seconds=1)),
    ]))
    olap.insert_arrow("observation_events", observations_table([
        ObservationEvent("p", "o1", "mixed", T0, type="SPAN", start_time=T0, level="DEBUG"),
        ObservationEvent("p", "o2", "mixed", T0, type="SPAN", start_time=T0),  # no level
        ObservationEvent("p", "o3", "debug", T0, type="SPAN", start_time=T0, level="DEBUG"),
    ]))
    table = list_trace_table(olap, "p", TraceFilters())
    assert {r["id"]: r["level"] for r in table.rows} == {"mixed": "DEFAULT", "debug": "DEBUG"}
    for level, expected in (("DEFAULT", {"mixed"}), ("DEBUG", {"debug"})):
        conds = parse_conditions([{"column": "level", "operator": "any of", "value": [level]}], "trace")
        assert set(match_traces(olap, "p", conds)) == expected
        assert _ids(list_trace_table(olap, "p", TraceFilters(level=[level])).rows) == expected
        assert _ids(list_traces(olap, "p", filter=conds)["data"]) == expected


def test_observation_metadata_is_merged_key_by_key_for_readers_and_filters(olap: Olap) -> None:
    for i, md in enumerate(['{"source": "docs"}', '{"tenant": "acme"}']):
        olap.insert_arrow("observation_events", observations_table([
            ObservationEvent("p", "o1", "t1", T0 + timedelta(seconds=i), type="GENERATION", start_time=T0,
                             metadata=md)]))
    found = observations_by_key(olap, "p", [("t1", "o1")])
    assert found[("t1", "o1")]["metadata"] == {"source": "docs", "tenant": "acme"}
    # A filter on a key of an earlier piece finds it too, as the merged metadata shows it.
    conds = parse_conditions([{"column": "metadata", "operator": "=", "value": "docs", "key": "source",
                               "type": "stringObject"}], "observation")
    assert match_observations(olap, "p", conds) == [("t1", "o1")]
    assert [o["id"] for o in list_observations_v2(olap, "p", filter=conds)["data"]] == ["o1"]


def test_totals_come_from_the_scalar_cost_column(olap: Olap) -> None:
    """A cost map without a `total` key: its total is the sum of its keys (the scalar column of
    migration 0002), in the prompt metrics as in the traces table and the dataset reader."""
    olap.insert_arrow("trace_events", traces_table([TraceEvent("p", "t1", T0, timestamp=T0)]))
    olap.insert_arrow("observation_events", observations_table([
        ObservationEvent("p", "g1", "t1", T0, type="GENERATION", start_time=T0, end_time=T0 + timedelta(seconds=2),
                         prompt_name="qa", prompt_version=1, usage_details={"input": 10, "output": 4},
                         cost_details={"input": 0.25, "output": 0.5}),
    ]))
    (row,) = list_trace_table(olap, "p", TraceFilters()).rows
    assert row["totalCost"] == pytest.approx(0.75)
    (version,) = prompt_version_metrics(olap, "p", "qa")
    assert version["total_cost"] == pytest.approx(row["totalCost"])
    assert (version["input_tokens"], version["output_tokens"]) == (10, 4)
    (gen,) = linked_generations(olap, "p", "qa")
    assert gen["cost"] == pytest.approx(0.75) and gen["latency"] == 2.0
    assert trace_summaries(olap, "p", ["t1"])["t1"]["cost"] == pytest.approx(0.75)
    assert observations_by_key(olap, "p", [("t1", "g1")])[("t1", "g1")]["cost"] == pytest.approx(0.75)
