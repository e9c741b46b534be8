"""Raw-HTTP helpers for the ingestion tests: a client bound to one project's key (`Api`) that posts
batches and OTLP (protobuf or OTLP/JSON, plain or gzip) and polls the read API."""

from __future__ import annotations

import base64
import gzip
import time
import uuid

import httpx
import orjson
from google.protobuf import json_format

from conftest import LiveServer


class Api:
    """Raw HTTP as one project's key."""

    def __init__(self, srv: LiveServer, keys: dict):
        self.srv = srv
        self.url = srv.url
        self.keys = keys
        self.project_id = keys["project_id"]
        self.auth = (keys["public_key"], keys["secret_key"])

    def get(self, path: str, **params) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, auth=self.auth, timeout=30)

    def post(self, path: str, **kw) -> httpx.Response:
        kw.setdefault("auth", self.auth)
        return httpx.post(f"{self.url}{path}", timeout=30, **kw)

    def ingest(self, batch: list[dict]) -> dict:
        r = self.post("/api/public/ingestion", json={"batch": batch})
        assert r.status_code == 207, r.text
        return r.json()

    def otlp(self, req, *, fmt: str = "protobuf", gz: bool = False, sdk_version: str | None = None) -> httpx.Response:
        if fmt == "json":
            body, ctype = orjson.dumps(otlp_json(req)), "application/json"
        else:
            body, ctype = req.SerializeToString(), "application/x-protobuf"
        headers = {"content-type": ctype}
        if gz:
            body = gzip.compress(body)
            headers["content-encoding"] = "gzip"
        if sdk_version:
            headers["x-langfuse-sdk-version"] = sdk_version
        return self.post("/api/public/otel/v1/traces", content=body, headers=headers)

    def wait_for(self, path: str, predicate=lambda r: r.status_code == 200, timeout: float = 15,
                 **params) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(path, **params)
            if predicate(r):
                return r
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {path} {params}: {r.status_code} {r.text[:500]}")
            time.sleep(0.05)

    def send_user_trace(self, *, user: str, session: str, ts: str = "2026-01-01T00:00:00.000Z") -> str:
        """A trace of `user` in `session` with a generation and a score, sent as one batch; returns
        its id once it can be read."""
        trace_id = str(uuid.uuid4())
        self.ingest([
            {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": ts,
             "body": {"id": trace_id, "userId": user, "sessionId": session, "input": f"hi from {user}"}},
            {"id": str(uuid.uuid4()), "type": "generation-create", "timestamp": ts,
             "body": {"id": str(uuid.uuid4()), "traceId": trace_id, "startTime": ts, "model": "gpt-4o"}},
            {"id": str(uuid.uuid4()), "type": "score-create", "timestamp": ts,
             "body": {"id": str(uuid.uuid4()), "traceId": trace_id, "name": "q", "value": 1}},
        ])
        self.trace(trace_id, 1)
        return trace_id

    def trace(self, trace_id: str, n_obs: int = 0) -> dict:
        return self.wait_for(f"/api/public/traces/{trace_id}", lambda r: r.status_code == 200 and len(
            r.json()["observations"]) >= n_obs).json()

    def total(self, path: str, **params) -> int:
        r = self.get(path, **params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["meta"]["totalItems"] == len(body["data"]), body["meta"]
        return body["meta"]["totalItems"]


def otlp_json(req) -> dict:
    """OTLP/JSON: the protobuf JSON mapping, but trace and span ids as hex (the spec's exception)."""
    d = json_format.MessageToDict(req)
    for rs in d.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for k in ("traceId", "spanId", "parentSpanId"):
                    if span.get(k):
                        span[k] = base64.b64decode(span[k]).hex()
    return d
