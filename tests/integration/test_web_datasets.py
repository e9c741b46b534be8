"""The dataset pages in-process: create (with JSON schemas), items (add, edit, archive, delete),
CSV and JSON uploads with a column mapping, "add to dataset" from a trace or observation and from
many traces, the runs table and the comparison of runs, prompt experiments started from the form,
and who may change what."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_web_prompts import Team, make_team, text_of

from owlscope.app import create_app
from owlscope.datasets.items import get_item, list_items, upsert_item
from owlscope.datasets.prompt_experiment import prompt_experiment_status, run_prompt_experiment_job
from owlscope.datasets.runs import ensure_run, get_run, record_run_item
from owlscope.datasets.store import create_dataset, get_dataset, list_datasets
from owlscope.errors import NotFound
from owlscope.ingestion.rows import (
    ObservationEvent,
    ScoreEvent,
    TraceEvent,
    observations_table,
    scores_table,
    traces_table,
)
from owlscope.prompts import parse_create, prompt_store
from owlscope.storage.oltp.db import write_transaction
from support.fake_openai import FakeOpenAI


@pytest.fixture
def team(stack: str, make_settings) -> Iterator[Team]:
    app = create_app(make_settings(stack), run_worker=False)
    with TestClient(app):
        yield make_team(app)


@pytest.fixture
def stack() -> str:  # most tests run on the embedded engines; see test_datasets_on_both_stacks
    return "embedded"


def _dataset(team: Team, name: str = "qa", **kwargs: Any) -> dict[str, Any]:
    return create_dataset(team.services.sessions, project_id=team.project_id, name=name, **kwargs)


def _items(team: Team, name: str = "qa", status: str | None = None) -> list[dict[str, Any]]:
    return list_items(team.services.sessions, project_id=team.project_id, dataset_name=name, status=status)[0]


def _trace(team: Team, trace_id: str, *, input: Any, output: Any, start: datetime | None = None,
           observations: list[ObservationEvent] = ()) -> None:
    start = start or datetime.now(UTC)
    olap = team.services.olap
    olap.insert_arrow("trace_events", traces_table([TraceEvent(
        team.project_id, trace_id, start, timestamp=start, name="chat", input=json.dumps(input),
        output=json.dumps(output))]))
    if observations:
        olap.insert_arrow("observation_events", observations_table(list(observations)))


# ---- datasets ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", ["embedded", "scaleout"])
def test_create_dataset_with_schemas_and_upload_csv(team: Team) -> None:
    owner = team.users["OWNER"]
    assert "No datasets yet" in text_of(owner.get(team.url("/datasets")))
    schema = '{"type": "object", "required": ["question"]}'
    r = owner.post(team.url("/datasets/new"), {"name": "golden", "description": "Golden answers",
                                                "input_schema": schema, "metadata": '{"owner": "qa"}'})
    assert r.status_code == 303
    ds = get_dataset(team.services.sessions, project_id=team.project_id, name="golden")
    assert r.headers["location"] == team.url(f"/datasets/{ds['id']}")
    assert ds["inputSchema"] == {"type": "object", "required": ["question"]} and ds["metadata"] == {"owner": "qa"}

    for form, message in [
        ({"name": "bad", "input_schema": '{"type": "object",'}, "Input schema is not valid JSON"),
        ({"name": "bad", "expected_output_schema": '{"type": 5}'}, "is not a valid JSON Schema"),
        ({"name": "bad", "input_schema": "[1]"}, "must be a JSON object"),
        ({"name": "golden"}, "already exists"),
        ({"name": "  "}, "Give the dataset a name"),
    ]:
        r = owner.post(team.url("/datasets/new"), form)
        assert r.status_code == 400 and message in text_of(r), (form, text_of(r)[-400:])
    names = [d["name"] for d in list_datasets(team.services.sessions, project_id=team.project_id)[0]]
    assert names == ["golden"]

    # upload a CSV: step 1 reads the columns, step 2 maps them
    csv = b"question,context,answer,level\nCapital of France?,geo,Paris,1\nCapital of Peru?,geo,Lima,2\n"
    r = owner.client.post(team.url(f"/datasets/{ds['id']}/upload"), data={"csrf_token": owner.csrf()},
                          files={"file": ("capitals.csv", csv, "text/csv")})
    assert r.status_code == 200, text_of(r)[-500:]
    upload_id = re.search(r"/upload/([0-9a-f]{32})", r.text).group(1)
    assert "has 2 rows and 4 columns" in text_of(r) and "Paris" in r.text
    # one column gives its value: a string input does not match the schema, and nothing is added
    r = owner.post(team.url(f"/datasets/{ds['id']}/upload/{upload_id}"),
                   {"column": ["input", "ignore", "expectedOutput", "ignore"], "filename": "capitals.csv"})
    assert r.status_code == 400 and "row 1: dataset item" in text_of(r) and "does not match the JSON Schema" in text_of(r)
    assert _items(team, "golden") == []
    r = owner.post(team.url(f"/datasets/{ds['id']}/upload/{upload_id}"), {"column": ["ignore"] * 4})
    assert r.status_code == 400 and "Map at least one column to input" in text_of(r)
    # several columns give an object of them; CSV cells holding JSON (numbers here) are parsed
    r = owner.post(team.url(f"/datasets/{ds['id']}/upload/{upload_id}"),
                   {"column": ["input", "input", "expectedOutput", "metadata"], "filename": "capitals.csv"})
    assert r.status_code == 303
    items = sorted(_items(team, "golden"), key=lambda i: i["expectedOutput"])
    assert [(i["input"], i["expectedOutput"], i["metadata"]) for i in items] == [
        ({"question": "Capital of Peru?", "context": "geo"}, "Lima", 2),
        ({"question": "Capital of France?", "context": "geo"}, "Paris", 1)]
    # the upload is gone once imported
    r = owner.post(team.url(f"/datasets/{ds['id']}/upload/{upload_id}"), {"column": ["input"] * 4})
    assert r.status_code == 404

    page = owner.get(team.url(f"/datasets/{ds['id']}"))
    assert "Capital of Peru?" in text_of(page)
    assert '<span class="ds-stat-value">2</span><span class="ds-stat-label">active items' in page.text
    listing = text_of(owner.get(team.url("/datasets")))
    assert "golden" in listing and "Golden answers" in listing and "schema" in listing


def test_json_upload_and_unreadable_files(team: Team) -> None:
    ds = _dataset(team)
    owner = team.users["OWNER"]

    def upload(name: str, body: bytes) -> Any:
        return owner.client.post(team.url(f"/datasets/{ds['id']}/upload"), data={"csrf_token": owner.csrf()},
                                 files={"file": (name, body, "application/octet-stream")})

    records = [{"input": {"q": "one"}, "expected_output": "1", "source": "a"},
               {"input": {"q": "two"}, "expected_output": "2", "source": "b"}]
    r = upload("items.json", json.dumps(records).encode())
    assert r.status_code == 200
    # columns named like item fields are mapped to them by default
    selected = re.findall(r'<option value="(\w+)" selected>', r.text)
    assert selected == ["input", "expectedOutput", "ignore"]
    upload_id = re.search(r"/upload/([0-9a-f]{32})", r.text).group(1)
    r = owner.post(team.url(f"/datasets/{ds['id']}/upload/{upload_id}"), {"column": selected})
    assert r.status_code == 303
    assert sorted((i["input"]["q"], i["expectedOutput"]) for i in _items(team)) == [("one", "1"), ("two", "2")]

    assert upload("empty.csv", b"").status_code == 400
    bad = upload("bad.json", b'[{"a": 1}, 5]')
    assert bad.status_code == 400 and "must be an object" in text_of(bad)
    latin = upload("latin.csv", "q\ncafé\n".encode("latin-1"))
    assert latin.status_code == 400 and "not UTF-8" in text_of(latin)
    r = owner.post(team.url(f"/datasets/{ds['id']}/upload/{'0' * 32}"), {"column": ["input"]})
    assert r.status_code == 404


def test_items_add_edit_archive_delete(team: Team) -> None:
    ds = _dataset(team, expected_output_schema={"type": "string"})
    member = team.users["MEMBER"]
    base = team.url(f"/datasets/{ds['id']}")

    r = member.post(f"{base}/items/save", {"input": '{"question": "2+2?"}', "expected_output": '"4"',
                                           "metadata": '{"level": 1}'})
    assert r.status_code == 303
    (item,) = _items(team)
    assert (item["input"], item["expectedOutput"], item["metadata"]) == ({"question": "2+2?"}, "4", {"level": 1})

    r = member.post(f"{base}/items/save", {"input": '{"question": ', "expected_output": "x"})
    assert r.status_code == 400 and "Input is not valid JSON" in text_of(r)
    r = member.post(f"{base}/items/save", {"input": "plain text question", "expected_output": "four"})
    assert r.status_code == 303  # plain text is stored as a string
    r = member.post(f"{base}/items/save", {"input": "q", "expected_output": "4"})  # a JSON number
    assert r.status_code == 400 and "4 is not of type 'string'" in text_of(r)
    r = member.post(f"{base}/items/save", {"input": "q", "expected_output": "[1, 2]"})
    assert r.status_code == 400 and "does not match the JSON Schema" in text_of(r)
    assert len(_items(team)) == 2

    form = member.get(f"{base}/items/edit", params={"id": item["id"]})
    assert form.status_code == 200 and "2+2?" in html.unescape(form.text)
    assert '>"4"</textarea>' in html.unescape(form.text)  # the string "4", shown so that it stays a string
    r = member.post(f"{base}/items/save", {"item_id": item["id"], "input": '{"question": "3+3?"}',
                                           "expected_output": '"6"'})
    assert r.status_code == 303
    edited = get_item(team.services.sessions, project_id=team.project_id, item_id=item["id"])
    assert (edited["input"], edited["expectedOutput"], edited["metadata"]) == ({"question": "3+3?"}, "6", {"level": 1})

    r = member.post(f"{base}/items/archive", {"item_id": item["id"], "next": f"{base}?status=active"})
    assert r.status_code == 303 and r.headers["location"] == f"{base}?status=active"
    assert [i["id"] for i in _items(team, status="ARCHIVED")] == [item["id"]]
    active_page = member.get(base)
    assert item["id"] not in active_page.text
    archived_page = member.get(base, params={"status": "archived"})
    assert item["id"] in archived_page.text and "Restore" in archived_page.text
    member.post(f"{base}/items/archive", {"item_id": item["id"], "archived": "0"})
    assert _items(team, status="ARCHIVED") == []

    r = member.post(f"{base}/items/delete", {"item_id": item["id"], "next": "https://evil.example/"})
    assert r.status_code == 303 and r.headers["location"] == base
    with pytest.raises(NotFound):
        get_item(team.services.sessions, project_id=team.project_id, item_id=item["id"])
    # an item of another dataset cannot be changed through this one
    other = _dataset(team, "other")
    foreign = upsert_item(team.services.sessions, masker=None, project_id=team.project_id, dataset_name="other", input="x")
    assert member.post(f"{base}/items/delete", {"item_id": foreign["id"]}).status_code == 404
    assert member.get(team.url(f"/datasets/{other['id']}/items/edit"), params={"id": foreign["id"]}).status_code == 200


def test_viewer_cannot_change_datasets(team: Team) -> None:
    ds = _dataset(team)
    item = upsert_item(team.services.sessions, masker=None, project_id=team.project_id, dataset_name="qa", input={"q": 1})
    viewer = team.users["VIEWER"]
    base = team.url(f"/datasets/{ds['id']}")
    assert viewer.get(base).status_code == 200 and "Add item" not in viewer.get(base).text
    for path, form in [
        ("/datasets/new", {"name": "x"}), (f"/datasets/{ds['id']}/items/save", {"input": "y"}),
        (f"/datasets/{ds['id']}/items/archive", {"item_id": item["id"]}),
        (f"/datasets/{ds['id']}/items/delete", {"item_id": item["id"]}),
        (f"/datasets/{ds['id']}/settings", {"name": "renamed"}),
        (f"/datasets/{ds['id']}/delete", {"confirm_name": "qa"}),
        ("/datasets/add-from-traces", {"trace_ids": "t1", "dataset_id": ds["id"]}),
    ]:
        assert viewer.post(team.url(path), form).status_code == 403, path
    assert viewer.get(team.url("/datasets/new")).status_code == 403
    assert [i["status"] for i in _items(team)] == ["ACTIVE"]

    member = team.users["MEMBER"]
    assert member.post(team.url(f"/datasets/{ds['id']}/settings"), {"name": "renamed", "description": "d"}
                       ).status_code == 303
    assert get_dataset(team.services.sessions, project_id=team.project_id, name="renamed")["description"] == "d"
    r = member.post(team.url(f"/datasets/{ds['id']}/delete"), {"confirm_name": "qa"})
    assert r.status_code == 400 and "Type the dataset's name" in text_of(r)
    assert member.post(team.url(f"/datasets/{ds['id']}/delete"), {"confirm_name": "renamed"}).status_code == 303
    assert member.get(base).status_code == 404


# ---- add from tracing -----------------------------------------------------------------------------------
def test_add_from_trace_and_observation(team: Team) -> None:
    ds = _dataset(team)
    now = datetime.now(UTC)
    _trace(team, "t-1", input={"question": "hi"}, output="hello there", observations=[ObservationEvent(
        team.project_id, "obs-1", "t-1", now, type="GENERATION", name="llm", start_time=now,
        input=json.dumps([{"role": "user", "content": "hi"}]),
        output=json.dumps({"role": "assistant", "content": "hello"}))])
    member = team.users["MEMBER"]

    dialog = member.get(team.url("/datasets/add-from-trace"), params={"trace_id": "t-1", "observation_id": "obs-1"},
                        headers={"HX-Request": "true"})
    assert dialog.status_code == 200 and '<dialog open class="owl-dialog"' in dialog.text
    assert "<html" not in dialog.text  # the dialog alone, for htmx to append
    assert '"content": "hello"' in html.unescape(dialog.text)  # the output, as the expected output
    assert f'<option value="{ds["id"]}"' in dialog.text

    r = member.post(team.url("/datasets/add-from-trace"), {
        "trace_id": "t-1", "observation_id": "obs-1", "dataset_id": ds["id"],
        "input": '[{"role": "user", "content": "hi"}]', "expected_output": "hello (edited)"}, htmx=True)
    assert r.status_code == 200 and "Added 1 item to dataset qa" in text_of(r)
    (item,) = _items(team)
    assert item["input"] == [{"role": "user", "content": "hi"}] and item["expectedOutput"] == "hello (edited)"
    assert (item["sourceTraceId"], item["sourceObservationId"]) == ("t-1", "obs-1")
    page = member.get(team.url(f"/datasets/{ds['id']}"))
    assert f'href="/project/{team.project_id}/traces/t-1?observation=obs-1"' in page.text

    # the whole trace, without htmx: a page, then a redirect to `next`
    full = member.get(team.url("/datasets/add-from-trace"), params={"trace_id": "t-1", "next": "/elsewhere"})
    assert "<html" in full.text and "hello there" in full.text
    r = member.post(team.url("/datasets/add-from-trace"), {
        "trace_id": "t-1", "new_dataset": "fresh", "input": '{"question": "hi"}', "expected_output": "hello there",
        "next": team.url("/traces/t-1")})
    assert r.status_code == 303 and r.headers["location"] == team.url("/traces/t-1")
    (fresh,) = _items(team, "fresh")
    assert fresh["sourceTraceId"] == "t-1" and fresh["sourceObservationId"] is None

    # errors keep the dialog open with what was typed; nothing is written
    r = member.post(team.url("/datasets/add-from-trace"), {"trace_id": "t-1", "input": "x"}, htmx=True)
    assert r.status_code == 400 and "Choose a dataset" in text_of(r) and "<dialog" in r.text
    r = member.post(team.url("/datasets/add-from-trace"), {"trace_id": "t-1", "dataset_id": ds["id"],
                                                           "input": "{broken"}, htmx=True)
    assert r.status_code == 400 and "Input is not valid JSON" in text_of(r) and "{broken" in html.unescape(r.text)
    assert member.get(team.url("/datasets/add-from-trace"), params={"trace_id": "missing"}).status_code == 404
    assert len(_items(team)) == 1
    assert team.users["VIEWER"].get(team.url("/datasets/add-from-trace"), params={"trace_id": "t-1"}).status_code == 403


def test_bulk_add_from_traces(team: Team) -> None:
    for n in (1, 2, 3):
        _trace(team, f"bulk-{n}", input={"n": n}, output=f"out {n}")
    member = team.users["MEMBER"]
    # first step: the dialog to choose a dataset, carrying the ids
    r = member.post(team.url("/datasets/add-from-traces"), {"trace_ids": ["bulk-1", "bulk-2 bulk-3"]}, htmx=True)
    assert r.status_code == 200 and "3 traces" in text_of(r)
    assert r.text.count('name="trace_ids"') == 3
    # a missing trace: nothing is created, not even the new dataset
    r = member.post(team.url("/datasets/add-from-traces"), {"trace_ids": "bulk-1,nope", "new_dataset": "bulk",
                                                            "choose": "1"}, htmx=True)
    assert r.status_code == 404 and "'nope' not found" in text_of(r)
    assert list_datasets(team.services.sessions, project_id=team.project_id)[0] == []

    r = member.post(team.url("/datasets/add-from-traces"), {"trace_ids": ["bulk-1", "bulk-2", "bulk-3"],
                                                            "new_dataset": "bulk", "choose": "1"})
    assert r.status_code == 303
    items = sorted(_items(team, "bulk"), key=lambda i: i["sourceTraceId"])
    assert [(i["sourceTraceId"], i["input"], i["expectedOutput"]) for i in items] == [
        ("bulk-1", {"n": 1}, "out 1"), ("bulk-2", {"n": 2}, "out 2"), ("bulk-3", {"n": 3}, "out 3")]
    r = member.post(team.url("/datasets/add-from-traces"), {"choose": "1"})
    assert r.status_code == 400 and "Select the traces" in text_of(r)


# ---- runs and comparison ----------------------------------------------------------------------------------
def _recorded_run(team: Team, ds: dict[str, Any], run: str, outputs: dict[str, str], scores: dict[str, float],
                  start: datetime) -> None:
    """A run as the experiment recorder leaves it: run items in OLTP, traces and scores in OLAP."""
    with write_transaction(team.services.sessions) as s:
        row = ensure_run(s, project_id=team.project_id, dataset_id=ds["id"], name=run)
        for item_id in outputs:
            record_run_item(s, row, item_key=item_id, dataset_item_id=item_id, trace_id=f"{run}-{item_id}")
    for i, (item_id, out) in enumerate(outputs.items()):
        t = start + timedelta(seconds=i)
        _trace(team, f"{run}-{item_id}", input={"q": item_id}, output=out, start=t, observations=[ObservationEvent(
            team.project_id, f"{run}-{item_id}-gen", f"{run}-{item_id}", t, type="GENERATION", start_time=t,
            end_time=t + timedelta(seconds=1.5), cost_details={"total": 0.25})])
    team.services.olap.insert_arrow("scores", scores_table([
        ScoreEvent(team.project_id, f"{run}-{item_id}-score", start, start, "correct", "NUMERIC", value=value,
                   trace_id=f"{run}-{item_id}") for item_id, value in scores.items()]))


def test_runs_table_and_compare_view(team: Team) -> None:
    ds = _dataset(team)
    for item_id, q, a in (("i1", "Capital of France?", "Paris"), ("i2", "Capital of Peru?", "Lima")):
        upsert_item(team.services.sessions, masker=None, project_id=team.project_id, dataset_name="qa", item_id=item_id,
                    input={"question": q}, expected_output=a)
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    _recorded_run(team, ds, "run-a", {"i1": "Paris", "i2": "Lima"}, {"i1": 1.0, "i2": 1.0}, t0)
    _recorded_run(team, ds, "run-b", {"i1": "Paris", "i2": "Quito is the capital"}, {"i1": 1.0, "i2": 0.0}, t0)
    viewer = team.users["VIEWER"]
    base = team.url(f"/datasets/{ds['id']}")

    runs = viewer.get(f"{base}/runs")
    rows = {m[0]: " ".join(html.unescape(re.sub(r"<[^>]+>", " ", m[1])).split())
            for m in re.findall(r'name="runs" value="([^"]+)">.*?</td>(.*?)</tr>', runs.text, re.S)}
    assert rows["run-a"].startswith("run-a 2 1 1.50s $0.5")  # items, avg correct, avg latency, total cost
    assert rows["run-b"].startswith("run-b 2 0.5 1.50s $0.5")

    page = viewer.get(f"{base}/compare", params=[("runs", "run-a"), ("runs", "run-b")])
    assert page.status_code == 200
    text = text_of(page)
    assert "Comparing 2 runs" in text and "outputs differ on 1" in text
    cells = re.findall(r'<td class="([^"]*)" data-run="([^"]+)">(.*?)</td>\s*(?=<td|</tr>)', page.text, re.S)
    by_run = {}
    for cls, run, body in cells:
        by_run.setdefault(run, []).append((cls.split(), " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())))
    # items newest first: i2 (differs between runs) then i1 (the same)
    (a_i2_cls, a_i2), (a_i1_cls, a_i1) = by_run["run-a"]
    (b_i2_cls, b_i2), (b_i1_cls, b_i1) = by_run["run-b"]
    assert a_i2.startswith("Lima") and "ds-differs" in a_i2_cls and "ds-matches" in a_i2_cls
    assert b_i2.startswith("Quito is the capital") and "ds-differs" in b_i2_cls and "ds-matches" not in b_i2_cls
    assert "ds-differs" not in a_i1_cls and "ds-matches" in b_i1_cls
    assert "<mark>Quito is the capital</mark>" in page.text  # the words that differ from run-a
    assert re.search(r'ds-score ds-score-best">correct <b>1</b>', page.text)
    assert re.search(r'ds-score ds-score-worst">correct <b>0</b>', page.text)
    assert f'href="/project/{team.project_id}/traces/run-b-i2"' in page.text

    only = text_of(viewer.get(f"{base}/compare", params=[("runs", "run-a"), ("runs", "run-b"), ("only_diff", "1")]))
    assert "Capital of Peru?" in only and "Capital of France?" not in only
    assert viewer.get(f"{base}/compare", params={"runs": "nope"}).status_code == 404
    back = viewer.get(f"{base}/compare", follow_redirects=False)  # no runs: back to the runs, saying why
    assert back.status_code == 303 and back.headers["location"] == f"{base}/runs"
    assert "Choose at least one run to compare" in text_of(viewer.get(f"{base}/runs"))

    assert viewer.post(f"{base}/runs/delete", {"run": "run-a"}).status_code == 403
    assert team.users["MEMBER"].post(f"{base}/runs/delete", {"run": "run-a"}).status_code == 303
    with pytest.raises(NotFound):
        get_run(team.services.sessions, None, project_id=team.project_id, dataset_name="qa", run_name="run-a")


# ---- prompt experiments ------------------------------------------------------------------------------------
def test_experiment_from_the_form(team: Team) -> None:
    from owlscope.evals.connections import set_default_model, upsert_connection
    from owlscope.evals.evaluators import create_evaluator
    from owlscope.storage.oltp.eval_models import JobExecution

    ds = _dataset(team)
    for n in (1, 2):
        upsert_item(team.services.sessions, masker=None, project_id=team.project_id, dataset_name="qa", item_id=f"item-{n}",
                    input={"question": f"q{n}"}, expected_output=f"a{n}")
    store = prompt_store(team.services)
    store.create(team.project_id, parse_create({"name": "qa/answer", "prompt": "Answer {{question}}"}))
    store.create(team.project_id, parse_create({"name": "qa/answer", "prompt": "Answer {{question}} as {{persona}}"}))
    member = team.users["MEMBER"]
    base = team.url(f"/datasets/{ds['id']}")
    with FakeOpenAI() as llm:
        conn = upsert_connection(team.services.sessions, team.services.settings, team.project_id, {
            "provider": "local", "adapter": "openai", "secretKey": "sk-test", "baseURL": llm.base_url,
            "customModels": ["fake-model"]})
        set_default_model(team.services.sessions, team.project_id, provider="local", model="fake-model")
        # an evaluator whose filter matches none of the experiment's traces: only the choice runs it
        judge = create_evaluator(team.services, team.project_id, {
            "name": "concise", "template": "conciseness", "delay_seconds": 5,
            "filter": [{"type": "string", "column": "name", "operator": "=", "value": "not-these"}]})
        form = member.get(f"{base}/experiments/new")
        assert form.status_code == 200
        assert f'<option value="{conn["id"]}" selected>' in form.text  # the only connection is preselected
        assert 'value="fake-model"' in form.text and "qa/answer — v2" in text_of(form)

        check = member.get(f"{base}/experiments/check", params={"prompt": "qa/answer|2"}, headers={"HX-Request": "true"})
        assert "{{persona}} 0 of 2 — the experiment will not start" in text_of(check)
        assert "{{question}} 2 of 2" in text_of(check)

        fields = {"prompt": "qa/answer|2", "connection_id": conn["id"], "model": "fake-model", "run_name": "v2-run"}
        r = member.post(f"{base}/experiments/new", fields)
        assert r.status_code == 400
        assert "uses variable(s) persona" in text_of(r) and "item 'item-1' lacks persona" in text_of(r)
        assert len(llm.requests) == 0
        r = member.post(f"{base}/experiments/new", {**fields, "prompt": "qa/answer|1", "model_params": "{oops"})
        assert r.status_code == 400 and "Model parameters is not valid JSON" in text_of(r)
        assert team.users["VIEWER"].post(f"{base}/experiments/new", {**fields, "prompt": "qa/answer|1"}
                                         ).status_code == 403

        r = member.post(f"{base}/experiments/new", {**fields, "prompt": "qa/answer|1", "concurrency": "2",
                                                    "model_params": '{"temperature": 0}', "evaluators": judge.id})
        assert r.status_code == 303
        job_id = r.headers["location"].rsplit("/", 1)[1]
        status_page = member.get(r.headers["location"])
        assert "Experiment v2-run" in text_of(status_page) and "Queued" in text_of(status_page)
        assert 'hx-trigger="every 1s"' in status_page.text  # polls while it runs

        # the worker's job (no worker thread in this app): run it here
        run_prompt_experiment_job(team.services, team.project_id, job_id)
        assert prompt_experiment_status(team.services, project_id=team.project_id, job_id=job_id)["status"] == "completed"
        assert len(llm.requests) == 2 and all(c["body"]["temperature"] == 0 for c in llm.requests)
    progress = member.get(r.headers["location"], headers={"HX-Request": "true"})
    assert "<html" not in progress.text and 'data-status="completed"' in progress.text
    assert "hx-trigger" not in progress.text  # finished: polling stops
    assert "2 / 2" in text_of(progress) and f"{base}/compare?runs=v2-run" in progress.text
    run = get_run(team.services.sessions, None, project_id=team.project_id, dataset_name="qa", run_name="v2-run")
    assert sorted(ri["datasetItemId"] for ri in run["datasetRunItems"]) == ["item-1", "item-2"]
    assert run["metadata"]["evaluators"] == [judge.id]
    with team.services.sessions() as s:  # the chosen evaluator is scheduled on each item's trace
        executions = s.query(JobExecution).filter_by(project_id=team.project_id, evaluator_id=judge.id).all()
    assert sorted(e.trace_id for e in executions) == sorted(ri["traceId"] for ri in run["datasetRunItems"])
    assert member.get(team.url(f"/datasets/{ds['id']}/experiments/{'f' * 32}")).status_code == 404
