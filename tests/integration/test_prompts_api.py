"""The prompts API in-process (`/api/public/v2/prompts`), on the embedded and the scale-out stack:
versions, labels, tags, types, folders, composition, the server-side cache (in-process and Redis),
generation linking and per-version metrics."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langfuse.api.core.pydantic_utilities import parse_obj_as
from langfuse.api.prompts.types import Prompt as SdkPrompt
from langfuse.api.prompts.types import PromptMetaListResponse
from sqlalchemy import update

from conftest import create_project_key
from owlscope.app import create_app
from owlscope.ingestion.rows import ObservationEvent, ScoreEvent, observations_table, scores_table
from owlscope.prompts import (
    LocalPromptCache,
    PromptStore,
    RedisPromptCache,
    parse_create,
    prompt_store,
    prompt_version_metrics,
    resolve_prompt_ids,
)
from owlscope.storage.oltp.prompt_models import Prompt

BASE = "/api/public/v2/prompts"


class Api:
    def __init__(self, client: TestClient, key: dict):
        self.client = client
        self.key = key
        token = base64.b64encode(f"{key['public_key']}:{key['secret_key']}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}

    @property
    def services(self):
        return self.client.app.state.services

    def request(self, method: str, path: str, headers: dict | None = None, **kw: Any):
        return self.client.request(method, path, headers={**self.headers, **(headers or {})}, **kw)

    def create(self, expect: int = 200, **body: Any) -> dict:
        r = self.request("POST", BASE, json=body)
        assert r.status_code == expect, r.text
        return r.json()

    def get(self, name: str, expect: int = 200, **params: Any) -> dict:
        from urllib.parse import quote

        r = self.request("GET", f"{BASE}/{quote(name, safe='')}", params=params)
        assert r.status_code == expect, r.text
        assert r.headers["content-type"].startswith("application/json")
        return r.json()

    def patch(self, name: str, version: int, labels: list[str], expect: int = 200) -> dict:
        from urllib.parse import quote

        r = self.request("PATCH", f"{BASE}/{quote(name, safe='')}/versions/{version}", json={"newLabels": labels})
        assert r.status_code == expect, r.text
        return r.json()

    def delete(self, name: str, expect: int = 204, **params: Any):
        from urllib.parse import quote

        r = self.request("DELETE", f"{BASE}/{quote(name, safe='')}", params=params)
        assert r.status_code == expect, r.text
        return r

    def list(self, **params: Any) -> dict:
        r = self.request("GET", BASE, params=params)
        assert r.status_code == 200, r.text
        parse_obj_as(PromptMetaListResponse, r.json())
        return r.json()


@pytest.fixture
def api(make_settings) -> Iterator[Api]:
    with TestClient(create_app(make_settings("embedded"), run_worker=False)) as client:
        yield Api(client, create_project_key(client.app.state.services))


@pytest.fixture
def any_api(make_settings, stack) -> Iterator[Api]:
    with TestClient(create_app(make_settings(stack), run_worker=False)) as client:
        yield Api(client, create_project_key(client.app.state.services))


def _error(r, status: int, contains: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"message", "error"} and contains in body["message"], body


# ---- versions, labels, tags, types ----------------------------------------------------------------


def test_create_and_get_text_and_chat_prompts(any_api: Api) -> None:
    t = any_api.create(name="team/summarize", prompt="Summarize {{text}}", config={"temperature": 0.1},
                       labels=["production"], tags=["t1"], commitMessage="init")
    assert (t["name"], t["version"], t["type"], t["labels"], t["tags"], t["commitMessage"]) == (
        "team/summarize", 1, "text", ["production", "latest"], ["t1"], "init")
    parse_obj_as(SdkPrompt, t)

    c = any_api.create(name="chat", type="chat", labels=["production"], prompt=[
        {"role": "system", "content": "You are {{who}}"}, {"type": "placeholder", "name": "history"}])
    assert c["type"] == "chat" and c["prompt"][1] == {"type": "placeholder", "name": "history"}
    assert c["config"] == {} and c["tags"] == [] and c["commitMessage"] is None

    got = any_api.get("team/summarize")  # neither version nor label: production
    assert got["prompt"] == "Summarize {{text}}" and got["config"] == {"temperature": 0.1}
    assert got["resolutionGraph"] is None
    assert parse_obj_as(SdkPrompt, got).type == "text"
    assert parse_obj_as(SdkPrompt, any_api.get("chat", version=1)).type == "chat"
    assert any_api.get("team/summarize", label="latest")["version"] == 1

    _error(any_api.request("GET", f"{BASE}/missing"), 404, "not found")
    assert any_api.request("GET", f"{BASE}/missing").json()["error"] == "LangfuseNotFoundError"
    _error(any_api.request("GET", f"{BASE}/chat", params={"label": "staging"}), 404, "label 'staging'")
    _error(any_api.request("GET", f"{BASE}/chat", params={"version": 1, "label": "x"}), 400, "not both")
    _error(any_api.request("GET", f"{BASE}/chat", params={"version": "one"}), 400, "version")


def test_labels_move_latest_follows_the_newest_version(api: Api) -> None:
    api.create(name="p", prompt="v1", labels=["production", "staging"])
    v2 = api.create(name="p", prompt="v2", labels=["staging"])
    assert v2["version"] == 2 and v2["labels"] == ["staging", "latest"]
    v1 = api.get("p", version=1)
    assert v1["labels"] == ["production"]  # staging and latest moved to v2
    assert api.get("p")["version"] == 1 and api.get("p", label="latest")["version"] == 2

    moved = api.patch("p", 2, ["production"])
    assert moved["labels"] == ["staging", "latest", "production"]  # PATCH adds labels
    assert api.get("p", version=1)["labels"] == []
    assert api.get("p")["prompt"] == "v2"

    _error(api.request("PATCH", f"{BASE}/p/versions/1", json={"newLabels": ["latest"]}), 400, "'latest'")
    _error(api.request("PATCH", f"{BASE}/p/versions/1", json={"newLabels": ["Prod"]}), 400, "lowercase")
    _error(api.request("PATCH", f"{BASE}/p/versions/1", json={"labels": ["x"]}), 400, "newLabels")
    _error(api.request("PATCH", f"{BASE}/p/versions/9", json={"newLabels": ["x"]}), 404, "version 9")
    _error(api.request("POST", BASE, json={"name": "p", "prompt": "x", "labels": ["latest"]}), 400, "'latest'")
    assert api.get("p", version=1)["labels"] == []  # the rejected requests changed nothing

    store = prompt_store(api.services)  # the UI can set the exact list; latest stays managed
    exact = store.update_labels(api.key["project_id"], "p", 2, ["canary"], replace=True)
    assert exact["labels"] == ["latest", "canary"]


def test_tags_are_shared_by_all_versions(api: Api) -> None:
    api.create(name="p", prompt="v1", tags=["a"])
    assert api.create(name="p", prompt="v2")["tags"] == ["a"]  # no tags given: inherited
    api.create(name="p", prompt="v3", tags=["b", "c", "b"])
    for v in (1, 2, 3):
        assert api.get("p", version=v)["tags"] == ["b", "c"]


def test_type_is_fixed_by_the_first_version(api: Api) -> None:
    api.create(name="p", prompt="text")
    r = api.request("POST", BASE, json={"name": "p", "type": "chat", "prompt": [{"role": "user", "content": "x"}]})
    _error(r, 400, "is a text prompt")
    assert api.list(name="p")["data"][0]["versions"] == [1]


@pytest.mark.parametrize("body, message", [
    ({"name": "/lead", "prompt": "x"}, "start or end with '/'"),
    ({"name": "trail/", "prompt": "x"}, "start or end with '/'"),
    ({"name": "a//b", "prompt": "x"}, "empty folder"),
    ({"name": "new", "prompt": "x"}, "reserved"),
    ({"name": "p", "prompt": "x", "labels": ["Has Space"]}, "lowercase"),
    ({"name": "p", "prompt": 3}, "must be a string"),
    ({"name": "p", "type": "chat", "prompt": [{"role": "user", "content": 1}]}, "content"),
])
def test_invalid_input_is_a_clear_400_and_writes_nothing(api: Api, body: dict, message: str) -> None:
    _error(api.request("POST", BASE, json=body), 400, message)
    assert api.list()["data"] == []


def test_malformed_bodies_are_400_not_500(api: Api) -> None:
    r = api.request("POST", BASE, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    _error(api.request("POST", BASE, json=["x"]), 400, "JSON object")
    r = api.request("PATCH", f"{BASE}/p/versions/1", content=b"[", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert api.client.get(BASE).status_code == 401


# ---- folders and routing --------------------------------------------------------------------------


def test_folder_names_and_names_that_look_like_routes(api: Api) -> None:
    api.create(name="team/summarize", prompt="folder", labels=["production"])
    api.create(name="a/versions/2", prompt="tricky", labels=["production"])
    r = api.request("GET", f"{BASE}/team%2Fsummarize")
    assert r.status_code == 200 and r.json()["name"] == "team/summarize"
    assert api.get("a/versions/2")["prompt"] == "tricky"
    assert api.patch("a/versions/2", 1, ["staging"])["labels"] == ["production", "latest", "staging"]
    assert api.patch("team/summarize", 1, ["staging"])["name"] == "team/summarize"
    api.delete("a/versions/2", version=1)
    api.get("a/versions/2", expect=404)
    assert api.get("team/summarize")["prompt"] == "folder"


# ---- list and delete ------------------------------------------------------------------------------


def test_list_filters_and_pages(api: Api) -> None:
    api.create(name="b/one", prompt="1", labels=["production"], tags=["x"], config={"m": 1})
    api.create(name="b/one", prompt="2", config={"m": 2})
    api.create(name="a", prompt="a", tags=["y"])
    api.create(name="c", type="chat", prompt=[{"role": "user", "content": "c"}], labels=["staging"])

    page = api.list()
    assert [d["name"] for d in page["data"]] == ["a", "b/one", "c"]
    one = page["data"][1]
    assert (one["type"], one["versions"], one["labels"], one["tags"], one["lastConfig"]) == (
        "text", [1, 2], ["latest", "production"], ["x"], {"m": 2})
    assert page["meta"] == {"page": 1, "limit": 50, "totalItems": 3, "totalPages": 1}

    prod = api.list(label="production")["data"]
    assert [(d["name"], d["versions"], d["lastConfig"]) for d in prod] == [("b/one", [1], {"m": 1})]
    assert [d["name"] for d in api.list(tag="y")["data"]] == ["a"]
    assert [d["name"] for d in api.list(name="c")["data"]] == ["c"]
    assert api.list(name="c")["data"][0]["type"] == "chat"

    p2 = api.list(limit=2, page=2)
    assert [d["name"] for d in p2["data"]] == ["c"] and p2["meta"]["totalPages"] == 2

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert api.list(fromUpdatedAt=future)["data"] == []
    assert len(api.list(fromUpdatedAt=past, toUpdatedAt=future)["data"]) == 3
    assert api.list(toUpdatedAt=past)["data"] == []
    _error(api.request("GET", BASE, params={"limit": 0}), 400, "limit")
    _error(api.request("GET", BASE, params={"page": 0}), 400, "page")


def test_delete_all_one_version_or_one_label(api: Api) -> None:
    for i in range(1, 4):
        api.create(name="p", prompt=f"v{i}", labels=["production"] if i == 1 else [])
    api.delete("p", version=3)  # the newest: latest moves to v2
    assert api.get("p", label="latest")["version"] == 2
    api.delete("p", label="production")
    assert api.list(name="p")["data"][0]["versions"] == [2]
    api.delete("p", expect=404, version=7)
    api.delete("p", expect=404, label="staging")
    api.delete("p", expect=400, version=2, label="latest")
    api.delete("p")
    api.get("p", label="latest", expect=404)
    api.delete("p", expect=404)
    assert api.create(name="p", prompt="again")["version"] == 1


# ---- composition ----------------------------------------------------------------------------------


def test_composition_resolves_on_fetch_and_resolve_false_returns_raw(api: Api) -> None:
    base = api.create(name="shared/tone", prompt="Be kind.", labels=["production"])
    raw = "Hi. @@@langfusePrompt:name=shared/tone|label=production@@@ {{q}}"
    root = api.create(name="root", prompt=raw, labels=["production"])
    got = api.get("root")
    assert got["prompt"] == "Hi. Be kind. {{q}}"
    assert got["resolutionGraph"] == {
        "root": {"id": root["id"], "name": "root", "version": 1},
        "dependencies": {root["id"]: [{"id": base["id"], "name": "shared/tone", "version": 1}]},
    }
    assert api.get("root", resolve="false")["prompt"] == raw
    assert api.get("root", resolve="false")["resolutionGraph"] is None

    chat = api.create(name="chat", type="chat", labels=["production"], prompt=[
        {"role": "system", "content": "@@@langfusePrompt:name=shared/tone|version=1@@@"},
        {"type": "placeholder", "name": "history"}])
    assert api.get("chat")["prompt"] == [{"role": "system", "content": "Be kind."},
                                         {"type": "placeholder", "name": "history"}]
    assert chat["prompt"][0]["content"].startswith("@@@")

    api.create(name="shared/tone", prompt="Be terse.", labels=["production"])  # the label moves
    assert api.get("root")["prompt"] == "Hi. Be terse. {{q}}"
    assert api.get("chat")["prompt"][0]["content"] == "Be kind."  # pinned to version 1


def test_missing_dependency_and_cycle_are_clear_400s(api: Api) -> None:
    r = api.request("POST", BASE, json={"name": "x", "prompt": "@@@langfusePrompt:name=ghost|label=production@@@"})
    _error(r, 400, "'ghost' label 'production'")
    assert api.list()["data"] == []  # nothing written

    api.create(name="a", prompt="A", labels=["production"])
    api.create(name="b", prompt="B(@@@langfusePrompt:name=a|label=production@@@)", labels=["production"])
    r = api.request("POST", BASE, json={"name": "a", "prompt": "A(@@@langfusePrompt:name=b|label=production@@@)",
                                        "labels": ["production"]})
    _error(r, 400, "Circular prompt reference")
    # A cycle can still arise by moving labels onto versions that were valid when created.
    api.create(name="b", prompt="plain", labels=["staging"])  # b v2
    api.create(name="a", prompt="A(@@@langfusePrompt:name=b|label=staging@@@)")  # a v2 -> b v2
    api.patch("b", 1, ["staging"])  # a v2 -> b v1 -> a v1: a name may appear once on a chain
    _error(api.request("GET", f"{BASE}/a", params={"version": 2}), 400, "a v2 -> b v1 -> a v1")
    assert api.get("b")["prompt"] == "B(A)"  # b v1 -> a v1 (production) is still fine
    api.patch("a", 2, ["production"])  # b v1 -> a v2 -> b v1
    _error(api.request("GET", f"{BASE}/b"), 400, "Circular prompt reference: b v1 -> a v2 -> b v1")
    assert api.get("b", resolve="false")["prompt"].startswith("B(")

    api.create(name="c", prompt="C(@@@langfusePrompt:name=a|version=1@@@)", labels=["production"])
    assert api.get("c")["prompt"] == "C(A)"
    api.delete("a")
    _error(api.request("GET", f"{BASE}/c"), 400, "'a' version 1, which does not exist")


# ---- the cache ------------------------------------------------------------------------------------


def _write_behind_the_store(api: Api, name: str, prompt: str) -> None:
    with api.services.sessions.begin() as s:
        s.execute(update(Prompt).where(Prompt.project_id == api.key["project_id"], Prompt.name == name)
                  .values(prompt=prompt))


def test_fetch_by_label_is_served_from_the_cache_and_any_change_invalidates_it(any_api: Api) -> None:
    any_api.create(name="p", prompt="one", labels=["production"])
    any_api.create(name="other", prompt="o", labels=["production"])
    assert any_api.get("p")["prompt"] == "one"
    _write_behind_the_store(any_api, "p", "changed behind the store's back")
    assert any_api.get("p")["prompt"] == "one"  # from the cache
    assert any_api.get("p", resolve="false")["prompt"].startswith("changed")  # resolve=false bypasses it

    any_api.patch("other", 1, ["staging"])  # any change to the project's prompts invalidates
    assert any_api.get("p")["prompt"].startswith("changed")
    any_api.create(name="p", prompt="two", labels=["production"])
    assert any_api.get("p")["prompt"] == "two"
    any_api.delete("p", version=2)
    assert any_api.get("p", label="latest")["version"] == 1


def test_redis_cache_invalidates_across_processes(make_settings, redis_url: str) -> None:
    """Two stores over one database and one Redis stand for two web processes."""
    with TestClient(create_app(make_settings("embedded"), run_worker=False)) as client:
        services = client.app.state.services
        project = create_project_key(services)["project_id"]
        a = PromptStore(services.sessions, RedisPromptCache(redis_url))
        b = PromptStore(services.sessions, RedisPromptCache(redis_url))
        a.create(project, parse_create({"name": "p", "prompt": "v1", "labels": ["production"]}))
        assert b"v1" in a.get_json(project, "p") and b"v1" in b.get_json(project, "p")
        gen = a.cache.generation(project)
        assert a.cache.get(project, "p\x00lproduction")[0] is not None  # cached in Redis

        b.create(project, parse_create({"name": "p", "prompt": "v2", "labels": ["production"]}))
        assert a.cache.generation(project) == gen + 1
        assert b'"v2"' in a.get_json(project, "p")


def test_unreachable_redis_falls_back_to_the_database(make_settings) -> None:
    with TestClient(create_app(make_settings("embedded"), run_worker=False)) as client:
        services = client.app.state.services
        project = create_project_key(services)["project_id"]
        store = PromptStore(services.sessions, RedisPromptCache("redis://127.0.0.1:9/0"))
        store.create(project, parse_create({"name": "p", "prompt": "v1", "labels": ["production"]}))
        assert b'"v1"' in store.get_json(project, "p")


def test_local_cache_never_stores_what_was_read_before_a_change() -> None:
    cache = LocalPromptCache(max_entries=2)
    value, gen = cache.get("p1", "k")
    assert value is None
    cache.invalidate("p1")  # a write lands between the read and the store
    cache.set("p1", gen, "k", b"stale")
    assert cache.get("p1", "k")[0] is None
    value, gen = cache.get("p1", "k")
    cache.set("p1", gen, "k", b"fresh")
    assert cache.get("p1", "k")[0] == b"fresh"
    for i in range(3):  # bounded
        cache.set("p2", 0, f"k{i}", b"x")
    assert cache.get("p1", "k")[0] is None and cache.get("p2", "k2")[0] == b"x"


# ---- concurrency ----------------------------------------------------------------------------------


def test_concurrent_creates_get_distinct_versions_and_one_production(any_api: Api) -> None:
    store = prompt_store(any_api.services)
    project = any_api.key["project_id"]
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            store.create(project, parse_create({"name": "race", "prompt": f"w{i}", "labels": ["production"]}))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    versions = store.versions(project, "race")
    assert sorted(v["version"] for v in versions) == list(range(1, 9))
    assert sum("production" in v["labels"] for v in versions) == 1
    assert sum("latest" in v["labels"] for v in versions) == 1
    assert "latest" in versions[0]["labels"] and versions[0]["version"] == 8


# ---- linking and metrics --------------------------------------------------------------------------


def test_resolve_prompt_ids_links_exact_versions(api: Api) -> None:
    sessions, project = api.services.sessions, api.key["project_id"]
    v1 = api.create(name="p", prompt="1")
    v2 = api.create(name="p", prompt="2")
    found = resolve_prompt_ids(sessions, project, {("p", 1), ("p", 2), ("p", 3), ("q", 1)})
    assert found == {("p", 1): v1["id"], ("p", 2): v2["id"]}
    assert resolve_prompt_ids(sessions, "another-project", {("p", 1)}) == {}

    api.delete("p", version=2)  # writes forget the cached ids at once
    v2b = api.create(name="p", prompt="2 again")
    assert resolve_prompt_ids(sessions, project, {("p", 2)}) == {("p", 2): v2b["id"]}


def test_prompt_version_metrics_from_observations_and_scores(api: Api) -> None:
    olap, project = api.services.olap, api.key["project_id"]
    t0 = datetime(2026, 3, 1, tzinfo=UTC)

    def gen(oid: str, trace: str, version: int, seconds: float, usage: dict, cost: float | None,
            name: str = "p") -> list[ObservationEvent]:
        create = ObservationEvent(project, oid, trace, t0, type="GENERATION", start_time=t0,
                                  prompt_name=name, prompt_version=version)
        done = ObservationEvent(project, oid, trace, t0 + timedelta(seconds=seconds),
                                end_time=t0 + timedelta(seconds=seconds), usage_details=usage,
                                cost_details={"total": cost} if cost is not None else None)
        return [create, done]

    rows = [
        *gen("g1", "t1", 1, 1.0, {"input": 10, "output": 5}, 0.01),
        *gen("g2", "t1", 1, 3.0, {"input": 20, "output": 7}, 0.02),
        *gen("g3", "t2", 1, 2.0, {"input": 30, "output": 9}, 0.03),
        *gen("g4", "t3", 2, 4.0, {"input": 1, "output": 1}, None),
        *gen("g5", "t3", 1, 1.0, {"input": 1}, 0.5, name="other"),
        ObservationEvent(project, "s1", "t1", t0, type="SPAN", start_time=t0),
    ]
    olap.insert_arrow("observation_events", observations_table(rows))

    def score(sid: str, name: str, value: float, trace: str, obs: str | None = None, dtype: str = "NUMERIC"):
        return ScoreEvent(project, sid, t0, t0, name, dtype, value=value, trace_id=trace, observation_id=obs)

    olap.insert_arrow("scores", scores_table([
        score("sc1", "quality", 0.2, "t1", "g1"),
        score("sc1", "quality", 1.0, "t1", "g1"),  # a later version of the same score: FINAL keeps one
        score("sc2", "quality", 0.5, "t2", "g3"),
        score("sc3", "helpful", 1.0, "t1"),  # trace-level: counts once for version 1
        score("sc4", "helpful", 0.0, "t3"),  # trace t3 holds version 2 (and another prompt)
        score("sc5", "label", 0.0, "t1", dtype="CATEGORICAL"),
    ]))
    # The later score version must win: give it a later event time.
    olap.insert_arrow("scores", scores_table([
        ScoreEvent(project, "sc1", t0 + timedelta(seconds=5), t0, "quality", "NUMERIC", value=1.0,
                   trace_id="t1", observation_id="g1"),
    ]))

    metrics = prompt_version_metrics(olap, project, "p")
    assert [m["version"] for m in metrics] == [2, 1]
    v2, v1 = metrics
    assert (v1["generations"], v1["median_latency"], v1["input_tokens"], v1["output_tokens"]) == (3, 2.0, 60, 21)
    assert v1["total_cost"] == pytest.approx(0.06)
    assert v1["scores"] == {"quality": pytest.approx(0.75), "helpful": 1.0}
    assert (v2["generations"], v2["median_latency"], v2["total_cost"]) == (1, 4.0, None)
    assert v2["scores"] == {"helpful": 0.0}
    assert prompt_version_metrics(olap, project, "nothing") == []
    assert prompt_version_metrics(olap, "another-project", "p") == []
