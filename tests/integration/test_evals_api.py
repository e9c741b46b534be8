"""LLM connections (/api/public/llm-connections) and the unstable evaluation API
(/api/public/unstable/evaluators, /evaluation-rules) in-process on both stacks: shapes, validation
with the documented error codes, project isolation, encryption at rest, the ENCRYPTION_KEY check."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from langfuse.api.core.pydantic_utilities import parse_obj_as
from langfuse.api.llm_connections.types import LlmConnection as SdkLlmConnection
from langfuse.api.llm_connections.types import PaginatedLlmConnections
from sqlalchemy import select

from conftest import create_project_key
from owlscope.app import create_app
from owlscope.datasets.store import create_dataset
from owlscope.evals import crypto
from owlscope.evals.connections import set_default_model, test_connection, test_saved_connection
from owlscope.evals.evaluators import create_evaluator, get_evaluator
from owlscope.storage.oltp.eval_models import LlmConnection
from support.fake_openai import FakeOpenAI

CONN = "/api/public/llm-connections"
EVALS = "/api/public/unstable/evaluators"
RULES = "/api/public/unstable/evaluation-rules"
CONNECTION_KEYS = {"id", "provider", "adapter", "displaySecretKey", "baseURL", "customModels", "withDefaultModels",
                   "extraHeaderKeys", "config", "createdAt", "updatedAt"}
EVALUATOR_KEYS = {"id", "name", "version", "type", "variables", "mapping", "evaluationRuleCount", "createdAt",
                  "updatedAt", "prompt", "outputDefinition", "modelConfig"}
RULE_KEYS = {"id", "name", "evaluator", "evaluators", "enabled", "status", "pausedReason", "pausedMessage",
             "sampling", "target", "filter", "mapping", "createdAt", "updatedAt"}
OUTPUT = {"dataType": "NUMERIC", "reasoning": {"description": "why"},
          "score": {"description": "0 to 1", "minValue": 0, "maxValue": 1}}


@dataclass
class Api:
    client: TestClient
    a: tuple[str, str]
    b: tuple[str, str]
    project_a: str

    @property
    def services(self):
        return self.client.app.state.services

    def call(self, method: str, path: str, body: Any = None, auth: tuple[str, str] | None = None) -> httpx.Response:
        return self.client.request(method, path, json=body, auth=auth or self.a)

    def ok(self, method: str, path: str, body: Any = None, auth: tuple[str, str] | None = None) -> Any:
        r = self.call(method, path, body, auth)
        assert r.status_code == 200, r.text
        return r.json()

    def fails(self, status: int, method: str, path: str, body: Any = None, code: str | None = None) -> dict:
        r = self.call(method, path, body)
        assert r.status_code == status, r.text
        data = r.json()
        assert isinstance(data["message"], str) and data["message"]
        if code is not None:
            assert data["code"] == code, data
        return data

    def connect(self, base_url: str = "http://127.0.0.1:9/v1", provider: str = "openai") -> dict:
        return self.ok("PUT", CONN, {"provider": provider, "adapter": "openai", "secretKey": "sk-proj-secret-0123456789",
                                     "baseURL": base_url})


@pytest.fixture
def api(stack: str, make_settings) -> Iterator[Api]:
    # scale-out does not generate secrets: ENCRYPTION_KEY is set explicitly, as every process must share it
    app = create_app(make_settings(stack, encryption_key="5e" * 32), run_worker=False)
    with TestClient(app) as client:
        a = create_project_key(app.state.services, project_name="a")
        b = create_project_key(app.state.services, project_name="b")
        yield Api(client, (a["public_key"], a["secret_key"]), (b["public_key"], b["secret_key"]), a["project_id"])


# ---- LLM connections ----------------------------------------------------------------------------------------
def test_connection_upsert_list_delete_and_secrets_never_leave(api: Api) -> None:
    body = {"provider": "gateway", "adapter": "openai", "secretKey": "sk-proj-abcdefghijklmnop1234",
            "baseURL": "http://litellm:4000/v1", "customModels": ["judge-large", "judge-small"],
            "withDefaultModels": False, "extraHeaders": {"X-Team": "evals", "X-Secret": "hdr-value"}}
    created = api.ok("PUT", CONN, body)
    assert set(created) == CONNECTION_KEYS
    parse_obj_as(SdkLlmConnection, created)
    assert created["displaySecretKey"] == "sk-...1234"
    assert (created["customModels"], created["withDefaultModels"], created["extraHeaderKeys"]) == (
        ["judge-large", "judge-small"], False, ["X-Secret", "X-Team"])
    assert "abcdefghijklmnop" not in str(created) and "hdr-value" not in str(created)

    again = api.ok("PUT", CONN, {**body, "secretKey": "sk-new-key-zzzzzzzz9999", "extraHeaders": None})
    assert again["id"] == created["id"] and again["displaySecretKey"] == "sk-...9999"
    assert again["extraHeaderKeys"] == [] and again["createdAt"] == created["createdAt"]
    api.connect(provider="second")
    listed = api.ok("GET", CONN)
    parse_obj_as(PaginatedLlmConnections, listed)
    assert [c["provider"] for c in listed["data"]] == ["gateway", "second"]
    assert listed["meta"] == {"page": 1, "limit": 50, "totalItems": 2, "totalPages": 1}
    assert api.ok("GET", CONN, auth=api.b)["data"] == []

    with api.services.sessions() as s:
        row = s.scalars(select(LlmConnection).where(LlmConnection.id == created["id"])).one()
    assert "sk-new-key" not in row.secret_key and row.secret_key.startswith("v1.")
    key = crypto.settings_key(api.services.settings)
    assert crypto.decrypt(key, row.secret_key, context=api.project_a) == "sk-new-key-zzzzzzzz9999"
    with pytest.raises(crypto.DecryptionFailed):
        crypto.decrypt(key, row.secret_key, context="another-project")

    api.fails(404, "DELETE", f"{CONN}/{created['id']}x")
    r = api.call("DELETE", f"{CONN}/{created['id']}", auth=api.b)
    assert r.status_code == 404 and r.json()["error"] == "LangfuseNotFoundError"
    assert api.ok("DELETE", f"{CONN}/{created['id']}") == {"message": "LLM connection successfully deleted"}
    assert [c["provider"] for c in api.ok("GET", CONN)["data"]] == ["second"]


@pytest.mark.parametrize("body, message", [
    ({"provider": "p", "adapter": "nope", "secretKey": "k"}, "adapter must be one of"),
    ({"provider": "p", "adapter": "bedrock", "secretKey": "k"}, "not supported by this server"),
    ({"provider": "p", "adapter": "openai"}, "secretKey"),
    ({"provider": "p", "adapter": "openai", "secretKey": "k", "baseURL": "ftp://x"}, "baseURL"),
    ({"provider": "p", "adapter": "anthropic", "secretKey": "k", "config": {"region": "x"}}, "config"),
    ({"provider": "p", "adapter": "azure", "secretKey": "k"}, "baseURL"),
    ({"provider": "", "adapter": "openai", "secretKey": "k"}, "provider"),
])
def test_connection_validation(api: Api, body: dict, message: str) -> None:
    data = api.fails(400, "PUT", CONN, body)
    assert data["error"] == "InvalidRequestError" and message in data["message"]
    assert api.ok("GET", CONN)["data"] == []


def test_deleting_a_connection_pauses_the_evaluators_that_use_it(api: Api) -> None:
    conn = api.connect()
    set_default_model(api.services.sessions, api.project_a, provider="openai", model="gpt-4o-mini")
    ev = create_evaluator(api.services, api.project_a, {"name": "rel", "template": "relevance"})
    assert ev.status == "active"
    api.ok("DELETE", f"{CONN}/{conn['id']}")
    paused = get_evaluator(api.services.sessions, api.project_a, ev.id)
    assert (paused.status, paused.paused_reason) == ("paused", "llm_connection_missing")
    assert "'openai'" in paused.paused_message
    api.connect()  # a new connection with that provider clears the pause ...
    set_default_model(api.services.sessions, api.project_a, provider="openai", model="gpt-4o-mini")
    assert get_evaluator(api.services.sessions, api.project_a, ev.id).status == "active"


def test_test_connection_makes_a_real_call(api: Api) -> None:
    with FakeOpenAI() as llm:
        ok = test_connection(adapter="openai", secret_key="sk-x", base_url=llm.base_url, model="gpt-4o-mini")
        assert ok.ok and "gpt-4o-mini answered" in ok.message
        assert llm.requests[-1]["body"]["max_tokens"] == 5
        assert llm.requests[-1]["headers"]["authorization"] == "Bearer sk-x"
        bad = test_connection(adapter="openai", secret_key="sk-x", base_url=llm.base_url, model="judge-auth")
        assert not bad.ok and "authentication failed" in bad.message and "401" in bad.message
        claude = test_connection(adapter="anthropic", secret_key="sk-ant", base_url=llm.base_url, model="c")
        assert claude.ok, claude.message
        saved = api.ok("PUT", CONN, {"provider": "fake", "adapter": "openai", "secretKey": "sk-saved",
                                     "baseURL": llm.base_url, "customModels": ["my-judge"],
                                     "extraHeaders": {"X-Team": "evals"}})
        result = test_saved_connection(api.services.sessions, api.services.settings, api.project_a, saved["id"])
        assert result.ok and result.model == "my-judge"
        sent = llm.requests[-1]
        assert sent["headers"]["authorization"] == "Bearer sk-saved" and sent["headers"]["x-team"] == "evals"
    down = test_connection(adapter="openai", secret_key="k", base_url="http://127.0.0.1:9/v1")
    assert not down.ok and "cannot reach" in down.message


def test_scaleout_without_encryption_key_refuses_to_store_keys(make_settings) -> None:
    app = create_app(make_settings("scaleout"), run_worker=False)
    with TestClient(app) as client:
        key = create_project_key(app.state.services)
        r = client.put(CONN, json={"provider": "p", "adapter": "openai", "secretKey": "sk-x"},
                       auth=(key["public_key"], key["secret_key"]))
        assert r.status_code == 500 and r.json()["error"] == "ConfigurationError"
        assert "openssl rand -hex 32" in r.json()["message"]
        assert client.get(CONN, auth=(key["public_key"], key["secret_key"])).json()["data"] == []


def test_encryption_key_check(api: Api) -> None:
    settings = api.services.settings
    assert crypto.check_encryption(settings, api.services.sessions) == []
    api.connect()
    assert crypto.check_encryption(settings, api.services.sessions) == []
    missing = crypto.check_encryption(settings.model_copy(update={"encryption_key": None}), api.services.sessions)
    assert len(missing) == 1 and missing[0][0] == "ENCRYPTION_KEY" and "1 LLM connection" in missing[0][1]
    assert "openssl rand -hex 32" in missing[0][2]
    bad = crypto.check_encryption(settings.model_copy(update={"encryption_key": "xyz"}), api.services.sessions)
    assert "64 hex" in bad[0][1]
    other = crypto.check_encryption(settings.model_copy(update={"encryption_key": "ab" * 32}), api.services.sessions)
    assert "does not decrypt" in other[0][1]
    r = api.call("GET", CONN)
    assert r.status_code == 200  # listing never needs the key


# ---- unstable evaluators --------------------------------------------------------------------------------------
def test_builtin_and_custom_evaluators_with_versions(api: Api) -> None:
    listed = api.ok("GET", EVALS, None)
    names = [e["name"] for e in listed["data"]]
    assert {"hallucination", "relevance", "helpfulness", "toxicity", "correctness", "conciseness"} <= set(names)
    for e in listed["data"]:
        assert set(e) == EVALUATOR_KEYS and e["type"] == "llm_as_judge" and e["version"] == 1
        assert e["outputDefinition"]["dataType"] in ("NUMERIC", "BOOLEAN", "CATEGORICAL")
        assert all("{{" + v + "}}" in e["prompt"] for v in e["variables"])
    assert {e["name"]: e["variables"] for e in listed["data"]}["hallucination"] == ["input", "context", "output"]

    api.fails(422, "POST", EVALS, {"name": "tone", "prompt": "Rate {{output}}", "outputDefinition": OUTPUT},
              code="evaluator_preflight_failed")
    api.connect()
    api.fails(422, "POST", EVALS, {"name": "tone", "prompt": "Rate {{output}}", "outputDefinition": OUTPUT,
                                   "modelConfig": {"provider": "nope", "model": "m"}}, code="evaluator_preflight_failed")
    v1 = api.ok("POST", EVALS, {"name": "tone", "prompt": "Rate {{output}} for {{input}}", "outputDefinition": OUTPUT,
                                "modelConfig": {"provider": "openai", "model": "gpt-4o-mini"},
                                "mapping": [{"variable": "output", "source": "output", "jsonPath": "$.text"}]})
    assert (v1["version"], v1["variables"], v1["evaluationRuleCount"]) == (1, ["output", "input"], 0)
    assert v1["modelConfig"] == {"provider": "openai", "model": "gpt-4o-mini"}
    assert v1["mapping"] == [{"variable": "output", "source": "output", "jsonPath": "$.text"}]
    v2 = api.ok("POST", EVALS, {"name": "tone", "prompt": "Judge {{output}}", "outputDefinition": {
        "dataType": "CATEGORICAL", "reasoning": {"description": "why"},
        "score": {"description": "tone", "categories": ["calm", "angry"], "shouldAllowMultipleMatches": False}},
        "modelConfig": {"provider": "openai", "model": "gpt-4o-mini"}})
    assert (v2["id"], v2["version"]) == (v1["id"], 2)
    got = api.ok("GET", f"{EVALS}/{v1['id']}")
    assert (got["version"], got["variables"], got["outputDefinition"]["dataType"]) == (2, ["output"], "CATEGORICAL")
    assert [e["version"] for e in api.ok("GET", EVALS)["data"] if e["name"] == "tone"] == [2]
    assert api.ok("GET", EVALS, auth=api.b)["data"][0]["name"] != "tone"
    r = api.call("GET", f"{EVALS}/{v1['id']}", auth=api.b)
    assert r.status_code == 404 and r.json()["code"] == "resource_not_found"

    assert api.ok("DELETE", f"{EVALS}/{v1['id']}") == {"message": "Evaluator successfully deleted"}
    api.fails(404, "GET", f"{EVALS}/{v1['id']}", code="resource_not_found")


@pytest.mark.parametrize("body, code", [
    ({"name": "x", "prompt": "p", "outputDefinition": {"dataType": "NUMERIC", "reasoning": {"description": "r"}}},
     "invalid_body"),
    ({"name": "x", "prompt": "p", "outputDefinition": {**OUTPUT, "version": 2}}, "invalid_body"),
    ({"name": "x", "prompt": "p", "outputDefinition": {**OUTPUT, "dataType": "TEXT"}}, "invalid_body"),
    ({"name": "x", "outputDefinition": OUTPUT}, "invalid_body"),
    ({"name": "x", "prompt": "{{a}}", "outputDefinition": OUTPUT, "mapping": [{"variable": "b", "source": "input"}]},
     "invalid_variable_mapping"),
    ({"name": "x", "prompt": "{{a}}", "outputDefinition": OUTPUT,
      "mapping": [{"variable": "a", "source": "input", "jsonPath": "$..[("}]}, "invalid_json_path"),
])
def test_evaluator_validation_codes(api: Api, body: dict, code: str) -> None:
    api.connect()
    set_default_model(api.services.sessions, api.project_a, provider="openai", model="m")
    data = api.fails(400, "POST", EVALS, body, code=code)
    assert data["error"] == "InvalidRequestError"


def test_code_evaluators_are_refused(api: Api) -> None:
    api.fails(422, "POST", EVALS, {"type": "code", "name": "c", "sourceCode": "x", "sourceCodeLanguage": "PYTHON"},
              code="unprocessable_content")


# ---- evaluation rules -------------------------------------------------------------------------------------------
def _rule(**extra: Any) -> dict[str, Any]:
    return {"name": "gen-relevance", "evaluator": {"name": "relevance", "type": "llm_as_judge"},
            "target": "observation", "enabled": True, "sampling": 0.25,
            "filter": [{"type": "stringOptions", "column": "type", "operator": "any of", "value": ["GENERATION"]}],
            "mapping": [{"variable": "input", "source": "input"},
                        {"variable": "output", "source": "output", "jsonPath": "$.content"}], **extra}


def test_rule_lifecycle(api: Api) -> None:
    api.fails(422, "POST", RULES, _rule(), code="evaluator_preflight_failed")  # no model to run on yet
    api.connect()
    set_default_model(api.services.sessions, api.project_a, provider="openai", model="gpt-4o-mini")
    rule = api.ok("POST", RULES, _rule())
    assert set(rule) == RULE_KEYS
    assert (rule["target"], rule["status"], rule["enabled"], rule["sampling"]) == ("observation", "active", True, 0.25)
    assert rule["evaluator"]["name"] == "relevance" and rule["evaluator"]["type"] == "llm_as_judge"
    assert rule["evaluators"] == [{"evaluator": rule["evaluator"], "mapping": rule["mapping"]}]
    assert rule["mapping"][1] == {"variable": "output", "source": "output", "jsonPath": "$.content"}
    assert rule["filter"][0]["column"] == "type" and rule["pausedReason"] is None
    api.fails(409, "POST", RULES, _rule(), code="name_conflict")

    second = api.ok("POST", RULES, {"name": "defaults", "target": "observation", "enabled": False,
                                    "evaluators": [{"evaluator": {"name": "conciseness"}}]})
    assert second["status"] == "inactive" and second["evaluators"][0]["mapping"] is None
    assert [m["variable"] for m in second["mapping"]] == ["input", "output"]  # inherited default

    trace_rule = create_evaluator(api.services, api.project_a, {
        "name": "ui-rule", "template": "hallucination", "delay_seconds": 30, "time_scope": ["NEW", "EXISTING"],
        "mapping": [{"variable": "input", "source": "input"},
                    {"variable": "context", "object": "retriever", "objectName": "search", "source": "output"},
                    {"variable": "output", "source": "output"}]})
    listed = api.ok("GET", RULES)
    assert listed["meta"]["totalItems"] == 3
    legacy = next(r for r in listed["data"] if r["id"] == trace_rule.id)
    assert (legacy["target"], legacy["delay"], legacy["timeScope"]) == ("trace", 30000, ["NEW", "EXISTING"])
    assert legacy["mapping"][1] == {"variable": "context", "langfuseObject": "retriever", "objectName": "search",
                                    "source": "output", "jsonPath": None}
    api.fails(400, "PATCH", f"{RULES}/{trace_rule.id}", {"sampling": 0.5})
    api.fails(400, "DELETE", f"{RULES}/{trace_rule.id}")

    patched = api.ok("PATCH", f"{RULES}/{rule['id']}", {"sampling": 0.5, "enabled": False})
    assert (patched["sampling"], patched["status"], patched["mapping"]) == (0.5, "inactive", rule["mapping"])
    patched = api.ok("PATCH", f"{RULES}/{rule['id']}", {"evaluators": [{"evaluator": {"name": "helpfulness"}}]})
    assert patched["evaluator"]["name"] == "helpfulness" and patched["evaluators"][0]["mapping"] is None
    api.fails(400, "PATCH", f"{RULES}/{rule['id']}", {})
    api.fails(400, "PATCH", f"{RULES}/{rule['id']}", {"sampling": 0}, code="invalid_body")
    assert api.ok("GET", f"{RULES}/{rule['id']}")["sampling"] == 0.5

    assert api.ok("DELETE", f"{RULES}/{rule['id']}") == {"message": "Evaluation rule successfully deleted"}
    api.fails(404, "GET", f"{RULES}/{rule['id']}", code="resource_not_found")
    r = api.call("GET", f"{RULES}/{second['id']}", auth=api.b)
    assert r.status_code == 404
    # deleting an evaluator deletes the rules that use it
    conc = next(e for e in api.ok("GET", EVALS)["data"] if e["name"] == "conciseness")
    assert conc["evaluationRuleCount"] == 1
    api.ok("DELETE", f"{EVALS}/{conc['id']}")
    api.fails(404, "GET", f"{RULES}/{second['id']}")


def test_experiment_rule(api: Api) -> None:
    api.connect()
    set_default_model(api.services.sessions, api.project_a, provider="openai", model="gpt-4o-mini")
    ds = create_dataset(api.services.sessions, project_id=api.project_a, name="geo")
    body = {"name": "exp-correct", "target": "experiment", "enabled": True,
            "evaluators": [{"evaluator": {"name": "correctness"}, "mapping": [
                {"variable": "input", "source": "input", "jsonPath": "$.question"},
                {"variable": "expected_output", "source": "expected_output"},
                {"variable": "output", "source": "output"}]}],
            "filter": [{"type": "stringOptions", "column": "datasetId", "operator": "any of", "value": [ds["id"]]}]}
    rule = api.ok("POST", RULES, body)
    assert (rule["target"], rule["filter"][0]["value"]) == ("experiment", [ds["id"]])
    assert rule["mapping"][1] == {"variable": "expected_output", "source": "expected_output", "jsonPath": None}
    unknown = api.fails(400, "POST", RULES, {**body, "name": "x", "filter": [
        {"type": "stringOptions", "column": "datasetId", "operator": "any of", "value": ["nope"]}]},
        code="invalid_filter_value")
    assert unknown["details"]["invalidValues"] == ["nope"] and unknown["details"]["allowedValues"] == [ds["id"]]
    # without a mapping, correctness reads the dataset item's expected output
    default = api.ok("POST", RULES, {"name": "exp-default", "target": "experiment", "enabled": False,
                                     "evaluators": [{"evaluator": {"name": "correctness"}}]})
    assert {"variable": "expected_output", "source": "expected_output", "jsonPath": None} in default["mapping"]
    patched = api.ok("PATCH", f"{RULES}/{rule['id']}", {"filter": []})
    assert patched["filter"] == [] and patched["target"] == "experiment"
    api.fails(400, "PATCH", f"{RULES}/{rule['id']}", {"target": "observation"}, code="invalid_variable_mapping")


@pytest.mark.parametrize("change, status, code", [
    ({"mapping": [{"variable": "input", "source": "input"}]}, 400, "missing_variable_mapping"),
    ({"mapping": [{"variable": "input", "source": "input"}, {"variable": "input", "source": "output"}]}, 400,
     "duplicate_variable_mapping"),
    ({"mapping": [{"variable": "input", "source": "expected_output"}, {"variable": "output", "source": "output"}]},
     400, "invalid_variable_mapping"),
    ({"mapping": [{"variable": "input", "source": "input", "jsonPath": "a.b"},
                  {"variable": "output", "source": "output"}]}, 400, "invalid_json_path"),
    ({"filter": [{"type": "string", "column": "colour", "operator": "=", "value": "x"}]}, 400, "invalid_filter_value"),
    ({"filter": [{"type": "string", "column": "name", "operator": "matches all", "value": "x"}]}, 400,
     "invalid_filter_value"),
    ({"target": "experiment"}, 400, "invalid_filter_value"),  # an observation filter on an experiment rule
    ({"target": "trace"}, 400, "invalid_body"),
    ({"evaluator": {"name": "no-such-evaluator"}}, 404, "resource_not_found"),
    ({"sampling": 1.5}, 400, "invalid_body"),
    ({"evaluators": [{"evaluator": {"name": "relevance"}}, {"evaluator": {"name": "toxicity"}}]}, 422,
     "unprocessable_content"),
])
def test_rule_validation_codes(api: Api, change: dict, status: int, code: str) -> None:
    api.connect()
    set_default_model(api.services.sessions, api.project_a, provider="openai", model="gpt-4o-mini")
    body = _rule(**change)
    if "evaluators" in change:
        body.pop("evaluator")
        body.pop("mapping")
    data = api.fails(status, "POST", RULES, body, code=code)
    if code == "invalid_filter_value" and "target" in change:
        assert data["details"]["allowedValues"] == ["datasetId"]
    elif code == "invalid_filter_value":
        assert "type" in data["details"]["allowedValues"] and data["details"]["field"] == "filter[0]"
    if code == "missing_variable_mapping":
        assert data["details"]["variables"] == ["output"]
    assert api.ok("GET", RULES)["data"] == []


def test_unstable_errors_use_the_documented_envelope(api: Api) -> None:
    r = api.client.get(RULES)
    assert r.status_code == 401 and r.json()["code"] == "authentication_failed"
    r = api.client.post(RULES, content=b"{not json", headers={"content-type": "application/json"}, auth=api.a)
    assert r.status_code == 400 and r.json()["code"] == "invalid_body" and r.json()["details"]["issues"]
