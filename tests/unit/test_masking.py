"""Masking detectors and the masker, on samples and on the captured SDK traffic."""

from __future__ import annotations

import copy

import pytest

from owlscope.ingestion.batch import map_batch_events, validate_batch
from owlscope.ingestion.masking import CustomRule, Masker, MaskingConfigError, parse_detectors
from owlscope.ingestion.otel import map_otlp
from tests.unit.otlp_builders import (
    CAPTURE_V4,
    CAPTURE_V5,
    any_value,
    load_capture,
    otlp_requests,
    request_from_spans,
)

ALL = Masker(parse_detectors("all"), salt="test-salt")

SECRETS = {
    "email": "jane.roe+billing@example-mail.co.uk",
    "phone": "+44 20 7946 0958",
    "phone_us": "(415) 555-2671",
    "credit_card": "4111 1111 1111 1111",
    "credit_card_plain": "5500005555555559",
    "iban": "DE89 3704 0044 0532 0130 00",
    "iban_plain": "GB82WEST12345698765432",
    "ipv4": "192.168.10.23",
    "ipv6": "2001:db8:85a3::8a2e:370:7334",
    "openai": "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv",
    "github": "ghp_" + "x1Y2z3" * 6,
    "slack": "xoxb-2048-4096-abcdefABCDEF",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "bearer": "tok_9f8e7d6c5b4a39281706",
}


@pytest.mark.parametrize(("text", "expected"), [
    (f"write to {SECRETS['email']} today", "write to <EMAIL> today"),
    (f"call {SECRETS['phone']} now", "call <PHONE> now"),
    (f"or {SECRETS['phone_us']}.", "or <PHONE>."),
    (f"card {SECRETS['credit_card']} ok", "card <CREDIT_CARD> ok"),
    (f"card {SECRETS['credit_card_plain']}", "card <CREDIT_CARD>"),
    (f"pay to {SECRETS['iban']}", "pay to <IBAN>"),
    (SECRETS["iban_plain"], "<IBAN>"),
    (f"from {SECRETS['ipv4']}", "from <IP>"),
    (f"from {SECRETS['ipv6']}", "from <IP>"),
    (f"key={SECRETS['openai']}", "key=<API_KEY>"),
    (f"{SECRETS['github']} {SECRETS['slack']} {SECRETS['aws']}", "<API_KEY> <API_KEY> <API_KEY>"),
    (f"Authorization: Bearer {SECRETS['bearer']}", "Authorization: Bearer <API_KEY>"),
    (f"token {SECRETS['jwt']}", "token <JWT>"),
    ('{"to": "' + SECRETS["email"] + '"}', '{"to": "<EMAIL>"}'),
])
def test_detectors_find_and_replace(text: str, expected: str) -> None:
    assert ALL.text(text) == expected


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112",  # fails the Luhn check
    "DE89 3704 0044 0532 0130 01",  # fails the IBAN checksum
    "999.10.1.1 is no address; 12:30:45 is a time",
    "order 1234567 shipped 2024-01-02T03:04:05.123Z, epoch 1700000000, v1.2.3.4",
    "model gpt-4o-mini temperature 0.7 top_p 1 max_tokens 256",
    "trace 1a929f6e936da1579cf852ba45200278 span d7bd0521cf580101",
    "uuid 5163c163-3425-4ee4-809e-dc9c8816ff9b",
    "the sk- prefix alone, sk-short, and user@localhost",
])
def test_detectors_leave_lookalikes(text: str) -> None:
    assert ALL.text(text) == text


def test_hash_mode_is_stable_salted_and_distinct() -> None:
    m = Masker(parse_detectors("email:hash"), salt="s1")
    out = m.text("a@b.io, a@b.io, c@d.io")
    first, second, third = out.split(", ")
    assert first == second != third
    assert first.startswith("<EMAIL:") and "a@b.io" not in out
    assert Masker(parse_detectors("email:hash"), salt="s2").text("a@b.io") != first


def test_parse_detectors() -> None:
    assert parse_detectors("") == {}
    assert parse_detectors(" email , credit_card:hash") == {"email": "placeholder", "credit_card": "hash"}
    assert set(parse_detectors("all")) == {"email", "phone", "credit_card", "iban", "ip", "api_key", "jwt"}
    assert parse_detectors("all:hash,ip")["ip"] == "placeholder"
    with pytest.raises(MaskingConfigError, match="unknown detector 'ssn'"):
        parse_detectors("email,ssn")
    with pytest.raises(MaskingConfigError, match="unknown mode"):
        parse_detectors("email:encrypt")


def test_only_enabled_detectors_run() -> None:
    m = Masker(parse_detectors("email"))
    assert m.text(f"{SECRETS['email']} {SECRETS['credit_card']}") == f"<EMAIL> {SECRETS['credit_card']}"
    assert not Masker({}).active


def test_custom_rules() -> None:
    m = Masker({}, rules=(CustomRule(pattern=r"ORD-\d{4,}", replacement="<ORDER>"),
                          CustomRule(path="metadata.customer.ssn", replacement="<SSN>")))
    body = m.event_body({"name": "ORD-12345", "metadata": {"customer": {"ssn": "078-05-1120", "tier": "gold"}},
                         "input": "ORD-99999 and ORD-1", "userId": "ORD-55555"})
    assert body == {"name": "<ORDER>", "metadata": {"customer": {"ssn": "<SSN>", "tier": "gold"}},
                    "input": "<ORDER> and ORD-1", "userId": "ORD-55555"}
    for bad in ({"pattern": "("}, {"pattern": "(?P<x>a)"}, {"path": "metadata..x"}, {}):
        with pytest.raises(MaskingConfigError):
            CustomRule(**bad)


def _capture_spans(path) -> list[dict]:
    return [s for r in otlp_requests(path) for s in r["otlp_spans"]]


def _rows_dump(rows) -> str:
    return repr([*rows.traces, *rows.observations, *rows.scores])


@pytest.mark.parametrize("capture", [CAPTURE_V5, CAPTURE_V4])
def test_captured_otlp_without_secrets_is_unchanged(capture) -> None:
    """No false positives on real SDK traffic: masking the captures changes nothing."""
    req = request_from_spans(_capture_spans(capture))
    masked = copy.deepcopy(req)
    ALL.otlp(masked)
    assert masked == req


@pytest.mark.parametrize("capture", [CAPTURE_V5, CAPTURE_V4])
def test_captured_otlp_with_secrets_is_masked_everywhere(capture) -> None:
    spans = _capture_spans(capture)
    # an opaque token is found only after "Bearer" (no known prefix)
    planted = " | ".join(f"Bearer {v}" if k == "bearer" else v for k, v in SECRETS.items())
    for s in spans:
        s["name"] = f"{s['name']} {SECRETS['email']}"
        attrs = s["attributes"]
        attrs["langfuse.observation.input"] = {"stringValue": '{"messages": [{"content": "' + planted + '"}]}'}
        attrs["langfuse.observation.output"] = {"stringValue": planted}
        attrs["langfuse.trace.metadata.contact"] = {"stringValue": SECRETS["phone"]}
        attrs["gen_ai.prompt.0.content"] = {"stringValue": planted}
        attrs["http.request.header.authorization"] = {"arrayValue": [{"stringValue": f"Bearer {SECRETS['bearer']}"}]}
        s["resource"]["host.ip"] = {"stringValue": SECRETS["ipv4"]}
        s["events"] = [{"name": "exception", "time": s["start"],
                        "attributes": {"exception.message": {"stringValue": planted}}}]
    req = request_from_spans(spans)
    ALL.otlp(req)
    wire = req.SerializeToString()
    rows = map_otlp(req, "p1", None)
    stored = _rows_dump(rows)
    for secret in SECRETS.values():
        assert secret.encode() not in wire
        assert secret not in stored
    assert "<EMAIL>" in stored and "<CREDIT_CARD>" in stored and "<JWT>" in stored
    # identifiers are kept: the same traces and observations as without masking
    plain = map_otlp(request_from_spans(_capture_spans(capture)), "p1", None)
    assert sorted(o.id for o in rows.observations) == sorted(o.id for o in plain.observations)
    assert sorted(t.user_id or "" for t in rows.traces) == sorted(t.user_id or "" for t in plain.traces)


def test_custom_path_reaches_otlp_metadata_attributes() -> None:
    m = Masker({}, rules=(CustomRule(path="metadata.customer.ssn", replacement="<SSN>"),))
    spans = _capture_spans(CAPTURE_V5)[:1]
    spans[0]["attributes"]["langfuse.trace.metadata.customer"] = {"stringValue": '{"ssn": "078-05-1120", "n": 1}'}
    spans[0]["attributes"]["langfuse.observation.metadata.customer.ssn"] = {"stringValue": "078-05-1121"}
    req = request_from_spans(spans)
    m.otlp(req)
    assert b"078-05-112" not in req.SerializeToString()
    stored = _rows_dump(map_otlp(req, "p1", None))
    assert '"customer":{"ssn":"<SSN>","n":1}' in stored and '"customer.ssn":"<SSN>"' in stored


def test_captured_batch_and_scores_are_masked() -> None:
    batches = [r["json"] for r in load_capture(CAPTURE_V4) if r["path"] == "/api/public/ingestion"]
    events = [ev for b in batches for ev in b["batch"]]
    assert events
    events, errors = validate_batch(copy.deepcopy(events))
    assert not errors
    assert ALL.events(events) == events  # nothing to mask in the capture
    for ev in events:  # the captured scores: comments and metadata
        ev["body"]["comment"] = f"user {SECRETS['email']} said {SECRETS['openai']}"
        ev["body"]["metadata"] = {"email": SECRETS["email"]}
    ts = events[0]["timestamp"]
    events += [
        {"id": "e-t", "type": "trace-create", "timestamp": ts,
         "body": {"id": "t-1", "name": f"chat with {SECRETS['email']}", "userId": "u-1",
                  "input": {"q": f"my card is {SECRETS['credit_card']}"}, "tags": [SECRETS["ipv4"]]}},
        {"id": "e-g", "type": "generation-create", "timestamp": ts,
         "body": {"id": "g-1", "traceId": "t-1", "model": "gpt-4o", "output": f"IBAN {SECRETS['iban']}",
                  "statusMessage": f"Bearer {SECRETS['bearer']}", "metadata": {"jwt": SECRETS["jwt"]}}},
    ]
    events, errors = validate_batch(events)
    assert not errors
    rows = map_batch_events(ALL.events(events), "p1")
    stored = _rows_dump(rows)
    for name in ("credit_card", "email", "openai", "ipv4", "iban", "bearer", "jwt"):
        assert SECRETS[name] not in stored
    for placeholder in ("<CREDIT_CARD>", "<API_KEY>", "<EMAIL>", "<IP>", "<IBAN>", "<JWT>"):
        assert placeholder in stored
    assert "user_id='u-1'" in stored and "'t-1'" in stored


def test_any_value_helper_round_trip() -> None:
    # guards the helper the capture tests build on: a string attribute stays a string
    assert any_value({"stringValue": "x"}).string_value == "x"
