"""Real responses of every read endpoint validated against Langfuse's published OpenAPI contract
(tests/fixtures/langfuse-openapi.yml, a copy of the public spec).

The data is sent by the official SDK (traces, generations, scores, prompts, datasets, an
experiment) and through the API (models, score configs, comments, LLM connections); each GET is
then checked for field names, types and nullability. The spec is made strict first: every
property an object schema declares must be present (null only where the spec says nullable), so
a missing field or a wrongly typed one fails. Fields beyond the spec are allowed (Langfuse itself
returns some).
"""

from __future__ import annotations

import copy
import uuid
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from langfuse import Evaluation
from openapi_schema_validator import OAS30Validator

SPEC_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "langfuse-openapi.yml"
# Declared in the spec but not sent by Langfuse either (everywhere, or in the named schema: the spec
# says these are omitted when they have no value).
NEVER_SENT = {"_deprecation"}
OMITTED_WHEN_EMPTY = {
    "ObservationsV2Meta": {"cursor"},
    "GetScoresV3Meta": {"cursor"},
    "ExperimentsResponseMeta": {"cursor"},
    "Deprecation": {"replacement", "docsUrl", "sunsetAt"},
    "ChatMessage": {"type"},
    "PlaceholderMessage": {"type"},
    # present per requested field group ("details", "subject", "annotation"); the v3 scores read below
    # asks for every group and checks them separately
    "BaseScoreV3": {"comment", "configId", "metadata", "authorUserId", "queueId", "subject"},
}
# Where the spec and Langfuse's own responses differ, Langfuse wins: its models API returns
# `unit: null` for models without a unit (every Langfuse-managed model).
NULLABLE_IN_PRACTICE = {("Model", "unit")}
SCORE_V3_GROUPS = {"comment", "configId", "metadata", "authorUserId", "queueId", "subject"}
CONTRACT_WIDGET = {"name": "contract widget", "view": "observations", "dimensions": [{"field": "providedModelName"}],
                   "metrics": [{"measure": "totalCost", "agg": "sum"}], "filters": [], "chartType": "PIE"}


@cache
def _spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text())


def _strict(node: Any, optional: frozenset[str] = frozenset()) -> Any:
    """Every declared property required (the spec marks only some)."""
    if isinstance(node, dict):
        if "$ref" in node and node.get("nullable"):
            # OpenAPI 3.0 ignores siblings of $ref; the spec means "this, or null"
            return {"anyOf": [{"$ref": node["$ref"]}, {"enum": [None]}]}
        out = {k: _strict(v) for k, v in node.items()}
        props = out.get("properties")
        if isinstance(props, dict) and props:
            out["required"] = sorted(set(out.get("required", [])) | (set(props) - NEVER_SENT - optional))
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@cache
def _components() -> dict[str, Any]:
    components = copy.deepcopy(_spec()["components"])
    components["schemas"] = {name: _strict(schema, frozenset(OMITTED_WHEN_EMPTY.get(name, ())))
                             for name, schema in components["schemas"].items()}
    for name, prop in NULLABLE_IN_PRACTICE:
        components["schemas"][name]["properties"][prop]["nullable"] = True
    return components


def response_schema(method: str, path: str) -> dict[str, Any]:
    op = _spec()["paths"][path][method.lower()]
    for status, resp in op["responses"].items():
        if str(status).startswith("2"):
            return resp["content"]["application/json"]["schema"]
    raise KeyError(f"{method} {path} has no JSON success response in the spec")


def contract_errors(method: str, path: str, body: Any) -> list[str]:
    """Every way `body` breaks the spec's response schema for `method path` (strict)."""
    schema = {**_strict(response_schema(method, path)), "components": _components()}
    validator = OAS30Validator(schema)
    out = set()
    for error in validator.iter_errors(body):
        for reason in _reasons(error):
            where = "/".join("*" if isinstance(p, int) else str(p) for p in reason.absolute_path) or "<body>"
            out.add(f"{where}: {reason.message[:200]}")  # one line per kind of error (list indices folded)
    return sorted(out)


def _reasons(error: Any):
    """The leaf errors; for a oneOf/anyOf, those of the alternatives whose discriminator (an enum
    property such as `type` or `dataType`) matches."""
    if not error.context:
        yield error
        return
    branches: dict[Any, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    live = [errs for errs in branches.values()
            if not any(e.validator == "enum" and len(e.relative_path) == 1 for e in errs)]
    for errs in live or branches.values():
        for sub in errs:
            yield from _reasons(sub)


def test_strict_schema_catches_a_missing_and_a_wrongly_typed_field() -> None:
    good = {"id": "t1", "timestamp": "2024-01-01T00:00:00.000Z", "name": None, "input": None, "output": None,
            "sessionId": None, "release": None, "version": None, "userId": None, "metadata": None,
            "tags": [], "public": False, "environment": "default", "htmlPath": "/p/x", "latency": 0.1,
            "totalCost": 0.0, "observations": [], "scores": [], "externalId": None}
    assert contract_errors("GET", "/api/public/traces/{traceId}", good) == []
    missing = {k: v for k, v in good.items() if k != "sessionId"}
    assert any("sessionId" in e for e in contract_errors("GET", "/api/public/traces/{traceId}", missing))
    wrong = {**good, "public": "no"}
    assert any(e.startswith("public") for e in contract_errors("GET", "/api/public/traces/{traceId}", wrong))
    not_null = {**good, "htmlPath": None}
    assert any(e.startswith("htmlPath") for e in contract_errors("GET", "/api/public/traces/{traceId}", not_null))


@pytest.fixture(scope="module")
def seeded(sdk_server) -> dict[str, Any]:
    """One of everything, sent the way users send it."""
    lf = sdk_server.client
    tag = uuid.uuid4().hex[:8]
    from langfuse import propagate_attributes

    with lf.start_as_current_observation(name=f"contract-{tag}", input="question") as root:
        trace_id = root.trace_id
        with propagate_attributes(session_id=f"sess-{tag}", user_id=f"user-{tag}", tags=["contract"],
                                  metadata={"tenant": "acme"}):
            with lf.start_as_current_observation(
                name="llm", as_type="generation", model="gpt-4o-mini", input=[{"role": "user", "content": "q"}],
                usage_details={"input": 12, "output": 3}, model_parameters={"temperature": 0.1},
            ) as gen:
                gen.update(output={"role": "assistant", "content": "a"})
                generation_id = gen.id
            with lf.start_as_current_observation(name="tool", as_type="tool", input={"x": 1}) as tool:
                tool.update(output={"y": 2}, level="WARNING", status_message="slow")
        root.update(output="answer")
    lf.create_score(name="accuracy", value=0.9, trace_id=trace_id, comment="ok")
    lf.create_score(name="verdict", value="good", data_type="CATEGORICAL", trace_id=trace_id,
                    observation_id=generation_id)
    lf.create_score(name="passed", value=1, data_type="BOOLEAN", trace_id=trace_id)
    lf.flush()
    sdk_server.wait_for(f"/api/public/traces/{trace_id}",
                        lambda r: r.status_code == 200 and len(r.json()["observations"]) == 3
                        and len(r.json()["scores"]) == 3, timeout=60)
    score_id = sdk_server.get("/api/public/v2/scores", traceId=trace_id).json()["data"][0]["id"]

    prompt = f"contract-text-{tag}"
    lf.create_prompt(name=prompt, prompt="Hello {{name}}", labels=["production"], config={"temperature": 0})
    lf.create_prompt(name=f"contract-chat-{tag}", type="chat", labels=["production"],
                     prompt=[{"role": "system", "content": "You are {{role}}"}])

    dataset = f"contract-ds-{tag}"
    lf.create_dataset(name=dataset, description="contract", metadata={"k": "v"})
    item = lf.create_dataset_item(dataset_name=dataset, input={"q": "2+2"}, expected_output="4")
    result = lf.get_dataset(dataset).run_experiment(
        name=f"run-{tag}", task=lambda *, item, **kw: "4",
        evaluators=[lambda *, output, expected_output=None, **kw: Evaluation(name="exact", value=1.0)],
    )
    lf.flush()
    run_name = result.run_name

    auth = sdk_server.auth
    import httpx

    url = sdk_server.url
    model = httpx.post(f"{url}/api/public/models", auth=auth, json={
        "modelName": f"contract-model-{tag}", "matchPattern": f"(?i)^contract-model-{tag}$", "unit": "TOKENS",
        "inputPrice": 0.000001, "outputPrice": 0.000002}).json()
    config = httpx.post(f"{url}/api/public/score-configs", auth=auth, json={
        "name": f"quality-{tag}", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1}).json()
    comment = httpx.post(f"{url}/api/public/comments", auth=auth, json={
        "projectId": sdk_server.project_id, "objectType": "TRACE", "objectId": trace_id, "content": "looks right"}).json()
    httpx.put(f"{url}/api/public/llm-connections", auth=auth, json={
        "provider": f"contract-{tag}", "adapter": "openai", "secretKey": "sk-contract-000000"}).raise_for_status()
    queue = httpx.post(f"{url}/api/public/annotation-queues", auth=auth, json={
        "name": f"contract-queue-{tag}", "scoreConfigIds": [config["id"]]}).json()
    queue_item = httpx.post(f"{url}/api/public/annotation-queues/{queue['id']}/items", auth=auth, json={
        "objectId": trace_id, "objectType": "TRACE"}).json()
    sdk_server.wait_for("/api/public/dataset-run-items", lambda r: r.status_code == 200 and r.json()["data"],
                        datasetId=lf.get_dataset(dataset).id, runName=run_name)
    widget = httpx.post(f"{url}/api/public/unstable/dashboard-widgets", auth=auth, json=CONTRACT_WIDGET).json()
    dashboard = httpx.post(f"{url}/api/public/unstable/dashboards", auth=auth, json={
        "name": f"contract-{tag}", "definition": {"widgets": [
            {"type": "widget", "widgetId": widget["id"]}, {"type": "preset", "presetId": "error-rate"}]},
        "filters": [{"column": "environment", "operator": "=", "type": "string", "value": "default"}]}).json()
    return {
        "trace_id": trace_id, "generation_id": generation_id, "score_id": score_id, "session_id": f"sess-{tag}",
        "prompt": prompt, "chat_prompt": f"contract-chat-{tag}", "dataset": dataset,
        "dataset_id": lf.get_dataset(dataset).id, "item_id": item.id, "run_name": run_name,
        "model_id": model["id"], "config_id": config["id"], "comment_id": comment["id"],
        "queue_id": queue["id"], "queue_item_id": queue_item["id"],
        "widget_id": widget["id"], "dashboard_id": dashboard["id"],
    }


def _reads(s: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(spec path, concrete path, query) for every read endpoint."""
    ds, run = quote(s["dataset"], safe=""), quote(s["run_name"], safe="")
    metrics_query = ('{"view": "traces", "metrics": [{"measure": "count", "aggregation": "count"}],'
                     ' "dimensions": [{"field": "name"}], "filters": [],'
                     ' "fromTimestamp": "2000-01-01T00:00:00Z", "toTimestamp": "2100-01-01T00:00:00Z"}')
    metrics_v2_query = ('{"view": "observations", "metrics": [{"measure": "count", "aggregation": "count"}],'
                        ' "dimensions": [{"field": "name"}], "filters": [],'
                        ' "fromTimestamp": "2000-01-01T00:00:00Z", "toTimestamp": "2100-01-01T00:00:00Z"}')
    return [
        ("/api/public/health", "/api/public/health", {}),
        ("/api/public/projects", "/api/public/projects", {}),
        ("/api/public/traces", "/api/public/traces", {}),
        ("/api/public/traces/{traceId}", f"/api/public/traces/{s['trace_id']}", {}),
        ("/api/public/observations", "/api/public/observations", {"traceId": s["trace_id"]}),
        ("/api/public/observations/{observationId}", f"/api/public/observations/{s['generation_id']}", {}),
        ("/api/public/v2/observations", "/api/public/v2/observations",
         {"traceId": s["trace_id"], "fields": "core,basic,time,io,metadata,model,usage,prompt,metrics,trace_context"}),
        ("/api/public/sessions", "/api/public/sessions", {}),
        ("/api/public/sessions/{sessionId}", f"/api/public/sessions/{s['session_id']}", {}),
        ("/api/public/v2/scores", "/api/public/v2/scores", {}),
        ("/api/public/v2/scores/{scoreId}", f"/api/public/v2/scores/{s['score_id']}", {}),
        ("/api/public/v3/scores", "/api/public/v3/scores", {"fields": "details,subject,annotation"}),
        ("/api/public/score-configs", "/api/public/score-configs", {}),
        ("/api/public/score-configs/{configId}", f"/api/public/score-configs/{s['config_id']}", {}),
        ("/api/public/v2/prompts", "/api/public/v2/prompts", {}),
        ("/api/public/v2/prompts/{promptName}", f"/api/public/v2/prompts/{s['prompt']}", {"label": "production"}),
        ("/api/public/v2/prompts/{promptName}", f"/api/public/v2/prompts/{s['chat_prompt']}", {"version": 1}),
        ("/api/public/v2/datasets", "/api/public/v2/datasets", {}),
        ("/api/public/v2/datasets/{datasetName}", f"/api/public/v2/datasets/{ds}", {}),
        ("/api/public/dataset-items", "/api/public/dataset-items", {"datasetName": s["dataset"]}),
        ("/api/public/dataset-items/{id}", f"/api/public/dataset-items/{s['item_id']}", {}),
        ("/api/public/datasets/{datasetName}/runs", f"/api/public/datasets/{ds}/runs", {}),
        ("/api/public/datasets/{datasetName}/runs/{runName}", f"/api/public/datasets/{ds}/runs/{run}", {}),
        ("/api/public/dataset-run-items", "/api/public/dataset-run-items",
         {"datasetId": s["dataset_id"], "runName": s["run_name"]}),
        ("/api/public/experiments", "/api/public/experiments",
         {"fromStartTime": "2000-01-01T00:00:00Z", "fields": "core,metadata,scores"}),
        ("/api/public/experiment-items", "/api/public/experiment-items",
         {"fromStartTime": "2000-01-01T00:00:00Z",
          "fields": "core,dataset,io,metadata,itemMetadata,experimentMetadata,scores"}),
        ("/api/public/models", "/api/public/models", {}),
        ("/api/public/models/{id}", f"/api/public/models/{s['model_id']}", {}),
        ("/api/public/comments", "/api/public/comments", {}),
        ("/api/public/comments/{commentId}", f"/api/public/comments/{s['comment_id']}", {}),
        ("/api/public/llm-connections", "/api/public/llm-connections", {}),
        ("/api/public/annotation-queues", "/api/public/annotation-queues", {}),
        ("/api/public/annotation-queues/{queueId}", f"/api/public/annotation-queues/{s['queue_id']}", {}),
        ("/api/public/annotation-queues/{queueId}/items", f"/api/public/annotation-queues/{s['queue_id']}/items", {}),
        ("/api/public/annotation-queues/{queueId}/items/{itemId}",
         f"/api/public/annotation-queues/{s['queue_id']}/items/{s['queue_item_id']}", {}),
        ("/api/public/metrics", "/api/public/metrics", {"query": metrics_query}),
        ("/api/public/v2/metrics", "/api/public/v2/metrics", {"query": metrics_v2_query}),
        ("/api/public/unstable/evaluators", "/api/public/unstable/evaluators", {}),
        ("/api/public/unstable/evaluation-rules", "/api/public/unstable/evaluation-rules", {}),
        ("/api/public/unstable/dashboards", "/api/public/unstable/dashboards", {}),
        ("/api/public/unstable/dashboards/{dashboardId}", f"/api/public/unstable/dashboards/{s['dashboard_id']}", {}),
        ("/api/public/unstable/dashboard-widgets", "/api/public/unstable/dashboard-widgets", {}),
        ("/api/public/unstable/dashboard-widgets/{widgetId}",
         f"/api/public/unstable/dashboard-widgets/{s['widget_id']}", {}),
    ]


def test_every_read_endpoint_matches_the_contract(sdk_server, seeded) -> None:
    failures: dict[str, list[str]] = {}
    for spec_path, path, params in _reads(seeded):
        r = sdk_server.get(path, **params)
        if r.status_code != 200:
            failures[path] = [f"status {r.status_code}: {r.text[:300]}"]
            continue
        errors = contract_errors("GET", spec_path, r.json())
        if spec_path == "/api/public/v3/scores":
            errors += [f"data/*: {k!r} missing with every field group asked for"
                       for k in sorted({k for item in r.json()["data"] for k in SCORE_V3_GROUPS - set(item)})]
        if errors:
            failures[path] = errors
    assert not failures, "\n".join(f"GET {p}:\n  " + "\n  ".join(e) for p, e in failures.items())


def _org_reads(project_id: str, user_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(spec path, concrete path, query) for every read endpoint that takes an organization key."""
    scim = "/api/public/scim"
    return [
        ("/api/public/organizations/projects", "/api/public/organizations/projects", {}),
        ("/api/public/organizations/apiKeys", "/api/public/organizations/apiKeys", {}),
        ("/api/public/organizations/memberships", "/api/public/organizations/memberships", {}),
        ("/api/public/projects/{projectId}/apiKeys", f"/api/public/projects/{project_id}/apiKeys", {}),
        ("/api/public/projects/{projectId}/memberships", f"/api/public/projects/{project_id}/memberships", {}),
        (f"{scim}/ServiceProviderConfig", f"{scim}/ServiceProviderConfig", {}),
        (f"{scim}/ResourceTypes", f"{scim}/ResourceTypes", {}),
        (f"{scim}/Schemas", f"{scim}/Schemas", {}),
        (f"{scim}/Users", f"{scim}/Users", {}),
        (f"{scim}/Users/{{userId}}", f"{scim}/Users/{user_id}", {}),
    ]


def test_every_organization_read_endpoint_matches_the_contract(sdk_server) -> None:
    import httpx

    from owlscope.accounts.org_admin import provision_user
    from owlscope.auth.org_keys import create_org_api_key
    from owlscope.storage.oltp.db import write_transaction
    from owlscope.storage.oltp.models import Project, Role

    services = sdk_server.services
    with write_transaction(services.sessions) as session:
        org_id = session.get(Project, sdk_server.project_id).org_id
        key, secret = create_org_api_key(session, org_id=org_id, salt=services.settings.salt or "", role="OWNER")
        user = provision_user(session, org_id=org_id, email=f"contract-{uuid.uuid4().hex[:8]}@example.com",
                              name="Contract", role=Role.MEMBER, actor_role=Role.OWNER)
    failures: dict[str, list[str]] = {}
    for spec_path, path, params in _org_reads(sdk_server.project_id, user.id):
        r = httpx.get(f"{sdk_server.url}{path}", params=params, auth=(key.public_key, secret), timeout=30)
        errors = ([f"status {r.status_code}: {r.text[:300]}"] if r.status_code != 200
                  else contract_errors("GET", spec_path, r.json()))
        if errors:
            failures[path] = errors
    assert not failures, "\n".join(f"GET {p}:\n  " + "\n  ".join(e) for p, e in failures.items())


def test_every_read_endpoint_is_covered(sdk_server) -> None:
    """A GET route the spec has and we serve must be in the list above."""
    served = {
        (m, r.path) for r in sdk_server.server.app.routes for m in getattr(r, "methods", ())
        if getattr(r, "path", "").startswith("/api/public")
    }
    spec = {(m.upper(), p) for p, ops in _spec()["paths"].items() for m in ops if m == "get"}
    dummy = {k: "x" for k in ("trace_id", "generation_id", "score_id", "session_id", "prompt", "chat_prompt",
                              "dataset", "dataset_id", "item_id", "run_name", "model_id", "config_id", "comment_id",
                              "queue_id", "queue_item_id", "widget_id", "dashboard_id")}
    checked = {p for p, _, _ in _reads(dummy)} | {p for p, _, _ in _org_reads("x", "x")}

    def ours(path: str) -> str:
        return path.replace(":path", "")

    missing = []
    for method, path in sorted(spec):
        names = {ours(p) for m, p in served if m == method}
        if _normalise(path) in {_normalise(p) for p in names} and path not in checked:
            missing.append(path)
    assert not missing, missing


def _normalise(path: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", "{}", path)


def test_served_openapi_describes_every_public_body(sdk_server) -> None:
    """Each /api/public route declares its response model: the OpenAPI the app serves describes
    the body of every success response (a 204 has none), with the contract's field names."""
    doc = sdk_server.server.app.openapi()
    undescribed = []
    for path, ops in doc["paths"].items():
        if not path.startswith("/api/public"):
            continue
        for method, op in ops.items():
            [(status, resp)] = [(s, r) for s, r in op["responses"].items() if s.startswith("2")]
            if status == "204":
                continue
            schema = resp.get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" not in schema:
                undescribed.append(f"{method.upper()} {path}")
    assert not undescribed, undescribed
    schemas = doc["components"]["schemas"]
    spec = _spec()["components"]["schemas"]
    for name in ("Trace", "TraceWithFullDetails", "ObservationsView", "ObservationV2", "DatasetItem", "Prompt",
                 "ScoreConfig", "Model", "Comment", "Session", "AnnotationQueue", "AnnotationQueueItem",
                 "OrganizationProject", "ApiKeyResponse", "MembershipResponse", "ScimUser", "ServiceProviderConfig"):
        ours = set(schemas[name]["properties"])
        theirs = {k for part in [spec[name]] + [spec[a["$ref"].split("/")[-1]] for a in spec[name].get("allOf", [])
                                                if "$ref" in a]
                  for k in part.get("properties", {})} - NEVER_SENT
        if name == "Prompt":  # a oneOf of text and chat prompts in the contract
            theirs = set(spec["BasePrompt"]["properties"]) | {"prompt"}
        assert theirs <= ours, (name, sorted(theirs - ours))


def test_annotation_queue_writes_match_the_contract(sdk_server, seeded) -> None:
    """The bodies of the annotation queues' create, update and delete operations."""
    import httpx

    url, auth, queue_id = sdk_server.url, sdk_server.auth, seeded["queue_id"]
    base = f"{url}/api/public/annotation-queues/{queue_id}"
    from owlscope.storage.oltp.models import OrganizationMembership, User

    with sdk_server.services.sessions() as s, s.begin():
        user = User(email=f"reviewer-{uuid.uuid4().hex[:8]}@example.com")
        s.add(user)
        s.flush()
        s.add(OrganizationMembership(org_id=sdk_server.keys["org_id"], user_id=user.id, role="MEMBER"))
        user_id = user.id
    calls = [
        ("POST", "/api/public/annotation-queues",
         httpx.post(f"{url}/api/public/annotation-queues", auth=auth, json={
             "name": f"contract-write-{uuid.uuid4().hex[:8]}", "description": None,
             "scoreConfigIds": [seeded["config_id"]]})),
        ("POST", "/api/public/annotation-queues/{queueId}/items",
         httpx.post(f"{base}/items", auth=auth, json={"objectId": seeded["session_id"], "objectType": "SESSION"})),
        ("PATCH", "/api/public/annotation-queues/{queueId}/items/{itemId}",
         httpx.patch(f"{base}/items/{seeded['queue_item_id']}", auth=auth, json={"status": "COMPLETED"})),
    ]
    item = calls[1][2].json()
    calls.append(("DELETE", "/api/public/annotation-queues/{queueId}/items/{itemId}",
                  httpx.delete(f"{base}/items/{item['id']}", auth=auth)))
    calls.append(("POST", "/api/public/annotation-queues/{queueId}/assignments",
                  httpx.post(f"{base}/assignments", auth=auth, json={"userId": user_id})))
    calls.append(("DELETE", "/api/public/annotation-queues/{queueId}/assignments",
                  httpx.request("DELETE", f"{base}/assignments", auth=auth, json={"userId": user_id})))
    failures = {}
    for method, path, r in calls:
        errors = [f"status {r.status_code}: {r.text[:300]}"] if r.status_code != 200 else \
            contract_errors(method, path, r.json())
        if errors:
            failures[f"{method} {path}"] = errors


def test_dashboard_writes_match_the_contract(sdk_server) -> None:
    """Every write of the unstable dashboards API answers in the contract's shapes, the 409s included."""
    import httpx

    url, auth = sdk_server.url, sdk_server.auth
    base, widgets = "/api/public/unstable/dashboards", "/api/public/unstable/dashboard-widgets"
    checked: list[tuple[str, str, httpx.Response]] = []

    def call(method: str, spec_path: str, path: str, body: Any = None) -> dict[str, Any]:
        r = httpx.request(method, f"{url}{path}", auth=auth, json=body, timeout=30)
        checked.append((method, spec_path, r))
        return r.json()

    w = call("POST", widgets, widgets, CONTRACT_WIDGET)
    call("PATCH", widgets + "/{widgetId}", f"{widgets}/{w['id']}", {"chartType": "HISTOGRAM",
                                                                     "metrics": [{"measure": "latency", "agg": "histogram"}],
                                                                     "dimensions": [], "chartConfig": {"bins": 5}})
    d = call("POST", base, base, {"name": "contract writes", "description": "d"})
    path = f"{base}/{d['id']}"
    call("PATCH", base + "/{dashboardId}", path, {"name": "renamed"})
    placements = base + "/{dashboardId}/placements"
    p = call("POST", placements, f"{path}/placements", {"type": "widget", "widgetId": w["id"]})
    call("POST", placements, f"{path}/placements", {"type": "preset", "presetId": "total-cost", "id": "total"})
    call("PATCH", placements + "/{placementId}", f"{path}/placements/total", {"x": 6, "y": 0})
    conflict = httpx.delete(f"{url}{widgets}/{w['id']}", auth=auth)
    duplicate = httpx.post(f"{url}{path}/placements", auth=auth, json={"type": "preset", "presetId": "error-rate",
                                                                        "id": "total"})
    call("DELETE", placements + "/{placementId}", f"{path}/placements/{p['id']}")
    call("DELETE", widgets + "/{widgetId}", f"{widgets}/{w['id']}")
    call("DELETE", base + "/{dashboardId}", path)

    failures = {f"{m} {sp}": [f"status {r.status_code}: {r.text[:300]}"] if r.status_code != 200
                else contract_errors(m, sp, r.json()) for m, sp, r in checked}
    error_schema = {"$ref": "#/components/schemas/unstablePublicApiError", "components": _components()}
    for name, r in (("409 widget still placed", conflict), ("409 placement id taken", duplicate)):
        assert r.status_code == 409, r.text
        failures[name] = [e.message for e in OAS30Validator(error_schema).iter_errors(r.json())]
        assert r.json()["code"] == "conflict"
    failures = {k: v for k, v in failures.items() if v}
    assert not failures, failures
