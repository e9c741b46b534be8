"""The matched model of a generation is stored when it is ingested (OLAP migration 0003) and read back
with its prices, on both stacks: embedded (chDB) and scale-out (ClickHouse over HTTP, PostgreSQL,
Redis, S3). Driven by the official SDK (5.x) against a live server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from conftest import LiveServer, SdkServer, create_project_key
from support.sdk_reads import OBS_FIELDS


@pytest.fixture
def api(make_settings, stack: str) -> Iterator[SdkServer]:
    with LiveServer(make_settings(stack)) as server:
        yield SdkServer(server, create_project_key(server.services))


def test_a_generation_keeps_the_model_that_priced_it(api: SdkServer) -> None:
    from langfuse import Langfuse

    tag = uuid.uuid4().hex[:8]
    own = httpx.post(f"{api.url}/api/public/models", auth=api.auth, json={
        "modelName": f"house-{tag}", "matchPattern": f"(?i)^house-{tag}$", "unit": "TOKENS",
        "inputPrice": 0.000001, "outputPrice": 0.000002}).json()
    client = Langfuse(public_key=api.public_key, secret_key=api.secret_key, base_url=api.url, flush_interval=0.2)
    with client.start_as_current_observation(name="root") as root:
        trace_id = root.trace_id
        for name, model in (("managed", "gpt-4o-mini"), ("house", f"house-{tag}"), ("unknown", f"nobody-{tag}")):
            with client.start_as_current_observation(name=name, as_type="generation", model=model,
                                                     usage_details={"input": 100, "output": 10}):
                pass
    client.flush()  # never shutdown(): the SDK's state is process-wide

    def read() -> tuple[dict[str, dict], dict[str, dict], dict[str, dict]]:
        v2 = api.wait_for("/api/public/v2/observations", lambda r: r.status_code == 200 and len(r.json()["data"]) == 4,
                          traceId=trace_id, fields=OBS_FIELDS, timeout=60).json()["data"]
        v1 = api.get("/api/public/observations", traceId=trace_id).json()["data"]
        trace = api.get(f"/api/public/traces/{trace_id}").json()["observations"]
        return tuple({o["name"]: o for o in rows} for rows in (v2, v1, trace))

    v2, v1, trace = read()
    managed = v2["managed"]
    assert managed["modelId"] and managed["internalModelId"] == managed["modelId"]
    assert api.get(f"/api/public/models/{managed['modelId']}").json()["modelName"] == "gpt-4o-mini"
    assert (managed["inputPrice"], managed["outputPrice"], managed["totalPrice"]) == ("0.00000015", "0.0000006", None)
    assert (v2["house"]["modelId"], v2["house"]["inputPrice"], v2["house"]["outputPrice"]) == (
        own["id"], "0.000001", "0.000002")
    for body in (v1, trace):  # v1 bodies: prices as numbers
        assert body["managed"]["modelId"] == managed["modelId"] and body["managed"]["inputPrice"] == pytest.approx(1.5e-7)
        assert body["house"]["modelId"] == own["id"] and body["house"]["outputPrice"] == pytest.approx(0.000002)
    one = api.get(f"/api/public/observations/{v2['house']['id']}").json()
    assert one["modelId"] == own["id"] and one["inputPrice"] == pytest.approx(0.000001)
    # an unknown model: every model field null, everywhere; a span has none either
    for body in (v2, v1, trace):
        assert [body["unknown"][k] for k in ("modelId", "inputPrice", "outputPrice", "totalPrice")] == [None] * 4
        assert body["root"]["modelId"] is None and body["root"]["inputPrice"] is None
    assert v2["unknown"]["internalModelId"] is None and v2["unknown"]["costDetails"] == {}
    assert "_modelToMatch" not in v2["unknown"] and "_modelToMatch" not in v1["unknown"]

    # Stored, not matched again when read: a model created afterwards for the unknown name does not
    # claim the generation (its cost was not computed with it); the house model deleted afterwards
    # keeps its id on the generation, with no prices left to show.
    later = httpx.post(f"{api.url}/api/public/models", auth=api.auth, json={
        "modelName": f"nobody-{tag}", "matchPattern": f"(?i)^nobody-{tag}$", "unit": "TOKENS", "inputPrice": 1.0})
    assert later.status_code == 200, later.text
    assert httpx.delete(f"{api.url}/api/public/models/{own['id']}", auth=api.auth).status_code == 204
    v2, v1, trace = read()
    for body in (v2, v1, trace):
        assert body["unknown"]["modelId"] is None and body["unknown"]["inputPrice"] is None
        assert body["house"]["modelId"] == own["id"] and body["house"]["inputPrice"] is None
        assert body["house"]["costDetails"]["input"] == pytest.approx(100 * 0.000001)  # the cost stays
