from __future__ import annotations

import gzip

from owlscope.pipeline import blobs


def test_envelope_round_trip_compresses_large_plain_payloads() -> None:
    payload = b'{"batch": []}' * 100
    env = blobs.Envelope(kind="batch", project_id="p1", received_at=1.5, payload=payload, sdk_version="5.0.4")
    data = blobs.encode(env)
    assert len(data) < len(payload)
    back = blobs.decode(data)
    assert back.kind == "batch" and back.project_id == "p1" and back.sdk_version == "5.0.4"
    assert back.content_encoding == "gzip"
    assert blobs.unpack(back.payload, back.content_encoding) == payload


def test_already_compressed_payload_is_stored_as_sent() -> None:
    raw = gzip.compress(b"x" * 1000)
    env = blobs.Envelope(kind="otel", project_id="p", received_at=0, payload=raw, content_encoding="gzip")
    assert blobs.decode(blobs.encode(env)).payload == raw


def test_keys_move_between_states_and_sort_by_time() -> None:
    a, b = blobs.new_key("p1", "otel"), blobs.new_key("p1", "otel")
    assert a.startswith("events/pending/p1/") and a < b
    assert blobs.moved(a, blobs.PROCESSED).startswith("events/processed/p1/")
