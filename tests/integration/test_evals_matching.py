"""What an evaluator reads of a trace: the same merged record the UI and the API show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from owlscope.evals.matching import load_observation, load_trace
from owlscope.ingestion.rows import ObservationEvent, TraceEvent, observations_table, traces_table
from owlscope.storage.olap.client import Olap
from read_fixtures import fixture_olap  # noqa: F401


def test_judge_sees_metadata_merged_key_by_key(olap: Olap) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i, md in enumerate(['{"reference_context": "Paris is in France"}', '{"tenant": "acme"}']):
        ts = t0 + timedelta(seconds=i)
        olap.insert_arrow("trace_events", traces_table([TraceEvent("p", "t1", ts, timestamp=t0, metadata=md)]))
        olap.insert_arrow("observation_events", observations_table([
            ObservationEvent("p", "o1", "t1", ts, type="GENERATION", start_time=t0, metadata=md)]))
    merged = {"reference_context": "Paris is in France", "tenant": "acme"}
    assert load_trace(olap, "p", "t1")["metadata"] == merged
    assert load_observation(olap, "p", "t1", "o1")["metadata"] == merged
