"""Media with the official SDKs (v5 in-process, 4.14 in its own venv) against a real server: an
OpenAI-wrapper call with an image, a PDF in metadata, audio in an output and a dataset item with
the same image. The bytes are stored once, the trace holds references, and the SDK's
`resolve_media_references` gives back the original data URIs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import skip_or_fail
from owlscope.media import parse_reference
from owlscope.storage.oltp.media_models import MediaReference
from support.fake_openai import FakeOpenAI
from support.sdk_reads import read_observations, read_trace

SCRIPTS = Path(__file__).resolve().parents[1] / "support" / "sdk4_scripts"
sys.path.insert(0, str(SCRIPTS))
import media_flows  # noqa: E402


@pytest.fixture(scope="module")
def llm():
    with FakeOpenAI() as server:
        yield server


def _sdk4(sdk_server, *args: str) -> dict[str, Any]:
    python = os.environ.get("OWLSCOPE_SDK4_PYTHON")
    if not python or not Path(python).is_file():
        skip_or_fail("OWLSCOPE_SDK4_PYTHON is not set (the python of a venv with langfuse==4.14.3, openai, httpx)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "OTEL_"))}
    env.update(LANGFUSE_PUBLIC_KEY=sdk_server.public_key, LANGFUSE_SECRET_KEY=sdk_server.secret_key,
               LANGFUSE_BASE_URL=sdk_server.url, LANGFUSE_HOST=sdk_server.url, PYTHONPATH="")
    proc = subprocess.run([python, str(SCRIPTS / "media_flows.py"), *args], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout}\n{proc.stderr}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["sdk_version"].startswith("4."), out["sdk_version"]
    return out


def _check(sdk_server, ids: dict[str, Any], tag: str) -> dict[str, str]:
    """Assert what the server holds; returns the reference strings by what they stand for."""
    trace_id = ids["trace_id"]
    read_trace(sdk_server, trace_id, 3)
    obs = read_observations(sdk_server, trace_id)
    vision = obs[f"vision-{tag}"]
    parts = vision["input"][0]["content"] if isinstance(vision["input"], list) else vision["input"]["messages"][0][
        "content"]
    image_ref = parts[1]["image_url"]["url"]
    speak = obs[f"speak-{tag}"]
    audio_ref, pdf_ref = speak["output"]["audio"], speak["metadata"]["report"]
    item = sdk_server.wait_for(f"/api/public/dataset-items/{ids['item_id']}").json()
    item_ref = item["input"]["image"]
    refs = {"image": image_ref, "audio": audio_ref, "pdf": pdf_ref, "item": item_ref}
    parsed = {k: parse_reference(v) for k, v in refs.items()}
    assert all(parsed.values()), refs
    assert parsed["image"].content_type == "image/png" and parsed["audio"].content_type == "audio/wav"
    assert parsed["pdf"].content_type == "application/pdf"
    assert parsed["item"].media_id == parsed["image"].media_id  # the same bytes, the same media

    for name, data in (("image", media_flows.PNG), ("audio", media_flows.WAV), ("pdf", media_flows.PDF)):
        got = sdk_server.get(f"/api/public/media/{parsed[name].media_id}")
        assert got.status_code == 200, got.text
        assert got.json()["contentLength"] == len(data)
        key = f"media/{sdk_server.project_id}/{hashlib.sha256(data).hexdigest()}"
        assert sdk_server.services.blobs.get(key) == data
    # the image was sent twice (chat input and dataset item) and is stored once
    stored = [b.key for b in sdk_server.services.blobs.list(f"media/{sdk_server.project_id}/")
              if b.key.endswith(hashlib.sha256(media_flows.PNG).hexdigest())]
    assert len(stored) == 1
    with sdk_server.services.sessions() as session:
        links = session.scalars(select(MediaReference).where(
            MediaReference.project_id == sdk_server.project_id,
            MediaReference.media_id == parsed["image"].media_id)).all()
        kinds = {(x.trace_id, x.observation_id, x.field) for x in links if x.trace_id == trace_id}
        assert kinds == {(trace_id, vision["id"], "input")}
        assert any(x.dataset_item_id == ids["item_id"] and x.field == "input" for x in links)
        speak_links = session.scalars(select(MediaReference).where(
            MediaReference.project_id == sdk_server.project_id, MediaReference.trace_id == trace_id,
            MediaReference.observation_id == speak["id"])).all()
        assert {(x.media_id, x.field) for x in speak_links} == {
            (parsed["audio"].media_id, "output"), (parsed["pdf"].media_id, "metadata")}
    return refs


EXPECTED = {"image": media_flows.PNG_URI, "audio": media_flows.WAV_URI,
            "pdf": media_flows.data_uri("application/pdf", media_flows.PDF), "item": media_flows.PNG_URI}


def test_media_flows_sdk_v5(sdk_server, llm) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = media_flows.flow_media(tag, llm.base_url)
    sdk_server.client.flush()
    from langfuse import get_client

    get_client().flush()
    refs = _check(sdk_server, ids, tag)
    assert media_flows.resolve(refs) == EXPECTED
    # the dataset item read through the SDK holds the reference too
    # ...and the SDK turns the item's media reference into a media object that fetches the bytes
    from langfuse.media import LangfuseMediaReference

    image = get_client().get_dataset(ids["dataset"]).items[0].input["image"]
    assert isinstance(image, LangfuseMediaReference)
    assert image.reference_string == refs["item"] and image.content_type == "image/png"
    assert image.fetch_data_uri() == media_flows.PNG_URI


def test_media_flows_sdk_v4(sdk_server, llm) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = _sdk4(sdk_server, "media", tag, llm.base_url)
    refs = _check(sdk_server, ids, tag)
    assert _sdk4(sdk_server, "resolve", json.dumps(refs))["resolved"] == EXPECTED


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory, chdb_dir, s3_endpoint):
    """A server whose blob store is S3 (the moto server): the SDK uploads to presigned URLs."""
    from conftest import LiveServer, SdkServer, create_project_key, make_bucket
    from owlscope.config import load_settings

    settings = load_settings(
        data_dir=tmp_path_factory.mktemp("s3-media"), clickhouse_url=f"chdb://{chdb_dir}",
        clickhouse_db=f"s3m_{uuid.uuid4().hex[:10]}", flush_interval_ms=50, s3_bucket=make_bucket(s3_endpoint),
        s3_endpoint=s3_endpoint, s3_access_key_id="testing", s3_secret_access_key="testing",
        s3_force_path_style=True,
    )
    with LiveServer(settings) as server:
        keys = create_project_key(server.services, org_name="s3-org", project_name="s3-project")
        yield SdkServer(server, keys)


def test_media_flows_on_s3_sdk_v5(s3_server, llm) -> None:
    from langfuse import Langfuse
    from langfuse._client.get_client import _set_current_public_key

    assert s3_server.services.blobs.can_sign
    client = Langfuse(public_key=s3_server.public_key, secret_key=s3_server.secret_key, base_url=s3_server.url,
                      flush_interval=0.2)
    tag = uuid.uuid4().hex[:8]
    with _set_current_public_key(s3_server.public_key):
        ids = media_flows.flow_media(tag, llm.base_url)
        client.flush()
        refs = _check(s3_server, ids, tag)
        media = s3_server.get(f"/api/public/media/{parse_reference(refs['image']).media_id}").json()
        assert "X-Amz-Signature=" in media["url"]  # a presigned S3 URL, not one served by Owlscope
        assert media_flows.resolve(refs) == EXPECTED


def test_media_flows_on_s3_sdk_v4(s3_server, llm) -> None:
    tag = uuid.uuid4().hex[:8]
    ids = _sdk4(s3_server, "media", tag, llm.base_url)
    refs = _check(s3_server, ids, tag)
    assert _sdk4(s3_server, "resolve", json.dumps(refs))["resolved"] == EXPECTED
