"""/api/public/comments on both stacks: targets must exist, authors must be members, filters, isolation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import create_project_key
from owlscope.accounts.bootstrap import create_org_project_user
from owlscope.app import create_app
from owlscope.ingestion.rows import ObservationEvent, TraceEvent, observations_table, traces_table
from owlscope.storage.oltp.models import Comment, User
from owlscope.storage.oltp.prompt_models import Prompt

COMMENT_KEYS = {"id", "projectId", "createdAt", "updatedAt", "objectType", "objectId", "content", "authorUserId"}
PATH = "/api/public/comments"


@dataclass
class Api:
    client: TestClient
    services: Any
    a: dict
    b: dict

    def auth(self, who: dict) -> tuple[str, str]:
        return who["public_key"], who["secret_key"]

    def post(self, body: Any, who: dict | None = None) -> httpx.Response:
        return self.client.post(PATH, json=body, auth=self.auth(who or self.a))

    def get(self, path: str = PATH, who: dict | None = None, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, auth=self.auth(who or self.a))


@pytest.fixture
def api(stack: str, make_settings) -> Iterator[Api]:
    app = create_app(make_settings(stack), run_worker=False)
    with TestClient(app) as client:
        services = app.state.services
        a = create_org_project_user(services.sessions, services.settings, org_name="org a", project_name="a",
                                    email="alice@example.com")
        b = create_project_key(services, org_name="org b", project_name="b")
        now = datetime.now(UTC)
        # a trace with one observation in a session, in project A only (as the worker would write them)
        services.olap.insert_arrow("trace_events", traces_table([
            TraceEvent(project_id=a["project_id"], id="trace-1", event_ts=now, timestamp=now, name="t",
                       session_id="session-1")]))
        services.olap.insert_arrow("observation_events", observations_table([
            ObservationEvent(project_id=a["project_id"], id="obs-1", trace_id="trace-1", event_ts=now,
                             type="SPAN", name="step", start_time=now)]))
        yield Api(client, services, a, b)


def _created(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"id"}
    return r.json()["id"]


def test_comment_on_each_object_type(api: Api) -> None:
    with api.services.sessions() as s, s.begin():
        prompt = Prompt(project_id=api.a["project_id"], name="greeting", version=1, type="text", prompt="Hi",
                        config={}, labels=[], tags=[])
        s.add(prompt)
        s.flush()
        prompt_id = prompt.id
    targets = {"TRACE": "trace-1", "OBSERVATION": "obs-1", "SESSION": "session-1", "PROMPT": prompt_id}
    ids = {}
    for kind, object_id in targets.items():
        ids[kind] = _created(api.post({"projectId": api.a["project_id"], "objectType": kind,
                                       "objectId": object_id, "content": f"  about this {kind}  "}))
    got = api.get(f"{PATH}/{ids['TRACE']}")
    assert got.status_code == 200
    comment = got.json()
    assert set(comment) == COMMENT_KEYS
    assert comment == {**comment, "id": ids["TRACE"], "projectId": api.a["project_id"], "objectType": "TRACE",
                       "objectId": "trace-1", "content": "about this TRACE", "authorUserId": None}
    assert comment["createdAt"].endswith("Z") and comment["updatedAt"].endswith("Z")
    listed = api.get().json()
    assert listed["meta"] == {"page": 1, "limit": 50, "totalItems": 4, "totalPages": 1}
    assert [c["id"] for c in listed["data"]] == list(ids.values())  # oldest first


def test_missing_targets_are_404(api: Api) -> None:
    for kind, object_id in (("TRACE", "nope"), ("OBSERVATION", "nope"), ("SESSION", "nope"), ("PROMPT", "nope"),
                            ("TRACE", "obs-1")):
        r = api.post({"objectType": kind, "objectId": object_id, "content": "hello"})
        assert r.status_code == 404, (kind, r.text)
        assert r.json()["error"] == "LangfuseNotFoundError" and object_id in r.json()["message"]
    # another project's trace is not a valid target either
    r = api.post({"objectType": "TRACE", "objectId": "trace-1", "content": "hello"}, who=api.b)
    assert r.status_code == 404
    with api.services.sessions() as s:
        assert s.query(Comment).count() == 0


BAD_BODIES = [
    ({"objectType": "TRACE", "objectId": "trace-1"}, 400, "content"),
    ({"objectType": "TRACE", "objectId": "trace-1", "content": "   "}, 400, "must not be empty"),
    ({"objectType": "TRACE", "objectId": "trace-1", "content": "x" * 5001}, 400, "limit is 5000"),
    ({"objectType": "DATASET", "objectId": "trace-1", "content": "x"}, 400, "objectType must be one of"),
    ({"objectType": "TRACE", "objectId": "", "content": "x"}, 400, "objectId"),
    ({"objectType": "TRACE", "objectId": "x" * 256, "content": "x"}, 400, "objectId"),
    ({"objectType": "TRACE", "objectId": "trace-1", "content": "nul\x00byte"}, 400, "NUL"),
    ({"objectType": "TRACE", "objectId": "trace-1", "content": "x", "authorUserId": "ghost"}, 400, "not a member"),
    ({"objectType": "TRACE", "objectId": "trace-1", "content": "x", "projectId": "other"}, 403, "not the project"),
]


def test_invalid_comments_are_rejected_and_write_nothing(api: Api) -> None:
    for body, status, message in BAD_BODIES:  # one app for all cases: building a stack is the slow part
        r = api.post(body)
        assert r.status_code == status, (body, r.text)
        assert message in r.json()["message"], (body, r.text)
    with api.services.sessions() as s:
        assert s.query(Comment).count() == 0


def test_author_must_belong_to_the_projects_organization(api: Api) -> None:
    with api.services.sessions() as s, s.begin():
        outsider = User(email="mallory@example.com")
        s.add(outsider)
        s.flush()
        outsider_id = outsider.id
    r = api.post({"objectType": "TRACE", "objectId": "trace-1", "content": "x", "authorUserId": outsider_id})
    assert r.status_code == 400 and "not a member" in r.json()["message"]
    cid = _created(api.post({"objectType": "TRACE", "objectId": "trace-1", "content": "x",
                             "authorUserId": api.a["user_id"]}))
    assert api.get(f"{PATH}/{cid}").json()["authorUserId"] == api.a["user_id"]


def test_filters_paging_and_isolation(api: Api) -> None:
    alice = api.a["user_id"]
    for i in range(3):
        _created(api.post({"objectType": "trace", "objectId": "trace-1", "content": f"t{i}",  # any case
                           "authorUserId": alice if i == 0 else None}))
    obs = _created(api.post({"objectType": "OBSERVATION", "objectId": "obs-1", "content": "o"}))

    on_trace = api.get(objectType="TRACE", objectId="trace-1").json()
    assert [c["content"] for c in on_trace["data"]] == ["t0", "t1", "t2"]
    assert [c["id"] for c in api.get(objectType="OBSERVATION").json()["data"]] == [obs]
    assert [c["content"] for c in api.get(authorUserId=alice).json()["data"]] == ["t0"]
    assert api.get(objectType="TRACE", objectId="nope").json()["data"] == []
    page = api.get(limit=3, page=2).json()
    assert [c["id"] for c in page["data"]] == [obs]
    assert page["meta"] == {"page": 2, "limit": 3, "totalItems": 4, "totalPages": 2}

    r = api.get(objectId="trace-1")
    assert r.status_code == 400 and "objectType is required" in r.json()["message"]
    assert api.get(objectType="DATASET").status_code == 400
    assert api.get(limit=101).status_code == 400

    # project B sees none of it
    assert api.get(who=api.b).json()["meta"]["totalItems"] == 0
    r = api.get(f"{PATH}/{obs}", who=api.b)
    assert r.status_code == 404 and r.json()["error"] == "LangfuseNotFoundError"
    assert api.get(f"{PATH}/missing").status_code == 404
    assert api.client.get(PATH).status_code == 401
