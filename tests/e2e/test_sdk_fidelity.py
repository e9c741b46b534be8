"""What the official Python SDK (5.2) sends reads back exactly as Langfuse returns it.

Each test drives the real SDK against a live server and reads the record back through the public
API (the SDK's own API client where it has one). The expected values are Langfuse's behaviour.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from langfuse import observe, propagate_attributes
from opentelemetry import trace as otel_trace

from support.sdk_reads import OBS_FIELDS, read_trace


def _v2(sdk, trace_id: str, n: int) -> dict[str, dict]:
    """The trace's observations from /v2/observations (every field group), raw, by name."""
    r = sdk.wait_for("/api/public/v2/observations", lambda r: r.status_code == 200 and len(r.json()["data"]) >= n,
                     traceId=trace_id, fields=OBS_FIELDS, limit=100, timeout=60)
    return {o["name"]: o for o in r.json()["data"]}


def test_v2_io_is_the_raw_string_sent_and_empty_output_is_null(sdk_server) -> None:
    lf = sdk_server.client
    tag = uuid.uuid4().hex[:8]

    @observe(name=f"empty-gen-{tag}")
    def nothing():
        yield from ()

    with lf.start_as_current_observation(name=f"plain-{tag}", input="plain span input") as root:
        trace_id = root.trace_id
        root.update(output="plain span output")
        with lf.start_as_current_observation(name=f"obj-{tag}", input={"q": 1}, output=[1, "two"]):
            pass
        with lf.start_as_current_observation(name=f"numeric-text-{tag}", input="42"):
            pass
        assert list(nothing()) == []
    lf.flush()
    got = _v2(sdk_server, trace_id, 4)
    # a plain string stays plain; objects and arrays are their JSON text
    assert got[f"plain-{tag}"]["input"] == "plain span input"
    assert got[f"plain-{tag}"]["output"] == "plain span output"
    assert got[f"obj-{tag}"]["input"] == '{"q": 1}' and got[f"obj-{tag}"]["output"] == '[1, "two"]'
    assert got[f"numeric-text-{tag}"]["input"] == "42"
    # an empty generator's output is null, not ""
    assert got[f"empty-gen-{tag}"]["output"] is None
    full = read_trace(sdk_server, trace_id, 4)
    empty = next(o for o in full["observations"] if o["name"] == f"empty-gen-{tag}")
    assert empty["output"] is None
    assert full["input"] == "plain span input"


def test_propagated_metadata_is_in_every_observation(sdk_server) -> None:
    lf = sdk_server.client
    tag = uuid.uuid4().hex[:8]
    with lf.start_as_current_observation(name=f"root-{tag}") as root:
        trace_id = root.trace_id
        with propagate_attributes(metadata={"tenant": "acme", "region": "eu"}, user_id="u-1"):
            with lf.start_as_current_observation(name=f"child-{tag}", metadata={"own": "yes"}):
                with lf.start_as_current_observation(name=f"grandchild-{tag}", as_type="tool"):
                    pass
    lf.flush()
    got = _v2(sdk_server, trace_id, 3)
    for name in (f"child-{tag}", f"grandchild-{tag}"):
        md = got[name]["metadata"]
        assert md["tenant"] == "acme" and md["region"] == "eu", md
    assert got[f"child-{tag}"]["metadata"]["own"] == "yes"
    assert "own" not in got[f"grandchild-{tag}"]["metadata"]
    trace = read_trace(sdk_server, trace_id, 3)
    assert trace["metadata"]["tenant"] == "acme"


def test_span_under_a_foreign_parent_is_a_root_observation(sdk_server) -> None:
    lf = sdk_server.client
    tag = uuid.uuid4().hex[:8]
    # a span of another instrumentation (not exported to Langfuse) is the parent of the app's root
    foreign = otel_trace.get_tracer(f"web-framework-{tag}")
    with foreign.start_as_current_span("GET /checkout"):
        with lf.start_as_current_observation(name=f"app-root-{tag}") as app_root:
            trace_id = app_root.trace_id
            with lf.start_as_current_observation(name=f"step-{tag}"):
                pass
    lf.flush()
    got = _v2(sdk_server, trace_id, 2)
    assert got[f"app-root-{tag}"]["isRootObservation"] is True
    assert got[f"step-{tag}"]["isRootObservation"] is False
    assert got[f"step-{tag}"]["parentObservationId"] == got[f"app-root-{tag}"]["id"]
    roots = sdk_server.get("/api/public/v2/observations", traceId=trace_id, isRootObservation="true").json()
    assert [o["id"] for o in roots["data"]] == [got[f"app-root-{tag}"]["id"]]


def test_usage_keys_are_kept_as_sent_and_model_parameters_typed_as_langfuse(sdk_server) -> None:
    lf = sdk_server.client
    tag = uuid.uuid4().hex[:8]
    with lf.start_as_current_observation(name=f"root-{tag}") as root:
        trace_id = root.trace_id
        with lf.start_as_current_observation(
            name=f"openai-keys-{tag}", as_type="generation", model="gpt-4o-mini",
            usage_details={"prompt_tokens": 10, "completion_tokens": 5},
            model_parameters={"temperature": 0.5, "max_tokens": 100, "stop": ["\n", "END"], "stream": False,
                              "tool_choice": {"type": "auto"}, "seed": None},
        ):
            pass
        with lf.start_as_current_observation(
            name=f"full-openai-{tag}", as_type="generation", model="gpt-4o-mini",
            usage_details={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        ):
            pass
        with lf.start_as_current_observation(
            name=f"langfuse-keys-{tag}", as_type="generation", model="gpt-4o-mini",
            usage_details={"input": 1000, "output": 100, "input_cached_tokens": 50},
        ):
            pass
    lf.flush()
    got = _v2(sdk_server, trace_id, 4)
    # keys as sent, with total added
    assert got[f"openai-keys-{tag}"]["usageDetails"] == {"prompt_tokens": 10, "completion_tokens": 5, "total": 15}
    # a complete OpenAI usage object is Langfuse's input/output/total
    assert got[f"full-openai-{tag}"]["usageDetails"] == {"input": 10, "output": 5, "total": 15}
    assert got[f"langfuse-keys-{tag}"]["usageDetails"] == {
        "input": 1000, "output": 100, "input_cached_tokens": 50, "total": 1150}
    assert got[f"langfuse-keys-{tag}"]["costDetails"]["input"] == pytest.approx(1000 * 1.5e-7)
    # strings and numbers as sent; booleans, lists, objects and null as their JSON text
    assert got[f"openai-keys-{tag}"]["modelParameters"] == {
        "temperature": 0.5, "max_tokens": 100, "stop": '["\\n","END"]', "stream": "false",
        "tool_choice": '{"type":"auto"}', "seed": "null"}


def test_scores_in_a_trace_carry_every_field_and_trace_has_external_id(sdk_server) -> None:
    lf = sdk_server.client
    tag = uuid.uuid4().hex[:8]
    with lf.start_as_current_observation(name=f"scored-{tag}") as root:
        trace_id = root.trace_id
    lf.create_score(name="accuracy", value=0.5, trace_id=trace_id)
    lf.create_score(name="verdict", value="good", data_type="CATEGORICAL", trace_id=trace_id)
    lf.create_score(name="note", value="well written", data_type="TEXT", trace_id=trace_id)
    lf.flush()
    trace = sdk_server.wait_for(f"/api/public/traces/{trace_id}",
                                lambda r: r.status_code == 200 and len(r.json()["scores"]) == 3).json()
    assert "externalId" in trace and trace["externalId"] is None
    scores = {s["name"]: s for s in trace["scores"]}
    base = {"id", "projectId", "traceId", "name", "source", "observationId", "timestamp", "createdAt", "updatedAt",
            "authorUserId", "comment", "metadata", "configId", "queueId", "executionTraceId", "environment",
            "dataType", "stringValue"}
    assert set(scores["accuracy"]) == base | {"value"}
    assert scores["accuracy"]["stringValue"] is None and scores["accuracy"]["value"] == 0.5
    assert scores["accuracy"]["observationId"] is None and scores["accuracy"]["projectId"] == sdk_server.project_id
    assert scores["verdict"]["stringValue"] == "good" and "value" in scores["verdict"]
    assert set(scores["note"]) == base and scores["note"]["stringValue"] == "well written"


def test_archived_item_leaves_the_item_list(sdk_server) -> None:
    lf = sdk_server.client
    name = f"ds-archive-{uuid.uuid4().hex[:8]}"
    lf.create_dataset(name=name)
    keep = lf.create_dataset_item(dataset_name=name, input={"q": "keep"})
    gone = lf.create_dataset_item(dataset_name=name, input={"q": "archive"})
    assert {i.id for i in lf.get_dataset(name).items} == {keep.id, gone.id}
    lf.create_dataset_item(dataset_name=name, id=gone.id, input={"q": "archive"}, status="ARCHIVED")
    assert [i.id for i in lf.get_dataset(name).items] == [keep.id]
    # still readable on its own, with its status
    assert lf.api.dataset_items.get(gone.id).status == "ARCHIVED"


def test_dataset_at_an_item_creation_time_includes_that_item(sdk_server) -> None:
    lf = sdk_server.client
    name = f"ds-version-{uuid.uuid4().hex[:8]}"
    lf.create_dataset(name=name)
    first = lf.create_dataset_item(dataset_name=name, input={"n": 1})
    time.sleep(0.01)
    second = lf.create_dataset_item(dataset_name=name, input={"n": 2})
    at_first = first.created_at.astimezone(UTC)
    assert [i.id for i in lf.get_dataset(name, version=at_first).items] == [first.id]
    at_second = second.created_at.astimezone(UTC)
    assert {i.id for i in lf.get_dataset(name, version=at_second).items} == {first.id, second.id}
    before = datetime(2000, 1, 1, tzinfo=UTC)
    assert lf.get_dataset(name, version=before).items == []


def test_score_with_public_key_only_bearer_auth(sdk_server) -> None:
    lf = sdk_server.client
    tag = uuid.uuid4().hex[:8]
    with lf.start_as_current_observation(name=f"browser-{tag}") as root:
        trace_id = root.trace_id
    lf.flush()
    read_trace(sdk_server, trace_id, 1)
    bearer = {"Authorization": f"Bearer {sdk_server.public_key}"}
    url = sdk_server.url
    # what a browser client sends: the public key alone
    r = httpx.post(f"{url}/api/public/scores", headers=bearer,
                   json={"name": "thumbs", "value": 1, "traceId": trace_id, "comment": "from the browser"})
    assert r.status_code == 200, r.text
    score_id = r.json()["id"]
    batch = {"batch": [
        {"id": str(uuid.uuid4()), "type": "score-create", "timestamp": datetime.now(UTC).isoformat(),
         "body": {"id": f"s-{tag}", "name": "stars", "value": 4, "traceId": trace_id}},
        {"id": f"evt-{tag}", "type": "trace-create", "timestamp": datetime.now(UTC).isoformat(),
         "body": {"id": f"t-{tag}", "name": "not allowed"}},
    ]}
    r = httpx.post(f"{url}/api/public/ingestion", headers=bearer, json=batch)
    assert r.status_code == 207, r.text
    assert len(r.json()["successes"]) == 1
    assert [(e["id"], e["status"]) for e in r.json()["errors"]] == [(f"evt-{tag}", 403)]
    got = sdk_server.wait_for("/api/public/v2/scores", lambda r: r.status_code == 200 and len(r.json()["data"]) == 2,
                              traceId=trace_id).json()["data"]
    assert {s["name"] for s in got} == {"thumbs", "stars"}
    assert next(s for s in got if s["name"] == "thumbs")["id"] == score_id
    time.sleep(0.5)
    assert sdk_server.get(f"/api/public/traces/t-{tag}").status_code == 404

    # every other endpoint stays on Basic auth with the secret key
    for method, path in (("GET", "/api/public/v2/scores"), ("GET", f"/api/public/traces/{trace_id}"),
                         ("GET", "/api/public/projects"), ("POST", "/api/public/otel/v1/traces"),
                         ("DELETE", f"/api/public/scores/{score_id}"), ("GET", "/api/public/v2/prompts")):
        r = httpx.request(method, f"{url}{path}", headers=bearer)
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.json()["message"]
    # an unknown public key is refused
    r = httpx.post(f"{url}/api/public/scores", headers={"Authorization": "Bearer pk-lf-unknown"},
                   json={"name": "x", "value": 1, "traceId": trace_id})
    assert r.status_code == 401


def test_observations_carry_the_matched_model_and_its_prices(sdk_server) -> None:
    lf = sdk_server.client
    tag = uuid.uuid4().hex[:8]
    own = httpx.post(f"{sdk_server.url}/api/public/models", auth=sdk_server.auth, json={
        "modelName": f"house-model-{tag}", "matchPattern": f"(?i)^house-model-{tag}$", "unit": "TOKENS",
        "inputPrice": 0.000001, "outputPrice": 0.000002}).json()
    with lf.start_as_current_observation(name=f"root-{tag}") as root:
        trace_id = root.trace_id
        for name, model in ((f"managed-{tag}", "gpt-4o-mini"), (f"house-{tag}", f"house-model-{tag}"),
                            (f"unknown-{tag}", f"nobody-knows-{tag}")):
            with lf.start_as_current_observation(name=name, as_type="generation", model=model,
                                                 usage_details={"input": 100, "output": 10}):
                pass
    lf.flush()
    got = _v2(sdk_server, trace_id, 4)
    managed = got[f"managed-{tag}"]
    assert managed["modelId"] and managed["internalModelId"] == managed["modelId"]
    model = sdk_server.get(f"/api/public/models/{managed['modelId']}").json()
    assert model["modelName"] == "gpt-4o-mini" and model["isLangfuseManaged"] is True
    # v2 carries prices as decimal strings, as Langfuse does
    assert (managed["inputPrice"], managed["outputPrice"]) == ("0.00000015", "0.0000006")
    house = got[f"house-{tag}"]
    assert house["modelId"] == own["id"] and (house["inputPrice"], house["outputPrice"]) == ("0.000001", "0.000002")
    assert house["costDetails"]["input"] == pytest.approx(100 * 0.000001)
    unknown = got[f"unknown-{tag}"]
    assert unknown["modelId"] is None and unknown["inputPrice"] is None
    # v1 bodies (the trace's observations, /observations) carry them as numbers
    trace = read_trace(sdk_server, trace_id, 4)
    v1 = {o["name"]: o for o in trace["observations"]}
    assert v1[f"managed-{tag}"]["modelId"] == managed["modelId"]
    assert v1[f"managed-{tag}"]["inputPrice"] == pytest.approx(1.5e-7)
    assert v1[f"house-{tag}"]["outputPrice"] == pytest.approx(0.000002)
    one = sdk_server.get(f"/api/public/observations/{house['id']}").json()
    assert one["modelId"] == own["id"] and one["inputPrice"] == pytest.approx(0.000001)
