"""/api/public/annotation-queues on both stacks: queues, items (trace, observation, session) with
their status filter and paging, assignments, 4xx on bad input, project isolation, and the review
lock (two reviewers never get the same item)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import create_project_key
from owlscope.accounts.bootstrap import create_org_project_user
from owlscope.annotation import items as queue_items
from owlscope.app import create_app
from owlscope.ingestion.rows import ObservationEvent, TraceEvent, observations_table, traces_table
from owlscope.storage.oltp.models import OrganizationMembership, Project, User
from owlscope.storage.oltp.queue_models import AnnotationQueueItem
from owlscope.tracing_config.score_configs import create_score_config

BASE = "/api/public/annotation-queues"
QUEUE_KEYS = {"id", "name", "description", "scoreConfigIds", "createdAt", "updatedAt"}
ITEM_KEYS = {"id", "queueId", "objectId", "objectType", "status", "completedAt", "createdAt", "updatedAt"}


@dataclass
class Api:
    client: TestClient
    services: Any
    a: dict
    b: dict
    config_id: str

    def call(self, method: str, path: str, body: Any = None, who: dict | None = None, **params: Any
             ) -> httpx.Response:
        who = who or self.a
        return self.client.request(method, BASE + path, json=body, params=params,
                                   auth=(who["public_key"], who["secret_key"]))

    def add_user(self, email: str, role: str) -> str:
        with self.services.sessions() as s, s.begin():
            user = User(email=email)
            s.add(user)
            s.flush()
            s.add(OrganizationMembership(org_id=s.get(Project, self.a["project_id"]).org_id, user_id=user.id,
                                         role=role))
            return user.id

    def queue(self, name: str = "review") -> dict[str, Any]:
        r = self.call("POST", "", {"name": name, "description": "check answers", "scoreConfigIds": [self.config_id]})
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def api(stack: str, make_settings) -> Iterator[Api]:
    app = create_app(make_settings(stack), run_worker=False)
    with TestClient(app) as client:
        services = app.state.services
        a = create_org_project_user(services.sessions, services.settings, org_name="org a", project_name="a",
                                    email="alice@example.com")
        b = create_project_key(services, org_name="org b", project_name="b")
        now = datetime.now(UTC)
        services.olap.insert_arrow("trace_events", traces_table([
            TraceEvent(project_id=a["project_id"], id=f"trace-{i}", event_ts=now, timestamp=now, name="t",
                       session_id="session-1") for i in range(1, 6)]))
        services.olap.insert_arrow("observation_events", observations_table([
            ObservationEvent(project_id=a["project_id"], id="obs-1", trace_id="trace-1", event_ts=now,
                             type="SPAN", name="step", start_time=now)]))
        config = create_score_config(services.sessions, project_id=a["project_id"],
                                     data={"name": "correct", "dataType": "BOOLEAN"})
        yield Api(client, services, a, b, config["id"])


def test_create_list_get_queue(api: Api) -> None:
    q = api.queue()
    assert set(q) == QUEUE_KEYS and q["name"] == "review" and q["scoreConfigIds"] == [api.config_id]
    assert q["description"] == "check answers"
    api.queue("second")
    page = api.call("GET", "", limit=1).json()
    assert page["meta"] == {"page": 1, "limit": 1, "totalItems": 2, "totalPages": 2}
    assert [x["name"] for x in page["data"]] == ["second"]
    assert api.call("GET", "", page=2, limit=1).json()["data"][0]["id"] == q["id"]
    assert api.call("GET", f"/{q['id']}").json() == q


@pytest.mark.parametrize("body,status", [
    ({"name": "x"}, 400),                                          # scoreConfigIds missing
    ({"name": "x", "scoreConfigIds": []}, 400),
    ({"name": "x", "scoreConfigIds": ["nope"]}, 400),
    ({"name": "", "scoreConfigIds": ["CONFIG"]}, 400),
    ({"name": 5, "scoreConfigIds": ["CONFIG"]}, 400),
    ([1, 2], 400),
    ({"name": "x" * 256, "scoreConfigIds": ["CONFIG"]}, 400),
    ({"name": "x", "description": "a\u0000b", "scoreConfigIds": ["CONFIG"]}, 400),
    ({"name": "x", "scoreConfigIds": "CONFIG"}, 400),
    ({"name": "review", "scoreConfigIds": ["CONFIG"]}, 409),       # name taken
])
def test_bad_queue_input_is_4xx_json(api: Api, body: Any, status: int) -> None:
    api.queue()
    if isinstance(body, dict):
        body = {k: [api.config_id if c == "CONFIG" else c for c in v] if k == "scoreConfigIds" else v
                for k, v in body.items()}
    r = api.call("POST", "", body)
    assert r.status_code == status, r.text
    assert set(r.json()) >= {"message", "error"}
    assert api.call("GET", "").json()["meta"]["totalItems"] == 1


def test_items_of_each_kind_with_status_filter_update_and_remove(api: Api) -> None:
    q = api.queue()
    made = {}
    for kind, object_id in (("TRACE", "trace-1"), ("OBSERVATION", "obs-1"), ("SESSION", "session-1")):
        r = api.call("POST", f"/{q['id']}/items", {"objectId": object_id, "objectType": kind})
        assert r.status_code == 200, r.text
        item = r.json()
        assert set(item) == ITEM_KEYS and item["status"] == "PENDING" and item["completedAt"] is None
        assert item["objectType"] == kind and item["queueId"] == q["id"]
        made[kind] = item
    # adding the same object again returns the item already there
    again = api.call("POST", f"/{q['id']}/items", {"objectId": "trace-1", "objectType": "trace"}).json()
    assert again["id"] == made["TRACE"]["id"]
    done = api.call("POST", f"/{q['id']}/items", {"objectId": "trace-2", "objectType": "TRACE",
                                                   "status": "COMPLETED"}).json()
    assert done["status"] == "COMPLETED" and done["completedAt"]

    listing = api.call("GET", f"/{q['id']}/items").json()
    assert listing["meta"]["totalItems"] == 4 and [x["objectId"] for x in listing["data"]][:3] == \
        ["trace-1", "obs-1", "session-1"]
    pending = api.call("GET", f"/{q['id']}/items", status="PENDING").json()
    assert pending["meta"]["totalItems"] == 3
    assert [x["id"] for x in api.call("GET", f"/{q['id']}/items", status="COMPLETED").json()["data"]] == [done["id"]]
    assert api.call("GET", f"/{q['id']}/items", status="DONE").status_code == 400

    item_id = made["SESSION"]["id"]
    assert api.call("GET", f"/{q['id']}/items/{item_id}").json() == made["SESSION"]
    patched = api.call("PATCH", f"/{q['id']}/items/{item_id}", {"status": "COMPLETED"})
    assert patched.status_code == 200 and patched.json()["status"] == "COMPLETED" and patched.json()["completedAt"]
    back = api.call("PATCH", f"/{q['id']}/items/{item_id}", {"status": "PENDING"}).json()
    assert back["status"] == "PENDING" and back["completedAt"] is None
    assert api.call("PATCH", f"/{q['id']}/items/{item_id}", {"status": "DONE"}).status_code == 400

    removed = api.call("DELETE", f"/{q['id']}/items/{item_id}")
    assert removed.status_code == 200 and removed.json()["success"] is True and removed.json()["message"]
    assert api.call("GET", f"/{q['id']}/items/{item_id}").status_code == 404
    assert api.call("DELETE", f"/{q['id']}/items/{item_id}").status_code == 404


@pytest.mark.parametrize("body,status", [
    ({"objectId": "no-such-trace", "objectType": "TRACE"}, 404),
    ({"objectId": "trace-1", "objectType": "DATASET"}, 400),
    ({"objectId": "trace-1"}, 400),
    ({"objectId": "", "objectType": "TRACE"}, 400),
    ({"objectId": "t" * 256, "objectType": "TRACE"}, 400),
    ({"objectId": "trace-1\u0000", "objectType": "TRACE"}, 400),
    ({"objectId": ["trace-1"], "objectType": "TRACE"}, 400),
    ({"objectId": "trace-1", "objectType": "TRACE", "status": "MAYBE"}, 400),
])
def test_bad_item_input(api: Api, body: dict, status: int) -> None:
    q = api.queue()
    r = api.call("POST", f"/{q['id']}/items", body)
    assert r.status_code == status, r.text
    assert set(r.json()) >= {"message", "error"}
    assert api.call("GET", f"/{q['id']}/items").json()["meta"]["totalItems"] == 0
    assert api.call("POST", "/no-such-queue/items", {"objectId": "trace-1", "objectType": "TRACE"}).status_code == 404


def test_assignments(api: Api) -> None:
    q = api.queue()
    member = api.add_user("member@example.com", "MEMBER")
    viewer = api.add_user("viewer@example.com", "VIEWER")
    r = api.call("POST", f"/{q['id']}/assignments", {"userId": member})
    assert r.status_code == 200 and r.json() == {"userId": member, "queueId": q["id"], "projectId": api.a["project_id"]}
    assert api.call("POST", f"/{q['id']}/assignments", {"userId": member}).status_code == 200  # idempotent
    assert api.call("POST", f"/{q['id']}/assignments", {"userId": viewer}).status_code == 400
    assert api.call("POST", f"/{q['id']}/assignments", {"userId": "nobody"}).status_code == 404
    assert api.call("POST", f"/{q['id']}/assignments", {}).status_code == 400
    r = api.call("DELETE", f"/{q['id']}/assignments", {"userId": member})
    assert r.status_code == 200 and r.json() == {"success": True}
    assert api.call("DELETE", f"/{q['id']}/assignments", {"userId": member}).status_code == 404


def test_another_projects_keys_see_nothing(api: Api) -> None:
    q = api.queue()
    item = api.call("POST", f"/{q['id']}/items", {"objectId": "trace-1", "objectType": "TRACE"}).json()
    b = api.b
    assert api.call("GET", "", who=b).json()["data"] == []
    for method, path, body in (("GET", f"/{q['id']}", None), ("GET", f"/{q['id']}/items", None),
                               ("GET", f"/{q['id']}/items/{item['id']}", None),
                               ("PATCH", f"/{q['id']}/items/{item['id']}", {"status": "COMPLETED"}),
                               ("DELETE", f"/{q['id']}/items/{item['id']}", None),
                               ("POST", f"/{q['id']}/items", {"objectId": "trace-2", "objectType": "TRACE"}),
                               ("POST", f"/{q['id']}/assignments", {"userId": api.a["user_id"]})):
        r = api.call(method, path, body, who=b)
        assert r.status_code == 404, (method, path, r.text)
    # B's own queue cannot take A's trace
    config = create_score_config(api.services.sessions, project_id=b["project_id"],
                                 data={"name": "ok", "dataType": "BOOLEAN"})
    qb = api.call("POST", "", {"name": "b", "scoreConfigIds": [config["id"]]}, who=b).json()
    assert api.call("POST", f"/{qb['id']}/items", {"objectId": "trace-1", "objectType": "TRACE"},
                    who=b).status_code == 404
    # and A's queue cannot name B's score config
    assert api.call("POST", "", {"name": "x", "scoreConfigIds": [config["id"]]}).status_code == 400
    assert api.call("GET", f"/{q['id']}/items/{item['id']}").json()["status"] == "PENDING"


def test_two_reviewers_never_get_the_same_item(api: Api) -> None:
    q = api.queue()
    for i in range(1, 4):
        api.call("POST", f"/{q['id']}/items", {"objectId": f"trace-{i}", "objectType": "TRACE"})
    alice, bob = api.a["user_id"], api.add_user("bob@example.com", "MEMBER")
    kw = {"project_id": api.a["project_id"], "queue_id": q["id"]}
    sessions = api.services.sessions
    a1 = queue_items.next_item(sessions, user_id=alice, **kw)
    b1 = queue_items.next_item(sessions, user_id=bob, **kw)
    assert a1.object_id == "trace-1" and b1.object_id == "trace-2"
    # asking again gives each their own item back; opening the other's item shows who holds it
    assert queue_items.next_item(sessions, user_id=alice, **kw).id == a1.id
    assert queue_items.open_item(sessions, item_id=a1.id, user_id=bob, **kw).locked_by == alice
    with pytest.raises(Exception, match="Another reviewer"):
        queue_items.complete_item(sessions, item_id=a1.id, user_id=bob, **kw)
    # alice completes hers; next for her skips bob's
    queue_items.complete_item(sessions, item_id=a1.id, user_id=alice, **kw)
    a2 = queue_items.next_item(sessions, user_id=alice, after_item_id=a1.id, **kw)
    assert a2.object_id == "trace-3"
    assert queue_items.next_item(sessions, user_id=alice, after_item_id=a2.id, **kw).id == a2.id  # only hers left
    # skipping releases the lock; an expired lock is free again
    queue_items.release_item(sessions, item_id=a2.id, user_id=alice, **kw)
    with sessions() as s, s.begin():
        s.get(AnnotationQueueItem, b1.id).locked_at = datetime.now(UTC) - timedelta(
            seconds=queue_items.LOCK_SECONDS + 1)
    assert queue_items.next_item(sessions, user_id=alice, after_item_id=a2.id, **kw).id == b1.id
    assert queue_items.previous_item(sessions, user_id=alice, before_item_id=b1.id, **kw).id == a1.id
    counts = queue_items.reviewer_counts(sessions, project_id=api.a["project_id"], queue_id=q["id"])
    assert counts == {alice: {"completed": 1, "in_review": 1}}  # she holds bob's expired item now
