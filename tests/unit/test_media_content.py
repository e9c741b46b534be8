"""Pure media helpers: ids from hashes, reference strings, and the v4 metadata form of a media."""

from __future__ import annotations

import base64
import hashlib

import pytest

from owlscope.errors import InvalidRequest
from owlscope.ingestion.otel import META_RAW, _decode_meta
from owlscope.media.content import blob_key, media_id_for, parse_reference, sha256_digest, split_references
from owlscope.media.references import find_references

REF = "@@@langfuseMedia:type=image/png|id=abcDEF_-123|source=base64_data_uri@@@"


def test_media_id_is_the_sdks() -> None:
    data = b"hello media"
    b64 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    digest = sha256_digest(b64)
    assert digest == hashlib.sha256(data).digest()
    # LangfuseMedia._get_media_id: base64 with +/ swapped for -_, first 22 characters
    assert media_id_for(digest) == b64.replace("+", "-").replace("/", "_")[:22]
    assert blob_key("p1", digest) == f"media/p1/{hashlib.sha256(data).hexdigest()}"
    for bad in ("", "abc", base64.b64encode(b"x" * 31).decode(), "not base64!"):
        with pytest.raises(InvalidRequest):
            sha256_digest(bad)


def test_references_are_parsed_and_split() -> None:
    ref = parse_reference(REF)
    assert ref is not None and (ref.media_id, ref.content_type, ref.source, ref.kind) == (
        "abcDEF_-123", "image/png", "base64_data_uri", "image")
    assert parse_reference("@@@langfuseMedia:type=audio/wav|id=x|source=bytes@@@").kind == "audio"
    assert parse_reference("@@@langfuseMedia:type=application/pdf|id=x|source=bytes@@@").kind == "file"
    assert parse_reference("@@@langfuseMedia:source=bytes@@@") is None
    assert parse_reference("plain") is None
    parts = split_references(f"see {REF} and {REF}!")
    assert parts[0] == "see " and parts[2] == " and " and parts[4] == "!"
    assert parts[1] == parts[3] == ref
    assert split_references("no media") == ["no media"]


def test_v4_metadata_media_is_a_reference_not_a_quoted_string() -> None:
    assert _decode_meta(f'"{REF}"', META_RAW) == REF
    assert _decode_meta('"hi"', META_RAW) == 'hi'  # like any JSON text from v4, as Langfuse reads it
    assert _decode_meta(REF, META_RAW) == REF


def test_dataset_item_references_have_the_sdks_json_paths() -> None:
    value = {"image": REF, "pages": [{"scan": REF}, "text"], "note": f"inline {REF}", "n": 1}
    assert list(find_references(value)) == [
        ("$['image']", REF, "abcDEF_-123"), ("$['pages'][0]['scan']", REF, "abcDEF_-123")]
    assert list(find_references(REF)) == [("$", REF, "abcDEF_-123")]
    assert list(find_references(None)) == []
