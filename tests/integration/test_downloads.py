"""Downloads from the UI's tables: what the current filters select, streamed as CSV, JSON or JSONL
(traces, the observations of those traces, sessions, scores, dataset items), read one page at a
time (checked on the generators: pages fetched lazily, and the memory peak of a 200k-row export)."""

from __future__ import annotations

import csv
import io
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from conftest import LiveServer
from owlscope.accounts.bootstrap import create_org_project_user
from owlscope.integrations import downloads
from owlscope.integrations.encode import encode
from owlscope.tracing.trace_table import TraceFilters
from support.ingest_http import Api
from support.web import PASSWORD, WebUser

N = 240


@pytest.fixture(scope="module")
def site(tmp_path_factory, chdb_dir):
    from owlscope.config import load_settings

    settings = load_settings(data_dir=tmp_path_factory.mktemp("dl") / "data", clickhouse_url=f"chdb://{chdb_dir}",
                             clickhouse_db=f"t_{uuid.uuid4().hex[:10]}", queue_name=f"q-{uuid.uuid4().hex[:8]}",
                             flush_interval_ms=50)
    srv = LiveServer(settings, run_worker=True).__enter__()
    keys = create_org_project_user(srv.services.sessions, settings, org_name="o", project_name="p",
                                   email="dl@example.com", password=PASSWORD)
    api = Api(srv, keys)
    base = datetime.now(UTC) - timedelta(hours=1)
    events = []
    for i in range(N):
        ts = (base + timedelta(seconds=i)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        tid = f"dl-{i:04d}"
        events += [
            {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": ts,
             "body": {"id": tid, "timestamp": ts, "name": "alpha" if i % 2 else "beta", "sessionId": f"s-{i % 7}",
                      "input": {"q": f"question {i}, with a comma"}}},
            {"id": str(uuid.uuid4()), "type": "span-create", "timestamp": ts,
             "body": {"id": f"{tid}-o", "traceId": tid, "startTime": ts, "name": "step"}},
        ]
        if i % 3 == 0:
            events.append({"id": str(uuid.uuid4()), "type": "score-create", "timestamp": ts,
                           "body": {"id": f"{tid}-q", "traceId": tid, "name": "quality", "value": i}})
    for start in range(0, len(events), 200):
        api.ingest(events[start:start + 200])
    api.wait_for("/api/public/traces", lambda r: r.json()["meta"]["totalItems"] == N, timeout=60)
    api.wait_for("/api/public/observations", lambda r: r.json()["meta"]["totalItems"] == N, timeout=60)
    api.wait_for("/api/public/v2/scores", lambda r: r.json()["meta"]["totalItems"] == N // 3, timeout=60)
    user = WebUser(srv.app)
    assert user.sign_in("dl@example.com").status_code == 303
    yield api, user
    srv.__exit__(None, None, None)


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_traces_download_honours_filters(site) -> None:
    api, user = site
    base = f"/project/{api.project_id}/traces"
    page = user.get(base, params={"name": "alpha"})
    assert page.status_code == 200 and f'data-download-path="{base}/download"' in page.text
    assert f"{base}/download?name=alpha&amp;format=csv" in page.text

    r = user.get(f"{base}/download", params={"name": "alpha", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="traces-')
    rows = _csv(r.text)
    assert len(rows) == N // 2 and {row["name"] for row in rows} == {"alpha"}
    assert len({row["id"] for row in rows}) == N // 2
    assert [row["id"] for row in rows] == sorted((row["id"] for row in rows), reverse=True)  # the table's order

    js = user.get(f"{base}/download", params={"name": "beta", "format": "json", "sort": "name.asc"}).json()
    assert len(js) == N // 2 and {t["name"] for t in js} == {"beta"}
    lines = user.get(f"{base}/download", params={"session": "s-3", "format": "jsonl"}).text.splitlines()
    assert {orjson.loads(line)["sessionId"] for line in lines} == {"s-3"}
    assert len(lines) == len([i for i in range(N) if i % 7 == 3])

    obs = _csv(user.get(f"{base}/observations/download", params={"name": "alpha", "format": "csv"}).text)
    assert len(obs) == N // 2 and {o["name"] for o in obs} == {"step"}
    assert {o["traceId"] for o in obs} == {row["id"] for row in rows}

    assert user.get(f"{base}/download", params={"format": "xml"}).status_code == 400
    assert WebUser(api.srv.app).get(f"{base}/download").status_code in (302, 303)  # signed out


def test_sessions_scores_and_dataset_items(site) -> None:
    api, user = site
    pid = api.project_id
    sessions = _csv(user.get(f"/project/{pid}/sessions/download", params={"format": "csv"}).text)
    assert sorted(s["id"] for s in sessions) == [f"s-{i}" for i in range(7)]
    assert 'data-download-path="/project/%s/sessions/download"' % pid in user.get(f"/project/{pid}/sessions").text

    scores = user.get(f"/project/{pid}/scores/download", params={"name": "quality", "op": ">=", "value": "120",
                                                                  "format": "jsonl"}).text.splitlines()
    values = sorted(orjson.loads(line)["value"] for line in scores)
    assert values == [float(i) for i in range(N) if i % 3 == 0 and i >= 120]
    assert user.get(f"/project/{pid}/scores/download", params={"value": "x"}).status_code == 400

    assert api.post("/api/public/v2/datasets", json={"name": "golden"}).status_code == 200
    for i in range(5):
        r = api.post("/api/public/dataset-items", json={"datasetName": "golden", "input": {"n": i},
                                                         "expectedOutput": str(i)})
        assert r.status_code == 200, r.text
    ds = api.get("/api/public/v2/datasets/golden").json()
    items = _csv(user.get(f"/project/{pid}/datasets/{ds['id']}/download", params={"format": "csv"}).text)
    assert sorted(orjson.loads(i["input"])["n"] for i in items) == list(range(5))
    assert user.get(f"/project/{pid}/datasets/{ds['id']}/download", params={"status": "archived"}).text == ""
    assert user.get(f"/project/{pid}/datasets/nope/download").status_code == 404


def test_generators_read_page_by_page(site, monkeypatch) -> None:
    api, _ = site
    olap, pid = api.srv.services.olap, api.project_id
    calls = []
    real = downloads.list_trace_table

    def counting(*args, **kwargs):
        calls.append(kwargs["limit"])
        return real(*args, **kwargs)

    monkeypatch.setattr(downloads, "list_trace_table", counting)
    rows = downloads.traces(olap, pid, TraceFilters(name=["alpha"]), size=25)
    first = next(rows)
    assert first["name"] == "alpha" and calls == [25]  # one page read, not the whole set
    rest = list(rows)
    assert 1 + len(rest) == N // 2 and len(calls) == -(-(N // 2) // 25)


def test_a_large_export_streams_in_bounded_memory() -> None:
    """200k rows through paging and the CSV encoder: the peak stays near a page and a chunk, far below
    what the rows alone would take in memory (about 100 MB as dicts)."""
    total, size = 200_000, 1_000

    def fetch(page: int) -> list[dict]:
        start = (page - 1) * size
        return [{"id": f"trace-{i:07d}", "name": "n" * 40, "input": {"q": "x" * 100}, "cost": i * 0.01}
                for i in range(start, min(start + size, total))]

    tracemalloc.start()
    try:
        written = 0
        for chunk in encode(downloads.by_page(fetch, size), "CSV", gzip=True):
            written += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written > 0
    assert peak < 8 * 1024 * 1024, peak
