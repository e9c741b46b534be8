"""Fuzzing the public API: a bounded schemathesis run over the served OpenAPI and hand-written
hostile bodies. No request may be answered with a 5xx."""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from reliability.helpers import project_api

# Examples per operation: a CI-sized run (the full campaign ran 50k cases with a larger number).
EXAMPLES = int(os.environ.get("OWLSCOPE_FUZZ_EXAMPLES", "6"))


def test_no_operation_of_the_served_openapi_answers_5xx(server) -> None:
    srv = server()
    api = project_api(srv)
    schema = schemathesis.openapi.from_url(f"{srv.url}/api/openapi.json")
    failures: list[str] = []
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=srv.url, auth=api.auth, timeout=30) as client:
        for result in schema.get_all_operations():
            _fuzz(result.ok(), client, srv.url, failures, statuses)
    assert failures == []
    assert statuses.get(2, 0) > 0  # the key is accepted: the operations ran, not just their auth check


def _fuzz(operation, client: httpx.Client, base_url: str, failures: list[str], statuses: dict[int, int]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case) -> None:
        kwargs = case.as_transport_kwargs(base_url=base_url)
        kwargs.pop("auth", None)
        headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "authorization"}
        r = client.request(kwargs.pop("method"), kwargs.pop("url"), headers=headers,
                           params=kwargs.get("params"), content=_content(kwargs))
        statuses[r.status_code // 100] = statuses.get(r.status_code // 100, 0) + 1
        if r.status_code >= 500:
            failures.append(f"{operation.label}: {r.status_code} {r.text[:200]} <- {case.body!r:.200}")

    run()


def _content(kwargs: dict) -> bytes | None:
    if "json" in kwargs:
        import json

        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data") or kwargs.get("content")
    return data.encode() if isinstance(data, str) else data


FUZZ_BODIES = [
    b"", b"null", b"[]", b"{}", b'"x"', b"1e999", b"{" * 2000, b"[" * 1025 + b"]" * 1025,
    b'{"batch": null}', b'{"batch": [null, 1, "x", [], {}]}', b'{"batch": [{"type": "trace-create"}]}',
    b'{"batch": [{"id": "a", "type": "trace-create", "timestamp": "0000-00-00", "body": {}}]}',
    b'{"batch": [{"id": "a", "type": "trace-create", "timestamp": "9999-12-31T23:59:59Z", "body": {}}]}',
    b'{"batch": [{"id": "a", "type": "trace-create", "timestamp": 1e300, "body": {"id": "t"}}]}',
    b'{"batch": [{"id": "a", "type": "generation-create", "timestamp": "2025-01-01T00:00:00Z",'
    b' "body": {"traceId": "t", "usage": {"input": 1e308, "output": -5}, "costDetails": {"x": 1e308}}}]}',
    b'{"batch": [{"id": "\\ud800", "type": "trace-create", "timestamp": "2025-01-01T00:00:00Z", "body": {}}]}',
    b"\xff\xfe\x00garbage",
]


@pytest.mark.parametrize("path", ["/api/public/ingestion", "/api/public/scores", "/api/public/otel/v1/traces"])
def test_hostile_bodies_are_never_a_5xx(server, path) -> None:
    srv = server()
    api = project_api(srv)
    with httpx.Client(base_url=srv.url, auth=api.auth, timeout=30) as client:
        for body in FUZZ_BODIES:
            for ctype in ("application/json", "application/x-protobuf"):
                r = client.post(path, content=body, headers={"content-type": ctype})
                assert r.status_code < 500, (body[:80], ctype, r.status_code, r.text[:300])
                if r.status_code >= 400:
                    assert {"message", "error"} <= set(r.json()), r.text[:300]
