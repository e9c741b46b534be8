"""Annotation queues in the UI: create with settings, add from pages and in bulk from the traces
table, the review screen for a trace, an observation and a session (scores written as ANNOTATION by
the reviewer, queue progress per reviewer), the lock between two reviewers, and roles."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator

import pytest
from web_tracing_data import Site, open_site, seed, wait_scores

from owlscope.annotation import items as queue_items
from owlscope.annotation import queues
from owlscope.storage.oltp.models import User
from owlscope.tracing.scores import list_scores_v2
from owlscope.tracing_config.score_configs import create_score_config


@pytest.fixture
def site(make_settings) -> Iterator[Site]:
    with open_site(make_settings, run_worker=True) as s:
        seed(s.olap, s.project_id)
        yield s


def _user_id(site: Site, email: str) -> str:
    with site.services.sessions() as s:
        return s.query(User).filter_by(email=email).one().id


def _configs(site: Site) -> dict[str, str]:
    made = [
        create_score_config(site.services.sessions, project_id=site.project_id,
                            data={"name": "correctness", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1}),
        create_score_config(site.services.sessions, project_id=site.project_id, data={
            "name": "manner", "dataType": "CATEGORICAL",
            "categories": [{"label": "rude", "value": 0}, {"label": "neutral", "value": 1},
                           {"label": "friendly", "value": 2}]}),
    ]
    return {c["name"]: c["id"] for c in made}


def _queue(site: Site, ids: dict[str, str], name: str = "Support review") -> str:
    owner_id = _user_id(site, "owner@example.com")
    r = site.owner.post(f"{site.base}/annotation-queues/new", {
        "name": name, "description": "Are the answers right?", "config_id": list(ids.values()),
        "user_id": [owner_id]})
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def test_create_queue_and_settings(site: Site) -> None:
    ids = _configs(site)
    assert "No annotation queues yet" in site.owner.get(f"{site.base}/annotation-queues").text
    queue_id = _queue(site, ids)
    page = html.unescape(site.owner.get(f"{site.base}/annotation-queues/{queue_id}").text)
    assert "Support review" in page and "Are the answers right?" in page and "Olive Owner" in page
    # bad input re-renders the form with the message (400) and changes nothing
    r = site.owner.post(f"{site.base}/annotation-queues/{queue_id}/settings", {"name": "", "config_id": [ids["manner"]]})
    assert r.status_code == 400 and "name must be 1 to" in html.unescape(r.text)
    r = site.owner.post(f"{site.base}/annotation-queues/new", {"name": "Support review", "config_id": [ids["manner"]]})
    assert r.status_code == 409 and "already exists" in html.unescape(r.text)
    r = site.owner.post(f"{site.base}/annotation-queues/{queue_id}/settings", {
        "name": "Tone only", "description": "", "config_id": [ids["manner"]]})
    assert r.status_code == 303
    q = queues.get_queue(site.services.sessions, project_id=site.project_id, queue_id=queue_id)
    assert q["name"] == "Tone only" and q["scoreConfigIds"] == [ids["manner"]] and q["description"] is None
    assert queues.assigned_user_ids(site.services.sessions, project_id=site.project_id, queue_id=queue_id) == []
    listing = site.owner.get(f"{site.base}/annotation-queues").text
    assert "Tone only" in listing and 'href="/project/' in listing
    # deleting needs Admin
    member = site.add_member("member@example.com", "MEMBER")
    assert member.post(f"{site.base}/annotation-queues/{queue_id}/delete").status_code == 403
    assert site.owner.post(f"{site.base}/annotation-queues/{queue_id}/delete").status_code == 303
    assert site.owner.get(f"{site.base}/annotation-queues/{queue_id}").status_code == 404


def test_add_from_pages_and_in_bulk(site: Site) -> None:
    queue_id = _queue(site, _configs(site))
    control = site.owner.get(f"{site.base}/annotation-queues-control?kind=trace&id=t-chat-1",
                             headers={"HX-Request": "true"})
    assert "Add to queue" in control.text and "Support review" in control.text
    r = site.owner.post(f"{site.base}/annotation-queues/add", {"queue_id": queue_id, "kind": "session",
                                                               "id": "sess-1"}, htmx=True)
    assert r.status_code == 200 and "Added 1 item to Support review" in r.text
    r = site.owner.post(f"{site.base}/annotation-queues/add", {"queue_id": queue_id, "kind": "observation",
                                                               "id": "o-gen-2"}, htmx=True)
    assert r.status_code == 200
    # the traces table has a checkbox per row and a toolbar
    table = site.owner.get(f"{site.base}/traces").text
    assert 'name="trace_id" value="t-chat-1"' in table and "annotation-queues-control?kind=traces" in table
    bar = site.owner.get(f"{site.base}/annotation-queues-control?kind=traces", headers={"HX-Request": "true"}).text
    assert "hx-include" in bar and "trace_id" in bar
    r = site.owner.post(f"{site.base}/annotation-queues/add", {"queue_id": queue_id,
                                                               "trace_id": ["t-chat-1", "t-rag", "t-sum"]}, htmx=True)
    assert r.status_code == 200 and "Added 3 items" in r.text
    r = site.owner.post(f"{site.base}/annotation-queues/add", {"queue_id": queue_id, "trace_id": ["nope"]}, htmx=True)
    assert r.status_code == 404
    r = site.owner.post(f"{site.base}/annotation-queues/add", {"queue_id": queue_id}, htmx=True)
    assert r.status_code == 400 and "Select at least one" in r.text
    found = queue_items.list_items(site.services.sessions, project_id=site.project_id, queue_id=queue_id).data
    assert [(i["objectType"], i["objectId"]) for i in found] == [
        ("SESSION", "sess-1"), ("OBSERVATION", "o-gen-2"), ("TRACE", "t-chat-1"), ("TRACE", "t-rag"),
        ("TRACE", "t-sum")]
    # the trace, observation and session pages load the control
    assert "annotation-queues-control?kind=trace&id=t-chat-1" in site.owner.get(f"{site.base}/traces/t-chat-1").text
    assert "kind=observation&id=o-gen-1" in site.owner.get(f"{site.base}/traces/t-chat-1?observation=o-gen-1").text
    assert "kind=session&id=sess-1" in site.owner.get(f"{site.base}/sessions/sess-1").text


def test_review_each_kind_writes_annotation_scores(site: Site) -> None:
    ids = _configs(site)
    queue_id = _queue(site, ids)
    for kind, object_id in (("trace", "t-chat-1"), ("observation", "o-gen-2"), ("session", "sess-1")):
        site.owner.post(f"{site.base}/annotation-queues/add", {"queue_id": queue_id, "kind": kind, "id": object_id})
    owner_id = _user_id(site, "owner@example.com")
    r = site.owner.get(f"{site.base}/annotation-queues/{queue_id}/review")
    assert r.status_code == 303
    seen = []
    url = r.headers["location"]
    while "/review/" in url:
        page = site.owner.get(url)
        assert page.status_code == 200, page.text
        text = html.unescape(page.text)
        assert "correctness" in text and "data-review-complete" in text
        seen.append(text)
        r = site.owner.post(f"{url}/complete", {"config_id": [ids["correctness"], ids["manner"]],
                                                "value": ["0.5", "friendly"], "comment": ["", "kind"]})
        assert r.status_code == 303
        url = r.headers["location"]
    assert len(seen) == 3
    assert "handle-request" in seen[0]  # the trace's tree
    assert "llm-call" in seen[1] and "Open trace" in seen[1]  # the observation
    assert "How do I reset my password?" in seen[2]  # the session's turns
    scores = wait_scores(site, lambda s: len([x for x in s if x["source"] == "ANNOTATION"]) == 6)
    ann = [x for x in scores if x["source"] == "ANNOTATION"]
    assert {x["authorUserId"] for x in ann} == {owner_id} and {x["queueId"] for x in ann} == {queue_id}
    manner = [x for x in ann if x["name"] == "manner"]
    assert {(x["value"], x["stringValue"], x["comment"]) for x in manner} == {(2, "friendly", "kind")}
    subjects = {(x["traceId"], x["observationId"], x["sessionId"]) for x in ann}
    assert subjects == {("t-chat-1", None, None), ("t-chat-2", "o-gen-2", None), (None, None, "sess-1")}
    page = html.unescape(site.owner.get(f"{site.base}/annotation-queues/{queue_id}").text)
    assert re.search(r'id="count-completed">3<', page) and re.search(r'id="count-pending">0<', page)
    assert re.search(r"Olive Owner</td><td class=\"num\">3</td><td class=\"num\">0<", page)


def test_bad_values_write_nothing_and_keep_the_item(site: Site) -> None:
    ids = _configs(site)
    queue_id = _queue(site, ids)
    site.owner.post(f"{site.base}/annotation-queues/add", {"queue_id": queue_id, "kind": "trace", "id": "t-sum"})
    url = site.owner.get(f"{site.base}/annotation-queues/{queue_id}/review").headers["location"]
    r = site.owner.post(f"{url}/complete", {"config_id": [ids["correctness"], ids["manner"]],
                                            "value": ["0.5", "angry"]})
    assert r.status_code == 400 and "must be one of" in html.unescape(r.text)
    r = site.owner.post(f"{url}/complete", {"config_id": ["other"], "value": ["1"]})
    assert r.status_code == 404
    time.sleep(0.5)
    assert not list_scores_v2(site.olap, site.project_id, trace_id="t-sum", limit=10, fields="score")["data"]
    item = queue_items.list_items(site.services.sessions, project_id=site.project_id, queue_id=queue_id).data[0]
    assert item["status"] == "PENDING"


def test_two_reviewers_are_kept_apart(site: Site) -> None:
    ids = _configs(site)
    queue_id = _queue(site, ids)
    site.owner.post(f"{site.base}/annotation-queues/add", {"queue_id": queue_id,
                                                           "trace_id": ["t-chat-1", "t-chat-2", "t-chat-3"]})
    bob = site.add_member("bob@example.com", "MEMBER")
    owner_url = site.owner.get(f"{site.base}/annotation-queues/{queue_id}/review").headers["location"]
    bob_url = bob.get(f"{site.base}/annotation-queues/{queue_id}/review").headers["location"]
    assert owner_url != bob_url
    page = html.unescape(site.owner.get(f"{site.base}/annotation-queues/{queue_id}").text)
    # each holds one item: "in review" per reviewer (bob reviews without being assigned)
    assert re.search(r"Olive Owner</td><td class=\"num\">0</td><td class=\"num\">1<", page), page
    assert re.search(r"bob@example.com <span class=\"muted small\">\(not assigned\)</span></td>"
                     r"<td class=\"num\">0</td><td class=\"num\">1<", page), page
    # bob opening the owner's item sees it is taken, and cannot complete it
    page = html.unescape(bob.get(owner_url).text)
    assert "Olive Owner is reviewing this item" in page
    r = bob.post(f"{owner_url}/complete", {"config_id": [ids["correctness"]], "value": ["1"]})
    assert r.status_code == 409
    # bob skips to the third item, which frees his second; the owner skipping gets that one
    bob_third = bob.post(f"{bob_url}/skip").headers["location"]
    assert bob_third not in (owner_url, bob_url)
    assert site.owner.post(f"{owner_url}/skip").headers["location"] == bob_url
    # the owner's first item is free again: bob skipping wraps round to it
    assert bob.post(f"{bob_third}/skip").headers["location"] == owner_url


def test_viewer_sees_queues_but_cannot_annotate(site: Site) -> None:
    ids = _configs(site)
    queue_id = _queue(site, ids)
    site.owner.post(f"{site.base}/annotation-queues/add", {"queue_id": queue_id, "trace_id": ["t-chat-1"]})
    item_id = queue_items.list_items(site.services.sessions, project_id=site.project_id, queue_id=queue_id).data[0]["id"]
    viewer = site.add_member("viewer@example.com", "VIEWER")
    listing = viewer.get(f"{site.base}/annotation-queues")
    assert listing.status_code == 200 and "Support review" in listing.text and "New queue" not in listing.text
    assert ">Review<" not in listing.text
    page = viewer.get(f"{site.base}/annotation-queues/{queue_id}/review/{item_id}")
    assert page.status_code == 200 and "reviewing needs the Member role" in page.text
    assert "Complete &amp; next" not in page.text and "data-review-skip" not in page.text
    assert viewer.get(f"{site.base}/annotation-queues-control?kind=trace&id=t-chat-1").text == ""
    assert "annotation-queues-control?kind=traces" not in viewer.get(f"{site.base}/traces").text  # no queue bar
    for path, form in ((f"/annotation-queues/{queue_id}/review/{item_id}/complete",
                        {"config_id": [ids["correctness"]], "value": ["1"]}),
                       (f"/annotation-queues/{queue_id}/review/{item_id}/skip", {}),
                       ("/annotation-queues/add", {"queue_id": queue_id, "trace_id": ["t-sum"]}),
                       ("/annotation-queues/new", {"name": "x", "config_id": [ids["correctness"]]})):
        assert viewer.post(site.base + path, form).status_code == 403, path
    assert viewer.get(f"{site.base}/annotation-queues/{queue_id}/review").status_code == 403
    # and the item is still free and pending for a member
    item = queue_items.open_item(site.services.sessions, project_id=site.project_id, queue_id=queue_id,
                                 item_id=item_id, user_id=_user_id(site, "owner@example.com"))
    assert item.status == "PENDING" and item.locked_by is None


def test_an_item_whose_object_is_gone_can_be_skipped(site: Site) -> None:
    ids = _configs(site)
    queue_id = _queue(site, ids)
    queue_items.add_items(site.services.sessions, None, project_id=site.project_id, queue_id=queue_id,
                          object_type="TRACE", object_ids=["deleted-trace", "t-sum"])
    url = site.owner.get(f"{site.base}/annotation-queues/{queue_id}/review").headers["location"]
    page = site.owner.get(url)
    assert page.status_code == 200 and "Trace not found" in page.text and "data-review-skip" in page.text
    assert re.search(r'id="review-complete"[^>]*disabled', page.text)
    nxt = site.owner.post(f"{url}/skip").headers["location"]
    assert nxt != url
    assert "Trace not found" not in site.owner.get(nxt).text and "t-sum" in site.owner.get(nxt).text
