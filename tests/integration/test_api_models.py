"""/api/public/models on both stacks: shapes, validation, isolation, and project prices used for cost."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import LiveServer, create_project_key
from owlscope.app import create_app
from owlscope.ingestion.pricing import load_default_models
from owlscope.storage.oltp.models import Model, Price, PricingTier
from owlscope.tracing_config.project_prices import project_models

MODEL_KEYS = {
    "id", "modelName", "matchPattern", "startDate", "unit", "inputPrice", "outputPrice", "totalPrice",
    "tokenizerId", "tokenizerConfig", "isLangfuseManaged", "createdAt", "prices", "pricingTiers",
}
GPT4O = next(m for m in load_default_models() if m.model_name == "gpt-4o")
N_DEFAULTS = len(load_default_models())


@dataclass
class Api:
    client: TestClient
    services: Any
    a: tuple[str, str]
    b: tuple[str, str]
    project_a: str


@pytest.fixture
def api(stack: str, make_settings) -> Iterator[Api]:
    app = create_app(make_settings(stack), run_worker=False)
    with TestClient(app) as client:
        a = create_project_key(app.state.services, project_name="a")
        b = create_project_key(app.state.services, project_name="b")
        yield Api(client, app.state.services, (a["public_key"], a["secret_key"]),
                  (b["public_key"], b["secret_key"]), a["project_id"])


def _create(api: Api, body: dict, auth: tuple[str, str] | None = None) -> httpx.Response:
    # json.dumps, not httpx's json=: bodies may hold NaN, as some clients send it
    return api.client.post("/api/public/models", content=json.dumps(body), auth=auth or api.a,
                           headers={"content-type": "application/json"})


FLAT = {"modelName": "acme-llm", "matchPattern": r"(?i)^acme-llm(-\d+)?$", "unit": "TOKENS",
        "inputPrice": 0.001, "outputPrice": 0.002, "startDate": "2024-01-02T03:04:05Z",
        "tokenizerId": "openai", "tokenizerConfig": {"tokenizerModel": "gpt-4o"}}


def test_create_get_list_delete_project_model(api: Api) -> None:
    r = _create(api, FLAT)
    assert r.status_code == 200, r.text
    model = r.json()
    assert set(model) == MODEL_KEYS
    assert model["modelName"] == "acme-llm" and model["matchPattern"] == FLAT["matchPattern"]
    assert model["startDate"] == "2024-01-02T03:04:05.000Z"
    assert model["unit"] == "TOKENS" and model["isLangfuseManaged"] is False
    assert (model["inputPrice"], model["outputPrice"], model["totalPrice"]) == (0.001, 0.002, None)
    assert model["prices"] == {"input": {"price": 0.001}, "output": {"price": 0.002}}
    assert model["tokenizerId"] == "openai" and model["tokenizerConfig"] == {"tokenizerModel": "gpt-4o"}
    [tier] = model["pricingTiers"]
    assert tier == {"id": f"{model['id']}_tier_default", "name": "Standard", "isDefault": True,
                    "priority": 0, "conditions": [], "prices": {"input": 0.001, "output": 0.002}}
    assert model["createdAt"].endswith("Z")

    got = api.client.get(f"/api/public/models/{model['id']}", auth=api.a)
    assert got.status_code == 200 and got.json() == model

    listed = api.client.get("/api/public/models", params={"limit": 100}, auth=api.a).json()
    assert listed["meta"] == {"page": 1, "limit": 100, "totalItems": N_DEFAULTS + 1,
                              "totalPages": -(-(N_DEFAULTS + 1) // 100)}
    names = [m["modelName"] for m in listed["data"]]
    assert names == sorted(names)
    assert sum(not m["isLangfuseManaged"] for m in listed["data"]) == 1
    page2 = api.client.get("/api/public/models", params={"limit": 100, "page": 2}, auth=api.a).json()
    ids = [m["id"] for m in listed["data"]] + [m["id"] for m in page2["data"]]
    assert len(ids) == len(set(ids)) == N_DEFAULTS + 1 and model["id"] in ids

    deleted = api.client.delete(f"/api/public/models/{model['id']}", auth=api.a)
    assert deleted.status_code == 204 and deleted.content == b""
    gone = api.client.get(f"/api/public/models/{model['id']}", auth=api.a)
    assert gone.status_code == 404 and gone.json()["error"] == "LangfuseNotFoundError"
    again = api.client.delete(f"/api/public/models/{model['id']}", auth=api.a)
    assert again.status_code == 404
    with api.services.sessions() as s:  # tiers and prices went with the model
        assert s.query(PricingTier).count() == 0 and s.query(Price).count() == 0


def test_create_model_with_pricing_tiers(api: Api) -> None:
    body = {
        "modelName": "tiered", "matchPattern": "(?i)^tiered$", "unit": "TOKENS",
        "pricingTiers": [
            {"name": "Standard", "isDefault": True, "priority": 0, "conditions": [],
             "prices": {"input": 1e-6, "output": 2e-6}},
            {"name": "Large context", "isDefault": False, "priority": 1,
             "conditions": [{"usageDetailPattern": "input", "operator": "gt", "value": 200000}],
             "prices": {"input": 2e-6, "output": 4e-6}},
            {"name": "Flex", "isDefault": False, "priority": 2,
             "conditions": [{"source": "model_parameters", "key": "service_tier", "operator": "in",
                             "values": ["flex"]}],
             "prices": {"input": 5e-7, "output": 1e-6}},
        ],
    }
    r = _create(api, body)
    assert r.status_code == 200, r.text
    model = r.json()
    assert (model["inputPrice"], model["outputPrice"]) == (1e-6, 2e-6)
    tiers = {t["name"]: t for t in model["pricingTiers"]}
    assert [t["priority"] for t in model["pricingTiers"]] == [0, 1, 2]
    assert tiers["Large context"]["conditions"] == [
        {"usageDetailPattern": "input", "operator": "gt", "value": 200000, "caseSensitive": False}]
    assert tiers["Flex"]["conditions"][0]["values"] == ["flex"]
    assert tiers["Flex"]["prices"] == {"input": 5e-7, "output": 1e-6}

    # the worker's view of the same model (exact decimals, tiers in priority order)
    [mp] = project_models(api.services.sessions, api.project_a)
    assert mp.id == model["id"] and mp.project_id == api.project_a
    large = mp.select_tier({"input": 300_000, "output": 10})
    assert large is not None and large.name == "Large context"
    flex = mp.select_tier({"input": 10}, model_parameters={"service_tier": "flex"})
    assert flex is not None and flex.name == "Flex"
    with api.services.sessions() as s:
        stored = {p.usage_type: p.price for p in s.query(Price).filter(Price.model_id == model["id"])}
    assert Decimal("0.0000005") in stored.values()


BAD_BODIES = [
    ({"matchPattern": "x", "inputPrice": 1}, "modelName"),
    ({"modelName": "m", "matchPattern": "(unclosed", "inputPrice": 1}, "not a valid regular expression"),
    ({"modelName": "m", "matchPattern": "m"}, "Must provide either flat prices"),
    ({"modelName": "m", "matchPattern": "m", "inputPrice": 1, "totalPrice": 2}, "total price must be null"),
    ({"modelName": "m", "matchPattern": "m", "inputPrice": -1}, "must not be negative"),
    ({"modelName": "m", "matchPattern": "m", "inputPrice": 1e31}, "must be below"),
    ({"modelName": "m\x00", "matchPattern": "m", "inputPrice": 1}, "NUL"),
    ({"modelName": "m", "matchPattern": "m", "inputPrice": 1, "tokenizerConfig": {"x": float("nan")}}, "finite"),
    ({"modelName": "m", "matchPattern": "m", "inputPrice": 1, "tokenizerConfig": ["not", "an", "object"]},
     "tokenizerConfig"),
    ({"modelName": "m", "matchPattern": "m", "inputPrice": "lots"}, "inputPrice"),
    ({"modelName": "m", "matchPattern": "m", "inputPrice": 1, "unit": "PARSECS"}, "unit"),
    ({"modelName": "m", "matchPattern": "m", "inputPrice": 1,
      "pricingTiers": [{"name": "S", "isDefault": True, "priority": 0, "conditions": [], "prices": {"input": 1}}]},
     "not both"),
    ({"modelName": "m", "matchPattern": "m",
      "pricingTiers": [{"name": "S", "isDefault": False, "priority": 1,
                        "conditions": [{"usageDetailPattern": "input", "operator": "gt", "value": 1}],
                        "prices": {"input": 1}}]},
     "Exactly one pricing tier must have isDefault"),
    ({"modelName": "m", "matchPattern": "m",
      "pricingTiers": [{"name": "S", "isDefault": True, "priority": 3, "conditions": [], "prices": {"input": 1}}]},
     "priority: 0"),
    ({"modelName": "m", "matchPattern": "m",
      "pricingTiers": [{"name": "S", "isDefault": True, "priority": 0, "conditions": [], "prices": {}}]},
     "at least one price"),
    ({"modelName": "m", "matchPattern": "m",
      "pricingTiers": [
          {"name": "S", "isDefault": True, "priority": 0, "conditions": [], "prices": {"input": 1}},
          {"name": "L", "isDefault": False, "priority": 1, "conditions": [], "prices": {"input": 2}}]},
     "must have at least one condition"),
    ({"modelName": "m", "matchPattern": "m",
      "pricingTiers": [
          {"name": "S", "isDefault": True, "priority": 0, "conditions": [], "prices": {"input": 1}},
          {"name": "L", "isDefault": False, "priority": 1,
           "conditions": [{"usageDetailPattern": "input", "operator": "between", "value": 1}],
           "prices": {"input": 2}}]},
     "operator must be one of"),
    ({"modelName": "m", "matchPattern": "m",
      "pricingTiers": [
          {"name": "S", "isDefault": True, "priority": 0, "conditions": [], "prices": {"input": 1}},
          {"name": "S", "isDefault": False, "priority": 1,
           "conditions": [{"usageDetailPattern": "input", "operator": "gt", "value": 1}],
           "prices": {"input": 2}}]},
     "names must be unique"),
    ({"modelName": "m", "matchPattern": "m",
      "pricingTiers": [
          {"name": "S", "isDefault": True, "priority": 0, "conditions": [], "prices": {"input": 1}},
          {"name": "L", "isDefault": False, "priority": 1,
           "conditions": [{"usageDetailPattern": "input", "operator": "gt", "value": 1}],
           "prices": {"output": 2}}]},
     "same usage keys"),
]


def test_invalid_model_definitions_are_400_and_write_nothing(api: Api) -> None:
    for body, message in BAD_BODIES:  # one app for all cases: building a stack is the slow part
        r = _create(api, body)
        assert r.status_code == 400, (body, r.text)
        err = r.json()
        assert err["error"] == "InvalidRequestError" and message in err["message"], (body, err)
    with api.services.sessions() as s:
        assert s.query(Model).count() == 0 and s.query(PricingTier).count() == 0


@pytest.mark.parametrize("stack", ["embedded"])
def test_non_json_body_and_bad_paging_are_400(api: Api) -> None:
    r = api.client.post("/api/public/models", content=b"{nope", auth=api.a,
                        headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "InvalidRequestError"
    for params in ({"limit": 0}, {"limit": 101}, {"page": 0}, {"page": "x"}):
        r = api.client.get("/api/public/models", params=params, auth=api.a)
        assert r.status_code == 400, params
        assert r.json()["error"] == "InvalidRequestError"
    assert api.client.get("/api/public/models").status_code == 401


def test_model_names_are_unique_per_project(api: Api) -> None:
    assert _create(api, FLAT).status_code == 200
    dup = _create(api, FLAT)
    assert dup.status_code == 400 and "already exists" in dup.json()["message"]
    assert _create(api, FLAT, auth=api.b).status_code == 200  # another project may use the name


def test_builtin_models_are_readable_but_not_deletable(api: Api) -> None:
    r = api.client.get(f"/api/public/models/{GPT4O.id}", auth=api.a)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == MODEL_KEYS and body["isLangfuseManaged"] is True and body["modelName"] == "gpt-4o"
    assert body["inputPrice"] == GPT4O.prices["input"]
    d = api.client.delete(f"/api/public/models/{GPT4O.id}", auth=api.a)
    assert d.status_code == 403
    assert d.json()["error"] == "AccessDeniedError" and "same modelName" in d.json()["message"]
    assert api.client.get(f"/api/public/models/{GPT4O.id}", auth=api.a).status_code == 200
    assert api.client.delete("/api/public/models/no-such-model", auth=api.a).status_code == 404


def test_projects_cannot_see_each_others_models(api: Api) -> None:
    model = _create(api, FLAT).json()
    for method in ("get", "delete"):
        r = getattr(api.client, method)(f"/api/public/models/{model['id']}", auth=api.b)
        assert r.status_code == 404 and r.json()["error"] == "LangfuseNotFoundError"
    listed = api.client.get("/api/public/models", params={"limit": 100}, auth=api.b).json()
    assert listed["meta"]["totalItems"] == N_DEFAULTS
    assert api.client.get(f"/api/public/models/{model['id']}", auth=api.a).status_code == 200


def test_a_broken_stored_model_is_skipped_for_pricing(api: Api) -> None:
    assert _create(api, FLAT).status_code == 200
    with api.services.sessions() as s, s.begin():
        s.add(Model(project_id=api.project_a, model_name="broken", match_pattern="(oops"))
    assert [m.model_name for m in project_models(api.services.sessions, api.project_a)] == ["acme-llm"]


# ------------------------------------------------------------------------------------------ cost


def _generation(model: str, usage: dict[str, int]) -> tuple[str, dict]:
    obs_id, now = str(uuid.uuid4()), datetime.now(UTC).isoformat().replace("+00:00", "Z")
    event = {"id": str(uuid.uuid4()), "type": "generation-create", "timestamp": now,
             "body": {"id": obs_id, "traceId": str(uuid.uuid4()), "name": "llm-call", "model": model,
                      "startTime": now, "endTime": now, "usageDetails": usage}}
    return obs_id, {"batch": [event]}


def _stored_cost(services: Any, project_id: str, obs_id: str, timeout: float = 10.0) -> dict[str, float]:
    """The observation's merged cost_details, read from the OLAP table once the worker inserted it."""
    deadline = time.monotonic() + timeout
    while True:
        rows = services.olap.query(
            "SELECT argMaxIfMerge(cost_details) FROM {db}.observations "
            "WHERE project_id = {p:String} AND id = {id:String} GROUP BY project_id, trace_id, id",
            {"p": project_id, "id": obs_id},
        )
        if rows:
            return dict(rows[0][0])
        if time.monotonic() > deadline:
            raise AssertionError(f"observation {obs_id} not ingested within {timeout}s")
        time.sleep(0.1)


def _api_observation(client: httpx.Client, obs_id: str, timeout: float = 10.0) -> dict:
    """GET /api/public/observations/{id}, polled until the observation is visible."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/api/public/observations/{obs_id}")
        if r.status_code == 200:
            return r.json()
        assert r.status_code == 404, r.text
        if time.monotonic() > deadline:
            raise AssertionError(f"GET /api/public/observations/{obs_id} stayed 404")
        time.sleep(0.1)


def test_project_model_prices_generations_instead_of_the_default(stack: str, make_settings) -> None:
    usage = {"input": 1000, "output": 500}
    default_total = 1000 * GPT4O.prices["input"] + 500 * GPT4O.prices["output"]
    with LiveServer(make_settings(stack)) as srv:
        a = create_project_key(srv.services, project_name="a")
        b = create_project_key(srv.services, project_name="b")
        ca = httpx.Client(base_url=srv.url, auth=(a["public_key"], a["secret_key"]), timeout=10)
        cb = httpx.Client(base_url=srv.url, auth=(b["public_key"], b["secret_key"]), timeout=10)
        with ca, cb:
            # override the built-in gpt-4o for project A only
            r = ca.post("/api/public/models", json={
                "modelName": "gpt-4o", "matchPattern": "(?i)^(openai/)?gpt-4o$", "unit": "TOKENS",
                "inputPrice": 0.001, "outputPrice": 0.002})
            assert r.status_code == 200, r.text
            custom_id = r.json()["id"]

            obs_a, batch = _generation("gpt-4o", usage)
            assert ca.post("/api/public/ingestion", json=batch).status_code == 207
            obs_b, batch = _generation("gpt-4o", usage)
            assert cb.post("/api/public/ingestion", json=batch).status_code == 207

            cost_a = _stored_cost(srv.services, a["project_id"], obs_a)
            assert cost_a == pytest.approx({"input": 1.0, "output": 1.0, "total": 2.0})
            cost_b = _stored_cost(srv.services, b["project_id"], obs_b)
            assert cost_b["total"] == pytest.approx(default_total)

            seen = _api_observation(ca, obs_a)
            assert seen["costDetails"] == pytest.approx({"input": 1.0, "output": 1.0, "total": 2.0})
            assert seen["calculatedTotalCost"] == pytest.approx(2.0)
            assert _api_observation(cb, obs_b)["calculatedTotalCost"] == pytest.approx(default_total)

            # after deleting the project model, new generations get the built-in price again
            assert ca.delete(f"/api/public/models/{custom_id}").status_code == 204
            obs_a2, batch = _generation("gpt-4o", usage)
            assert ca.post("/api/public/ingestion", json=batch).status_code == 207
            assert _stored_cost(srv.services, a["project_id"], obs_a2)["total"] == pytest.approx(default_total)
