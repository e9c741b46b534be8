"""Masking at ingestion, end to end on both stacks: what the official SDK, a plain OpenTelemetry
instrumentation, the batch endpoint, the scores API and the dataset-items API send is masked
before the raw blob is written; neither the stored blobs nor the read API hold an original value."""

from __future__ import annotations

import gzip
import re
import uuid

import httpx
import pytest
from unit.otlp_builders import make_request, make_span

from conftest import LiveServer, create_project_key
from owlscope.pipeline import blobs
from support.ingest_http import Api
from support.live_api import live_api

EMAIL = "grace.hopper@navy-example.org"
CARD = "4111-1111-1111-1111"
KEY = "sk-proj-Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1"
PHONE = "+1 415 555 2671"
IBAN = "GB82 WEST 1234 5698 7654 32"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJncmFjZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
IP = "10.20.30.40"
SECRETS = (EMAIL, CARD, KEY, PHONE, IBAN, JWT, IP)
SENTENCE = f"mail {EMAIL}, card {CARD}, key {KEY}, phone {PHONE}, iban {IBAN}, token {JWT}, from {IP}"


@pytest.fixture
def api(make_settings, stack):
    with live_api(make_settings, stack, org="org-m", project="proj-m", masking_detectors="all,email:hash") as api:
        yield api


def _stored_blobs(api: Api) -> list[bytes]:
    out = []
    for prefix in (blobs.PENDING, blobs.PROCESSED):
        for info in api.srv.services.blobs.list(f"{prefix}{api.project_id}/"):
            env = blobs.decode(api.srv.services.blobs.get(info.key))
            payload = env.payload
            if env.content_encoding == "gzip":
                payload = gzip.decompress(payload)
            out.append(payload)
    return out


def _assert_clean(text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in SECRETS:
        assert secret.encode() not in data, secret


def test_every_path_is_masked_before_storage(api: Api) -> None:
    from langfuse import Langfuse

    # 1. the official SDK (OTLP from the Langfuse instrumentation)
    client = Langfuse(public_key=api.keys["public_key"], secret_key=api.keys["secret_key"], base_url=api.url,
                      flush_interval=0.2)
    with client.start_as_current_observation(name=f"chat {EMAIL}", input={"question": SENTENCE},
                                             metadata={"contact": PHONE}) as root:
        with client.start_as_current_observation(name="llm", as_type="generation", model="gpt-4o",
                                                 input=[{"role": "user", "content": SENTENCE}]) as gen:
            gen.update(output={"role": "assistant", "content": f"I will write to {EMAIL}"},
                       status_message=f"used key {KEY}")
        root.update(output=SENTENCE)
        sdk_trace = root.trace_id
    client.flush()

    # 2. another OpenTelemetry instrumentation (GenAI semantic conventions)
    otel_trace = uuid.uuid4().hex
    span = make_span("openai.chat", trace_id=otel_trace, span_id=uuid.uuid4().hex[:16], attributes={
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": SENTENCE,
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": f"call {PHONE}",
        "user.id": "user-42"})
    assert api.otlp(make_request([span]), gz=True).status_code == 200

    # 3. batch ingestion, with a score whose comment holds secrets
    batch_trace = str(uuid.uuid4())
    api.ingest([
        {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": "2026-01-01T00:00:00.000Z",
         "body": {"id": batch_trace, "name": f"batch {EMAIL}", "userId": "user-42", "input": SENTENCE,
                  "metadata": {"card": CARD}, "tags": [IP]}},
        {"id": str(uuid.uuid4()), "type": "score-create", "timestamp": "2026-01-01T00:00:01.000Z",
         "body": {"id": str(uuid.uuid4()), "traceId": batch_trace, "name": "quality", "value": 1,
                  "comment": f"reported by {EMAIL} with {KEY}"}},
    ])
    # 4. the scores API
    r = api.post("/api/public/scores", json={"traceId": batch_trace, "name": "helpful", "value": 0.5,
                                             "comment": f"card {CARD}"})
    assert r.status_code == 200, r.text
    # 5. dataset items
    assert api.post("/api/public/v2/datasets", json={"name": "masked-ds"}).status_code == 200
    r = api.post("/api/public/dataset-items", json={
        "datasetName": "masked-ds", "input": {"q": SENTENCE}, "expectedOutput": f"reach {EMAIL}",
        "metadata": {"iban": IBAN}})
    assert r.status_code == 200, r.text
    _assert_clean(r.text)

    sdk = api.trace(sdk_trace, 2)
    otel = api.trace(otel_trace, 1)
    batch = api.trace(batch_trace)
    scores = api.wait_for("/api/public/v2/scores", lambda r: r.status_code == 200 and len(r.json()["data"]) >= 2,
                          traceId=batch_trace).json()
    items = api.get("/api/public/dataset-items", datasetName="masked-ds").json()
    read_back = httpx.Response(200, json=[sdk, otel, batch, scores, items]).text
    _assert_clean(read_back)
    for placeholder in ("<EMAIL:", "<CREDIT_CARD>", "<API_KEY>", "<PHONE>", "<IBAN>", "<JWT>", "<IP>"):
        assert placeholder in read_back, placeholder
    # e-mail is hashed: the same address gives the same token everywhere, so it stays joinable
    assert len(set(re.findall(r"<EMAIL:[0-9a-f]{12}>", read_back))) == 1
    # identifiers are kept
    assert batch["userId"] == "user-42" and otel["userId"] == "user-42"
    assert {o["name"] for o in sdk["observations"]} >= {"llm"}

    stored = _stored_blobs(api)
    assert len(stored) >= 4
    for payload in stored:
        _assert_clean(payload)


def test_masking_off_keeps_text(make_settings) -> None:
    with LiveServer(make_settings("embedded"), run_worker=True) as srv:
        api = Api(srv, create_project_key(srv.services, org_name="org-n", project_name="proj-n"))
        trace_id = str(uuid.uuid4())
        api.ingest([{"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": "2026-01-01T00:00:00.000Z",
                     "body": {"id": trace_id, "input": SENTENCE}}])
        assert api.trace(trace_id)["input"] == SENTENCE


def test_invalid_detector_list_is_refused_at_startup(make_settings) -> None:
    from owlscope.config import ConfigError

    with pytest.raises(ConfigError, match="MASKING_DETECTORS") as info:
        make_settings("embedded", masking_detectors="email,ssn")
    assert "unknown detector 'ssn'" in str(info.value)
