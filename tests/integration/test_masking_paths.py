"""Masking on every write path outside the ingestion endpoints: each path stores an e-mail address
and a card number masked (read from the stores themselves, not through a reader that could mask on
the way out). The ingestion endpoints (SDK, OTLP, batch, scores API) are in test_masking_ingestion.

Paths: dataset items from the API, the item form, a CSV upload (and the file kept between its two
steps), "add to dataset" from one trace or observation and from many traces, the playground's "save
as dataset item"; score comments from the scores API and from an annotation in the UI; comments
from the API and the UI; a media upload's error report."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_web_prompts import Team, make_team

from owlscope.app import create_app
from owlscope.datasets.store import create_dataset
from owlscope.ingestion.rows import ObservationEvent, TraceEvent, observations_table, traces_table
from owlscope.storage.oltp.dataset_models import DatasetItem, DatasetItemVersion

EMAIL = "grace.hopper@navy-example.org"
CARD = "4111 1111 1111 1111"
SECRET = f"write to {EMAIL}, pay with {CARD}"


@dataclass
class World:
    team: Team
    client: TestClient
    auth: tuple[str, str]

    @property
    def services(self) -> Any:
        return self.team.services

    @property
    def project_id(self) -> str:
        return self.team.project_id

    @property
    def member(self) -> Any:
        return self.team.users["MEMBER"]

    def url(self, path: str) -> str:
        return self.team.url(path)


@pytest.fixture(name="w")
def fixture_world(make_settings) -> Iterator[World]:
    from owlscope.auth.keys import create_api_key

    app = create_app(make_settings("embedded", masking_detectors="email,credit_card"), run_worker=True)
    with TestClient(app) as client:
        team = make_team(app)
        services = app.state.services
        with services.sessions() as session, session.begin():
            key, secret = create_api_key(session, project_id=team.project_id, salt=services.settings.salt)
            auth = (key.public_key, secret)
        yield World(team, client, auth)


def assert_masked(stored: Any) -> None:
    text = stored if isinstance(stored, str) else json.dumps(stored, default=str)
    assert EMAIL not in text and CARD not in text and CARD.replace(" ", "") not in text, text[:500]
    assert "<EMAIL>" in text and "<CREDIT_CARD>" in text, text[:500]


def stored_items(w: World, dataset: str) -> list[dict[str, Any]]:
    """The dataset's item rows and every version row, as stored."""
    from owlscope.storage.oltp.dataset_models import Dataset

    with w.services.sessions() as s:
        ds_id = s.scalar(select(Dataset.id).where(Dataset.project_id == w.project_id, Dataset.name == dataset))
        rows = [*s.scalars(select(DatasetItem).where(DatasetItem.dataset_id == ds_id)),
                *s.scalars(select(DatasetItemVersion).where(DatasetItemVersion.dataset_id == ds_id))]
        assert rows, f"no items stored in {dataset}"
        return [{"input": r.input, "expected": r.expected_output, "metadata": r.metadata_} for r in rows]


def dataset(w: World, name: str) -> dict[str, Any]:
    return create_dataset(w.services.sessions, project_id=w.project_id, name=name)


def insert_trace(w: World, trace_id: str, *, observation_id: str | None = None) -> None:
    """A trace (and observation) holding the secrets as stored before masking was turned on."""
    now = datetime.now(UTC)
    olap = w.services.olap
    olap.insert_arrow("trace_events", traces_table([TraceEvent(
        w.project_id, trace_id, now, timestamp=now, name="chat", input=json.dumps({"q": SECRET}),
        output=json.dumps(SECRET))]))
    if observation_id:
        olap.insert_arrow("observation_events", observations_table([ObservationEvent(
            w.project_id, observation_id, trace_id, now, type="GENERATION", name="llm", start_time=now,
            input=json.dumps([{"role": "user", "content": SECRET}]), output=json.dumps(SECRET))]))


# ---- dataset items -----------------------------------------------------------------------------------
def test_dataset_item_from_the_api(w: World) -> None:
    dataset(w, "api")
    r = w.client.post("/api/public/dataset-items", auth=w.auth, json={
        "datasetName": "api", "input": {"q": SECRET}, "expectedOutput": SECRET, "metadata": {"note": SECRET}})
    assert r.status_code == 200, r.text
    assert_masked(r.json())
    assert_masked(stored_items(w, "api"))


def test_dataset_item_from_the_item_form(w: World) -> None:
    ds = dataset(w, "form")
    r = w.member.post(w.url(f"/datasets/{ds['id']}/items/save"), {
        "input": json.dumps({"q": SECRET}), "expected_output": SECRET, "metadata": json.dumps({"n": SECRET})})
    assert r.status_code == 303, r.text
    assert_masked(stored_items(w, "form"))


def test_dataset_items_from_a_csv_upload(w: World) -> None:
    ds = dataset(w, "csv")
    csv = f'question,answer\n"{SECRET}, please",{EMAIL}\nplain,{CARD}\n'.encode()
    r = w.member.client.post(w.url(f"/datasets/{ds['id']}/upload"), data={"csrf_token": w.member.csrf()},
                             files={"file": ("people.csv", csv, "text/csv")})
    assert r.status_code == 200, r.text
    upload_id = re.search(r"/upload/([0-9a-f]{32})", r.text).group(1)
    # the file kept between the two steps already holds the masked values, and so does the preview
    kept = w.services.blobs.get(f"datasets/uploads/{w.project_id}/{upload_id}").decode()
    assert_masked(kept)
    assert EMAIL not in r.text
    r = w.member.post(w.url(f"/datasets/{ds['id']}/upload/{upload_id}"),
                      {"column": ["input", "expectedOutput"], "filename": "people.csv"})
    assert r.status_code == 303, r.text
    items = stored_items(w, "csv")
    assert_masked(items)
    assert {"input": "<EMAIL>, pay with <CREDIT_CARD>, please".join(["write to ", ""]), "expected": "<EMAIL>",
            "metadata": None} in items


def test_dataset_items_added_from_traces_and_observations(w: World) -> None:
    insert_trace(w, "t-1", observation_id="o-1")
    insert_trace(w, "t-2")
    one = dataset(w, "one")
    # one observation, from the dialog: what was typed (and the metadata) is masked
    r = w.member.post(w.url("/datasets/add-from-trace"), {
        "trace_id": "t-1", "observation_id": "o-1", "dataset_id": one["id"],
        "input": json.dumps([{"role": "user", "content": SECRET}]), "expected_output": SECRET,
        "metadata": json.dumps({"reviewer": EMAIL, "card": CARD})}, htmx=True)
    assert r.status_code == 200 and "Added 1 item" in r.text, r.text[-500:]
    assert_masked(stored_items(w, "one"))
    # many traces at once: their stored input and output (not masked when they were ingested) are
    many = dataset(w, "many")
    r = w.member.post(w.url("/datasets/add-from-traces"), {"trace_ids": ["t-1,t-2"], "dataset_id": many["id"]})
    assert r.status_code == 303, r.text
    items = stored_items(w, "many")
    assert len(items) == 4  # two items, each with its first version
    assert_masked(items)


def test_dataset_item_saved_from_the_playground(w: World) -> None:
    r = w.member.client.post(w.url("/playground/save-item"), headers={"X-CSRF-Token": w.member.csrf()}, json={
        "dataset": "playground", "output": f"answer: {SECRET}",
        "run": {"messages": [{"role": "user", "content": SECRET}],
                "model": {"provider": "local", "model": "gpt-4o", "params": {}}}})
    assert r.status_code == 200, r.text
    assert_masked(stored_items(w, "playground"))


# ---- scores and comments ---------------------------------------------------------------------------
def stored_score_comments(w: World, n: int) -> list[str]:
    deadline = time.monotonic() + 20
    while True:
        rows = w.services.olap.query("SELECT comment FROM {db}.scores WHERE project_id = {p:String}",
                                     {"p": w.project_id})
        if len(rows) >= n:
            return [r[0] for r in rows]
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)


def test_score_comment_from_the_api(w: World) -> None:
    insert_trace(w, "t-api")
    r = w.client.post("/api/public/scores", auth=w.auth, json={
        "traceId": "t-api", "name": "quality", "value": 1, "comment": SECRET})
    assert r.status_code == 200, r.text
    (comment,) = stored_score_comments(w, 1)
    assert_masked(comment)


def test_score_comment_from_an_annotation(w: World) -> None:
    from owlscope.tracing_config.score_configs import create_score_config

    insert_trace(w, "t-ui")
    config = create_score_config(w.services.sessions, project_id=w.project_id,
                                 data={"name": "correctness", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1})
    r = w.member.post(w.url("/annotate"), {"kind": "trace", "id": "t-ui", "config_id": config["id"], "value": "1",
                                          "comment": SECRET}, htmx=True)
    assert r.status_code == 200, r.text[-500:]
    (comment,) = stored_score_comments(w, 1)
    assert_masked(comment)


def test_comments_from_the_api_and_the_ui(w: World) -> None:
    from owlscope.storage.oltp.models import Comment

    insert_trace(w, "t-c")
    r = w.client.post("/api/public/comments", auth=w.auth, json={
        "projectId": w.project_id, "objectType": "TRACE", "objectId": "t-c", "content": SECRET})
    assert r.status_code == 200, r.text
    r = w.member.post(w.url("/comments"), {"kind": "trace", "id": "t-c", "content": f"ui: {SECRET}"}, htmx=True)
    assert r.status_code == 200, r.text[-500:]
    with w.services.sessions() as s:
        contents = list(s.scalars(select(Comment.content).where(Comment.project_id == w.project_id)))
    assert len(contents) == 2
    for content in contents:
        assert_masked(content)


# ---- media -----------------------------------------------------------------------------------------
def test_media_upload_error_report(w: World) -> None:
    import base64
    import hashlib

    from owlscope.storage.oltp.media_models import Media

    data = uuid.uuid4().bytes * 4
    r = w.client.post("/api/public/media", auth=w.auth, json={
        "traceId": "t-m", "field": "input", "contentType": "image/png", "contentLength": len(data),
        "sha256Hash": base64.b64encode(hashlib.sha256(data).digest()).decode()})
    assert r.status_code == 200, r.text
    media_id = r.json()["mediaId"]
    r = w.client.patch(f"/api/public/media/{media_id}", auth=w.auth, json={
        "uploadedAt": "2026-12-04T10:00:00Z", "uploadHttpStatus": 500, "uploadHttpError": f"proxy said: {SECRET}",
        "uploadTimeMs": 3})
    assert r.status_code == 204, r.text
    with w.services.sessions() as s:
        error = s.scalar(select(Media.upload_http_error).where(Media.project_id == w.project_id, Media.id == media_id))
    assert_masked(error)
