"""The official SDK's API client (langfuse 5) parses what the read API answers: its pydantic models
are the contract for v2 observations, v3 scores, v2 metrics and the deletes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from owlscope.ingestion.rows import ObservationEvent, ScoreEvent, TraceEvent
from read_fixtures import (  # noqa: F401  (fixtures)
    PA,
    T0,
    ReadApi,
    fixture_dataset,
    fixture_read_api,
    fixture_read_olap,
    insert,
    s,
)

langfuse_api = pytest.importorskip("langfuse.api")
pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


def sdk(api: ReadApi, project: str = PA):
    api.client.headers["x-test-project"] = project
    return langfuse_api.LangfuseAPI(base_url=str(api.client.base_url), username="pk", password="sk",
                                    httpx_client=api.client)


def test_sdk_parses_v2_observations_with_every_group(dataset: ReadApi) -> None:
    client = sdk(dataset)
    groups = "core,basic,time,io,metadata,model,usage,prompt,metrics,trace_context"
    res = client.observations.get_many(trace_id="t1", fields=groups, expand_metadata="long")
    by_id = {o.id: o for o in res.data}
    assert set(by_id) == {"o1", "o2", "o3"} and res.meta.cursor is None
    o2 = by_id["o2"]
    assert (o2.type, o2.name, o2.model, o2.prompt_name, o2.prompt_version) == (
        "GENERATION", "llm", "gpt-4o", "p", 2)
    assert o2.usage_details == {"input": 10, "output": 20, "total": 30} and o2.total_cost == pytest.approx(0.3)
    assert o2.start_time == T0 + s(0.5) and o2.latency == 1.0 and o2.time_to_first_token == 0.2
    assert o2.user_id == "u1" and o2.session_id == "s1" and o2.tags == ["a", "b"] and o2.is_root_observation is False
    assert by_id["o3"].level == "WARNING"


def test_sdk_walks_v2_observation_cursor(dataset: ReadApi) -> None:
    client = sdk(dataset)
    seen, cursor = [], None
    while True:
        res = client.observations.get_many(limit=4, cursor=cursor, from_start_time=T0 - timedelta(days=1))
        seen += [o.id for o in res.data]
        cursor = res.meta.cursor
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 14


def test_sdk_parses_v3_scores(dataset: ReadApi) -> None:
    client = sdk(dataset)
    res = client.scores.get_many(fields="details,subject,annotation")
    by_id = {x.id: x for x in res.data}
    assert set(by_id) == {"sc1", "sc2", "sc3", "sc4", "sc5"}
    assert by_id["sc1"].data_type == "NUMERIC" and by_id["sc1"].value == 0.9
    assert by_id["sc3"].data_type == "BOOLEAN" and by_id["sc3"].value is True
    assert by_id["sc2"].data_type == "CATEGORICAL" and by_id["sc2"].value == "good"
    assert by_id["sc2"].subject.kind == "observation" and by_id["sc2"].subject.trace_id == "t1"
    assert by_id["sc2"].queue_id == "q1" and by_id["sc2"].metadata == {"m": 1}
    page = client.scores.get_many(limit=2)
    assert page.meta.limit == 2 and page.meta.cursor


def test_sdk_parses_v2_metrics(dataset: ReadApi) -> None:
    client = sdk(dataset)
    query = {"view": "observations", "dimensions": [{"field": "type"}],
             "metrics": [{"measure": "count", "aggregation": "count"}],
             "fromTimestamp": (T0 - timedelta(days=1)).isoformat(), "toTimestamp": (T0 + timedelta(days=3)).isoformat()}
    res = client.metrics.metrics(query=json.dumps(query))
    assert {r["type"]: r["count_count"] for r in res.data} == {"SPAN": 9, "GENERATION": 2, "EVENT": 3}


def test_sdk_deletes(read_api: ReadApi, dataset: ReadApi) -> None:
    p = "proj-sdk-del"
    insert(read_api.olap, traces=[TraceEvent(p, t, T0, timestamp=T0) for t in ("k1", "k2", "k3")],
           observations=[ObservationEvent(p, "ko", "k1", T0, start_time=T0)],
           scores=[ScoreEvent(p, "ks", T0, T0, "q", "NUMERIC", value=1.0, trace_id="k3")])
    client = sdk(read_api, p)
    assert client.trace.delete("k1").message == "Trace deleted successfully"
    assert client.trace.delete_multiple(trace_ids=["k2"]).message == "Traces deleted successfully"
    client.scores.delete("ks")
    assert [t["id"] for t in read_api.ok("/api/public/traces", project=p)["data"]] == ["k3"]
    assert read_api.ok("/api/public/v3/scores", project=p)["data"] == []
    with pytest.raises(Exception) as err:
        client.scores.delete("ks")
    assert getattr(err.value, "status_code", None) == 404
