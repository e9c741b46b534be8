"""The datasets domain functions the UI calls and the experiment recorder, on the embedded engines:
runs recorded from the SDK's real experiment spans (idempotent, in any order), items from traces,
bulk adds and CSV/JSON uploads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from unit.otlp_builders import CAPTURE_V5, otlp_requests, request_from_spans

from conftest import create_project_key
from owlscope.datasets.items import list_items
from owlscope.datasets.recording import record_experiments
from owlscope.datasets.runs import get_run, list_runs
from owlscope.datasets.store import create_dataset, update_dataset
from owlscope.datasets.uploads import add_items_from_traces, bulk_add_items, parse_upload, upload_columns
from owlscope.errors import InvalidRequest, NotFound
from owlscope.ingestion.otel import map_otlp
from owlscope.ingestion.rows import ObservationEvent, Rows, TraceEvent, observations_table, traces_table
from owlscope.services import build_services
from owlscope.storage.oltp.dataset_models import Dataset, DatasetItem

CAP_DATASET = "56066aeb-8211-427e-8f07-a828e764f551"
CAP_ITEMS = ("af6c7aa5-f3d0-4528-9dea-5b72661e8475", "580ab568-8cdb-4a77-ba72-ce5b7835ab00")


@pytest.fixture
def services(make_settings) -> Iterator:
    svc = build_services(make_settings("embedded"))
    yield svc
    svc.close()


def _project(services, name: str = "p") -> str:
    return create_project_key(services, project_name=name)["project_id"]


def _experiment_rows(project_id: str) -> Rows:
    """The v5 capture's experiment spans (a dataset run 'cap-run' and a local experiment)."""
    rows = Rows()
    for req in otlp_requests(CAPTURE_V5):
        spans = [s for s in req["otlp_spans"] if s["name"].startswith(("experiment-", "ev_fn"))]
        if spans:
            rows.extend(map_otlp(request_from_spans(spans), project_id, "5.0.4"))
    return rows


def _capture_dataset(services, project_id: str) -> None:
    with services.sessions.begin() as s:
        s.add(Dataset(id=CAP_DATASET, project_id=project_id, name="cap-ds"))
        s.flush()
        for item_id in CAP_ITEMS:
            s.add(DatasetItem(project_id=project_id, id=item_id, dataset_id=CAP_DATASET, input={"q": item_id}))


def _state(services, project_id: str) -> dict:
    run = get_run(services.sessions, None, project_id=project_id, dataset_name="cap-ds", run_name="cap-run")
    return {
        "id": run["id"], "description": run["description"], "metadata": run["metadata"],
        "items": sorted((ri["datasetItemId"], ri["traceId"], ri["observationId"], ri["createdAt"])
                        for ri in run["datasetRunItems"]),
    }


def test_runs_recorded_from_sdk_spans_idempotently(services) -> None:
    project = _project(services)
    _capture_dataset(services, project)
    rows = _experiment_rows(project)
    assert record_experiments(services, rows) == 3  # two dataset items, one local item
    first = _state(services, project)
    assert first["id"] == "7983e38207da61e8" and first["description"] == "desc"
    assert first["metadata"] == {"model": "x"}
    assert [(i[0], i[2]) for i in first["items"]] == sorted([
        ("af6c7aa5-f3d0-4528-9dea-5b72661e8475", "4eabc1a370305387"),
        ("580ab568-8cdb-4a77-ba72-ce5b7835ab00", "04b4233519298321")])
    # the run item starts with the item's root span (the earliest of its spans)
    root_start = min(o.start_time for o in rows.observations if o.name == "experiment-item-run"
                     and o.trace_id == first["items"][0][1])
    assert first["items"][0][3] == root_start.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # a replayed blob changes nothing
    record_experiments(services, rows)
    assert _state(services, project) == first
    assert len(list_runs(services.sessions, project_id=project, dataset_name="cap-ds")[0]) == 1

    # the spans of one item split over batches, arriving in reverse order, end the same way
    other = _project(services, "q")
    _capture_dataset_other = Dataset(id="another-dataset-id", project_id=other, name="cap-ds")
    with services.sessions.begin() as s:
        s.add(_capture_dataset_other)
        s.flush()
        for item_id in CAP_ITEMS:
            s.add(DatasetItem(project_id=other, id=item_id, dataset_id="another-dataset-id", input=1))
    mapped = _experiment_rows(other)
    for obs in reversed(mapped.observations):
        obs.metadata = (obs.metadata or "").replace(CAP_DATASET, "another-dataset-id")
        record_experiments(services, Rows(observations=[obs]))
    again = _state(services, other)
    assert [(i[0], i[2], i[3]) for i in again["items"]] == [(i[0], i[2], i[3]) for i in first["items"]]


def test_spans_naming_a_dataset_of_another_project_record_no_link(services) -> None:
    owner, stranger = _project(services, "owner"), _project(services, "stranger")
    _capture_dataset(services, owner)
    record_experiments(services, _experiment_rows(stranger))
    assert list_runs(services.sessions, project_id=owner, dataset_name="cap-ds")[0] == []
    with pytest.raises(NotFound):
        get_run(services.sessions, None, project_id=stranger, dataset_name="cap-ds", run_name="cap-run")


def _ingest(services, project_id: str) -> None:
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    services.olap.insert_arrow("trace_events", traces_table([TraceEvent(
        project_id=project_id, id="tr-1", event_ts=ts, timestamp=ts, name="t", input='{"question":"q1"}',
        output='"a1"')]))
    services.olap.insert_arrow("observation_events", observations_table([ObservationEvent(
        project_id=project_id, id="ob-1", trace_id="tr-1", event_ts=ts, type="GENERATION", name="g",
        start_time=ts, end_time=ts, input='[{"role":"user","content":"q2"}]', output='{"content":"a2"}')]))


def test_add_items_from_traces(services) -> None:
    project = _project(services)
    create_dataset(services.sessions, project_id=project, name="from-traces")
    _ingest(services, project)
    made = add_items_from_traces(services.sessions, services.olap, masker=None, project_id=project, dataset_name="from-traces",
                                 sources=[("tr-1", None), ("tr-1", "ob-1")], metadata={"src": "ui"})
    assert [(m["input"], m["expectedOutput"], m["sourceTraceId"], m["sourceObservationId"]) for m in made] == [
        ({"question": "q1"}, "a1", "tr-1", None),
        ([{"role": "user", "content": "q2"}], {"content": "a2"}, "tr-1", "ob-1"),
    ]
    assert made[0]["metadata"] == {"src": "ui"}
    with pytest.raises(NotFound, match="trace 'missing'"):
        add_items_from_traces(services.sessions, services.olap, masker=None, project_id=project, dataset_name="from-traces",
                              sources=[("tr-1", None), ("missing", None)])
    # another project sees no such trace
    other = _project(services, "other")
    create_dataset(services.sessions, project_id=other, name="from-traces")
    with pytest.raises(NotFound):
        add_items_from_traces(services.sessions, services.olap, masker=None, project_id=other, dataset_name="from-traces",
                              sources=[("tr-1", None)])
    assert list_items(services.sessions, project_id=project, dataset_name="from-traces")[1]["totalItems"] == 2


def test_bulk_add_is_all_or_nothing(services) -> None:
    project = _project(services)
    create_dataset(services.sessions, project_id=project, name="bulk",
                   input_schema={"type": "object", "required": ["q"]})
    with pytest.raises(InvalidRequest, match=r"row 2: .*input: 'q' is a required property"):
        bulk_add_items(services.sessions, masker=None, project_id=project, dataset_name="bulk",
                       items=[{"input": {"q": 1}}, {"input": {"x": 1}}])
    assert list_items(services.sessions, project_id=project, dataset_name="bulk")[1]["totalItems"] == 0
    made = bulk_add_items(services.sessions, masker=None, project_id=project, dataset_name="bulk",
                          items=[{"input": {"q": 1}, "expectedOutput": 2}, {"input": {"q": 3}, "id": "fixed"}])
    assert [m["input"] for m in made] == [{"q": 1}, {"q": 3}] and made[1]["id"] == "fixed"
    # update_dataset (UI) can clear a schema, which lets any input in
    update_dataset(services.sessions, project_id=project, name="bulk", input_schema=None)
    bulk_add_items(services.sessions, masker=None, project_id=project, dataset_name="bulk", items=[{"input": "free"}])


def test_parse_upload_csv_and_json() -> None:
    csv_bytes = b'question,answer,topic\n"What is 2+2?",4,math\n"{""nested"": true}","[1,2]",misc\n'
    assert upload_columns(csv_bytes) == ["question", "answer", "topic"]
    items = parse_upload(csv_bytes, {"input": ["question", "topic"], "expectedOutput": "answer"})
    assert items == [
        {"input": {"question": "What is 2+2?", "topic": "math"}, "expectedOutput": 4},
        {"input": {"question": {"nested": True}, "topic": "misc"}, "expectedOutput": [1, 2]},
    ]
    # without a mapping: columns named like item fields, else everything is the input
    assert parse_upload(b"input;expected_output\nhi;HI\n") == [{"input": "hi", "expectedOutput": "HI"}]
    assert parse_upload(b"a,b\n1,x\n") == [{"input": {"a": 1, "b": "x"}}]
    json_bytes = b'[{"input": {"q": 1}, "expectedOutput": "a", "metadata": {"m": 1}}, {"input": "two"}]'
    assert parse_upload(json_bytes) == [{"input": {"q": 1}, "expectedOutput": "a", "metadata": {"m": 1}},
                                        {"input": "two", "expectedOutput": None, "metadata": None}]
    jsonl = b'{"q": "a", "a": "1"}\n{"q": "b", "a": "2"}\n'
    assert parse_upload(jsonl, {"input": "q", "expectedOutput": ["a"]}) == [
        {"input": "a", "expectedOutput": "1"}, {"input": "b", "expectedOutput": "2"}]
    with pytest.raises(InvalidRequest, match="not in the upload: nope"):
        parse_upload(csv_bytes, {"input": "nope"})
    with pytest.raises(InvalidRequest, match="mapping key"):
        parse_upload(csv_bytes, {"inputs": "question"})
    with pytest.raises(InvalidRequest, match="row 2: input is empty"):
        parse_upload(b"input\nx\n\"\"\n")
    with pytest.raises(InvalidRequest, match="JSON"):
        parse_upload(b"[{broken")
    with pytest.raises(InvalidRequest, match="empty"):
        parse_upload(b"")
