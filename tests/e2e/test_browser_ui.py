"""The UI's layout, rendering and actions in a real browser, at 1440 and 1024 px wide: tables that
fit without a horizontal scroll, a breadcrumb that never runs under the top bar's controls, the
collapsible sidebar and the dark-mode toggle (both kept across pages), markdown (sanitised) and
image thumbnails, a failed session turn's error, the trace timeline and agent graph (and their
render time at 2,000 and 10,000 observations), row checkboxes with bulk actions, "Add to dataset",
one number format everywhere, and the small fixes (LLM connections tab, compare without runs,
sibling order).

One server for the module; the data goes straight into the OLAP tables (and through the public API
for prompts, datasets and comments). Screenshots: test-artifacts/screenshots/ui-*.png.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from browser import *  # noqa: F403
from browser import PASSWORD, shot, sign_in
from playwright.sync_api import expect
from unit.test_web_numbers import COSTS, DURATIONS, NUMBERS

from conftest import LiveServer, create_project_key
from owlscope.ingestion.rows import (
    ObservationEvent,
    ScoreEvent,
    TraceEvent,
    observations_table,
    scores_table,
    traces_table,
)

pytestmark = pytest.mark.browser
T = "ui"
WIDTHS = (1440, 1024)
EMAIL = "grace@example.com"
LONG_NAME = "agent-run: " + "summarise the quarterly incident reports and draft follow-up tickets for each " \
    "owning team (long name)"
AGENT_TRACE = "agent-trace"
BIG = {2000: "big-2k", 10000: "big-10k"}
SESSION = "sess-ui"
MARKDOWN = ("## Plan\n\n- read the **reports**\n- draft `tickets`\n\n<script>window.__pwned = 1</script>"
            "<img src=x onerror=\"window.__pwned = 2\">\n\n[click](javascript:alert(1))")
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5"
       "ErkJggg==")


def ms(t: datetime, n: float) -> datetime:
    return t + timedelta(milliseconds=n)


# ---- data -----------------------------------------------------------------------------------------
def _insert(olap, traces=(), observations=(), scores=()) -> None:
    if traces:
        olap.insert_arrow("trace_events", traces_table(list(traces)))
    if observations:
        olap.insert_arrow("observation_events", observations_table(list(observations)))
    if scores:
        olap.insert_arrow("scores", scores_table(list(scores)))


def _list_traces(pid: str, t0: datetime) -> tuple[list, list, list]:
    """30 traces with every column of the table filled."""
    traces, obs, scores = [], [], []
    for i in range(30):
        ts = t0 + timedelta(minutes=i)
        tid = f"row-{i:02d}"
        traces.append(TraceEvent(pid, tid, ts, timestamp=ts, name=f"support-chat-{i % 4}", user_id=f"customer-{i % 5:04d}",
                                 session_id=f"session-{i % 3:02d}-{'x' * 12}", tags=["support", "beta-cohort"],
                                 environment="production" if i % 2 else "staging-eu-west"))
        obs.append(ObservationEvent(
            pid, f"{tid}-gen", tid, ts, type="GENERATION", name="llm", start_time=ts, end_time=ms(ts, 1234),
            model="gpt-4o", level="ERROR" if i % 7 == 0 else "DEFAULT",
            usage_details={"input": 1200 + i, "output": 340, "total": 1540 + i},
            cost_details={"total": 0.00033975 if i % 2 else 0.0107}, provided_cost=True))
        for name, value in (("helpfulness", 0.75), ("correctness", 1.0), ("toxicity", 0.0)):
            scores.append(ScoreEvent(pid, f"{tid}-{name}", ts, ts, name, "NUMERIC", "API", value=value, trace_id=tid,
                                     environment="production"))
    return traces, obs, scores


def _agent_trace(pid: str, t0: datetime) -> tuple[list, list]:
    """An agent → 3 tools → a generation each; two siblings start in the same millisecond; markdown
    and images in the generation's messages."""
    tr = TraceEvent(pid, AGENT_TRACE, t0, timestamp=t0, name=LONG_NAME, session_id=SESSION, user_id="customer-0001",
                    input=json.dumps({"task": "incident reports"}), output=json.dumps(MARKDOWN))
    obs = [ObservationEvent(pid, "agent", AGENT_TRACE, t0, type="AGENT", name="planner", start_time=t0,
                            end_time=ms(t0, 1000))]
    for k, (start, end) in enumerate([(0, 200), (400, 500), (700, 950)]):
        tool = f"tool-{k}"
        obs.append(ObservationEvent(pid, tool, AGENT_TRACE, t0, type="TOOL", name="search", parent_observation_id="agent",
                                    start_time=ms(t0, start), end_time=ms(t0, end)))
        obs.append(ObservationEvent(
            pid, f"gen-{k}", AGENT_TRACE, t0, type="GENERATION", name="summarise", parent_observation_id=tool,
            start_time=ms(t0, start + 10), end_time=ms(t0, end - 10), model="gpt-4o",
            input=json.dumps([{"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": PNG}}]}]),
            output=json.dumps({"role": "assistant", "content": MARKDOWN})))
    # same start millisecond: listed by end, then name (zeta ends first, so it comes first)
    obs.append(ObservationEvent(pid, "tie-b", AGENT_TRACE, t0, type="EVENT", name="alpha", parent_observation_id="agent",
                                start_time=ms(t0, 600), end_time=ms(t0, 640)))
    obs.append(ObservationEvent(pid, "tie-a", AGENT_TRACE, t0, type="EVENT", name="zeta", parent_observation_id="agent",
                                start_time=ms(t0, 600), end_time=ms(t0, 620)))
    return [tr], obs


def _big_trace(pid: str, tid: str, n: int, t0: datetime) -> tuple[list, list]:
    """n observations: an agent with tools, each with generations (10 ms apart)."""
    tr = TraceEvent(pid, tid, t0, timestamp=t0, name=f"big trace {n}")
    obs = [ObservationEvent(pid, f"{tid}-root", tid, t0, type="AGENT", name="orchestrator", start_time=t0,
                            end_time=ms(t0, n * 10))]
    tools = n // 10
    for k in range(tools):
        tool = f"{tid}-tool-{k}"
        start = k * 100
        obs.append(ObservationEvent(pid, tool, tid, t0, type="TOOL", name=f"tool-{k % 7}", parent_observation_id=f"{tid}-root",
                                    start_time=ms(t0, start), end_time=ms(t0, start + 95)))
        for j in range(9):
            if len(obs) >= n:
                break
            obs.append(ObservationEvent(pid, f"{tool}-g{j}", tid, t0, type="GENERATION", name="llm",
                                        parent_observation_id=tool, start_time=ms(t0, start + j * 10 + 1),
                                        end_time=ms(t0, start + j * 10 + 8)))
    return [tr], obs[:n]


def _session(pid: str, t0: datetime) -> tuple[list, list]:
    traces, obs = [], []
    for i, (q, a) in enumerate([("Hi", "**Hello!** How can I help?"), ("Reset my password", None)]):
        ts = t0 + timedelta(seconds=5 * (i + 1))
        tid = f"turn-{i}"
        traces.append(TraceEvent(pid, tid, ts, timestamp=ts, name="chat-turn", session_id=SESSION,
                                 input=json.dumps(q), output=json.dumps(a) if a else None))
        obs.append(ObservationEvent(pid, f"{tid}-gen", tid, ts, type="GENERATION", name="llm", start_time=ts,
                                    end_time=ms(ts, 300), level="ERROR" if a is None else "DEFAULT",
                                    status_message="Rate limited by the provider (429)" if a is None else None))
    return traces, obs


def _api(base: str, keys: dict, pid: str, t0: datetime, olap) -> dict[str, Any]:
    auth = (keys["public_key"], keys["secret_key"])
    with httpx.Client(base_url=base, auth=auth, timeout=30) as c:
        def post(path: str, body: dict) -> dict:
            r = c.post(path, json=body)
            assert r.status_code < 300, (path, r.status_code, r.text)
            return r.json()

        post("/api/public/comments", {"projectId": pid, "objectType": "TRACE", "objectId": AGENT_TRACE,
                                      "content": "Looks **fine** to me <script>window.__pwned = 3</script>"})
        for v in (1, 2):
            post("/api/public/v2/prompts", {"name": "summariser", "type": "text", "prompt": "Summarise {{text}}",
                                            "labels": ["production"] if v == 2 else []})
        post("/api/public/v2/datasets", {"name": "incidents"})
        items = []
        for i, value in enumerate(["3 apples", "plain question", {"q": "json input", "n": 42}]):
            items.append(post("/api/public/dataset-items", {
                "datasetName": "incidents", "id": f"item-{i}", "input": value,
                "expectedOutput": {"answer": "x" * 200, "tokens": list(range(40))}}))
        runs = {}
        for r in range(3):
            name = f"run-{r}-gpt-4o-temperature-0.{r}"
            runs[name] = []
            for i in range(3):
                tid = f"exp-{r}-{i}"
                ts = t0 + timedelta(seconds=r * 10 + i)
                _insert(olap, traces=[TraceEvent(pid, tid, ts, timestamp=ts, name="experiment-item",
                                                 output=json.dumps({"answer": "y" * 300, "run": r}))],
                        observations=[ObservationEvent(pid, f"{tid}-g", tid, ts, type="GENERATION", name="llm",
                                                       start_time=ts, end_time=ms(ts, 2500 + 100 * r),
                                                       cost_details={"total": 0.00012345 * (r + 1)}, provided_cost=True,
                                                       prompt_name="summariser", prompt_version=1 + r % 2,
                                                       usage_details={"input": 1500, "output": 2500, "total": 4000})])
                post("/api/public/dataset-run-items", {"runName": name, "datasetItemId": f"item-{i}", "traceId": tid})
        datasets = c.get("/api/public/v2/datasets").json()["data"]
    return {"dataset_id": next(d["id"] for d in datasets if d["name"] == "incidents"), "runs": list(runs)}


@pytest.fixture(scope="module")
def ui(tmp_path_factory, chdb_dir) -> Iterator[dict[str, Any]]:
    from owlscope.config import load_settings

    settings = load_settings(data_dir=tmp_path_factory.mktemp("ui"), clickhouse_url=f"chdb://{chdb_dir}",
                             clickhouse_db=f"t_{uuid.uuid4().hex[:10]}", flush_interval_ms=50)
    with LiveServer(settings, run_worker=False) as server:
        keys = create_project_key(server.services, org_name="Analytical Engines",
                                  project_name="Support bot with a rather long project name")
        # the user: sign-up rules, as the form
        from owlscope.accounts.bootstrap import create_org_project_user

        create_org_project_user(server.services.sessions, server.services.settings, org_name="Grace's org",
                                project_name="Scratch", email=EMAIL, password=PASSWORD, user_name="Grace Hopper")
        pid = keys["project_id"]
        _add_member(server, pid, EMAIL)
        olap = server.services.olap
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        traces, obs, scores = _list_traces(pid, t0)
        _insert(olap, traces, obs, scores)
        _insert(olap, *_agent_trace(pid, t0 + timedelta(minutes=40)))
        _insert(olap, *_session(pid, t0 + timedelta(minutes=40)))
        for n, tid in BIG.items():
            _insert(olap, *_big_trace(pid, tid, n, t0 + timedelta(minutes=50)))
        extra = _api(server.url, keys, pid, t0 + timedelta(minutes=45), olap)
        yield {"server": server, "base": server.url, "pid": pid, **extra}


def _add_member(server: LiveServer, project_id: str, email: str) -> None:
    """Grace joins the seeded project's organization as an owner."""
    from sqlalchemy import select

    from owlscope.storage.oltp.db import write_transaction
    from owlscope.storage.oltp.models import OrganizationMembership, Project, Role, User

    with write_transaction(server.services.sessions) as s:
        user = s.execute(select(User).where(User.email == email)).scalar_one()
        org_id = s.get(Project, project_id).org_id
        s.add(OrganizationMembership(org_id=org_id, user_id=user.id, role=Role.OWNER))


@pytest.fixture(scope="module")
def pages(ui, chromium) -> Iterator[dict[int, Any]]:
    """One signed-in page per width (each its own browser context)."""
    out, contexts = {}, []
    for w in WIDTHS:
        ctx = chromium.new_context(viewport={"width": w, "height": 900}, bypass_csp=True, accept_downloads=True)
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        page = ctx.new_page()
        sign_in(page, ui["base"], email=EMAIL)
        out[w] = page
    yield out
    for ctx in contexts:
        ctx.close()


def _fits(page, selector: str) -> None:
    """Every element matched fits its width (no horizontal scroll)."""
    sizes = page.eval_on_selector_all(selector, "els => els.map(e => [e.scrollWidth, e.clientWidth])")
    assert sizes, f"nothing matches {selector}"
    for scroll, client in sizes:
        assert scroll <= client + 1, f"{selector}: scrollWidth {scroll} > clientWidth {client}"


def _no_overlap(page, a: str, b: str) -> None:
    ba, bb = page.locator(a).first.bounding_box(), page.locator(b).first.bounding_box()
    assert ba and bb
    assert ba["x"] + ba["width"] <= bb["x"] + 0.5 or bb["x"] + bb["width"] <= ba["x"] + 0.5 \
        or ba["y"] + ba["height"] <= bb["y"] or bb["y"] + bb["height"] <= ba["y"], (a, ba, b, bb)


# ---- 1. layout ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", WIDTHS)
def test_layout_fits_without_horizontal_scroll(ui, pages, width) -> None:
    page, base, pid = pages[width], ui["base"], ui["pid"]
    page.goto(f"{base}/project/{pid}/traces")
    expect(page.locator("table.table-traces tbody tr").first).to_be_visible()
    for header in ("Env", "Level", "Cost", "Scores"):
        expect(page.locator("table.table-traces th", has_text=header)).to_be_visible()
    shot(page, T, f"traces-{width}", full_page=False)
    _fits(page, "#trace-results .table-wrap")

    # a 130-character trace name: the breadcrumb ends before the environment selector
    page.goto(f"{base}/project/{pid}/traces/{AGENT_TRACE}")
    expect(page.locator(".crumb-current")).to_contain_text("agent-run")
    shot(page, T, f"trace-{width}", full_page=False)
    _no_overlap(page, ".breadcrumbs", ".topbar-right")
    _no_overlap(page, ".breadcrumbs", ".user-menu")
    page.get_by_role("tab", name="Timeline").click()
    _fits(page, "[data-timeline] .tl-scroll")
    expect(page.locator("[data-timeline] .tl-row")).to_have_count(9)
    shot(page, T, f"trace-timeline-{width}", full_page=False)
    page.get_by_role("tab", name="Tree").click()

    for listing in ("sessions", "users", "scores"):
        page.goto(f"{base}/project/{pid}/{listing}")
        _fits(page, "main .table-wrap")
    page.goto(f"{base}/project/{pid}/users/customer-0001")
    shot(page, T, f"user-{width}", full_page=False)
    _fits(page, "main .table-wrap")
    expect(page.locator("main th", has_text="Scores")).to_be_visible()
    page.goto(f"{base}/project/{pid}/prompts/summariser?tab=metrics")
    shot(page, T, f"prompt-metrics-{width}", full_page=False)
    _fits(page, "main .table-wrap")

    ds = f"{base}/project/{pid}/datasets/{ui['dataset_id']}"
    page.goto(ds)
    shot(page, T, f"dataset-{width}", full_page=False)
    _fits(page, "main .table-wrap")
    # JSON cells are cut at a line, not in the middle of a character row
    clipped = page.eval_on_selector_all(".json-cell", "els => els.map(e => [e.scrollHeight > e.clientHeight, "
                                        "e.clientHeight % Math.round(parseFloat(getComputedStyle(e).lineHeight))])")
    assert clipped and all(rest == 0 for over, rest in clipped if over), clipped
    expect(page.locator("#dataset-items")).to_contain_text("3 apples")
    expect(page.locator("#dataset-items")).not_to_contain_text('"3 apples"')
    page.goto(f"{ds}/compare?" + "&".join(f"runs={r}" for r in ui["runs"]))
    shot(page, T, f"compare-{width}", full_page=False)
    _fits(page, "main .table-wrap")
    expect(page.locator("#compare-table th.ds-col-run")).to_have_count(3)

    page.goto(f"{base}/project/{pid}/prompts/new?name=summariser")
    area = page.locator("#f-text")
    before = area.evaluate("e => e.clientHeight")
    area.fill("\n".join(f"line {i}" for i in range(30)))
    assert area.evaluate("e => e.clientHeight") > before


def test_sidebar_collapses_and_stays_collapsed(ui, pages) -> None:
    page, base, pid = pages[1440], ui["base"], ui["pid"]
    page.goto(f"{base}/project/{pid}/traces")
    sidebar = page.locator(".sidebar")
    assert sidebar.bounding_box()["width"] > 200
    page.locator("[data-sidebar-toggle]").click()
    page.wait_for_function("document.querySelector('.sidebar').getBoundingClientRect().width < 80")
    page.goto(f"{base}/project/{pid}/sessions")
    assert sidebar.bounding_box()["width"] < 80
    expect(page.get_by_label("Main navigation").get_by_role("link", name="Traces")).to_be_visible()
    page.get_by_label("Switch project").click()  # the project menu opens beyond the rail, whole
    menu = page.locator(".switcher-menu")
    expect(menu).to_be_visible()
    box = menu.bounding_box()
    assert box["width"] > 200
    assert page.evaluate("([x, y]) => !!document.elementFromPoint(x, y).closest('.switcher-menu')",
                         [box["x"] + box["width"] - 10, box["y"] + box["height"] / 2])
    shot(page, T, "sidebar-collapsed", full_page=False)
    page.keyboard.press("Escape")
    page.locator("[data-sidebar-toggle]").click()
    page.wait_for_function("document.querySelector('.sidebar').getBoundingClientRect().width > 200")
    # narrow windows start with the rail
    small = pages[1024]
    small.goto(f"{base}/project/{pid}/traces")
    assert small.locator(".sidebar").bounding_box()["width"] < 80


def test_dark_mode_toggle_persists(ui, pages) -> None:
    page, base, pid = pages[1440], ui["base"], ui["pid"]
    page.goto(f"{base}/project/{pid}/traces")
    light = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.locator("[data-theme-toggle]").click()
    dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark != light
    page.goto(f"{base}/project/{pid}")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == dark
    page.wait_for_function("document.querySelectorAll('canvas[data-chart]')[0].width > 0")
    shot(page, T, "dashboard-dark", full_page=False)
    grid = "Chart.getChart(document.querySelector('canvas[data-chart=cost]')).options.scales.y.grid.color"
    dark_grid = page.evaluate(grid)
    page.locator("[data-theme-toggle]").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    assert page.evaluate(grid) != dark_grid  # the charts follow the toggle


# ---- 2. content --------------------------------------------------------------------------------------
def test_markdown_images_and_failed_turns(ui, pages) -> None:
    page, base, pid = pages[1440], ui["base"], ui["pid"]
    page.goto(f"{base}/project/{pid}/traces/{AGENT_TRACE}?observation=gen-0")
    out = page.locator("#io-out-pretty")
    expect(out.locator(".md h2")).to_have_text("Plan")
    expect(out.locator(".md strong")).to_have_text("reports")
    assert page.locator("#detail script").count() == 0
    assert page.evaluate("window.__pwned === undefined")
    assert page.locator("#detail a[href^='javascript']").count() == 0
    out.locator("[data-md-toggle]").click()
    expect(out.locator(".md-raw")).to_contain_text("## Plan")
    expect(page.locator("#io-in-pretty img.io-thumb")).to_have_count(1)
    assert page.locator("#io-in-pretty img.io-thumb").evaluate("i => i.naturalWidth") == 1
    shot(page, T, "markdown")
    page.goto(f"{base}/project/{pid}/traces/{AGENT_TRACE}")
    expect(page.locator(".comment-text strong")).to_have_text("fine")
    assert page.locator("#detail script").count() == 0

    page.goto(f"{base}/project/{pid}/sessions/{SESSION}")
    expect(page.locator(".turn-out .md strong", has_text="Hello!")).to_be_visible()
    failed = page.locator(".turn-error")
    expect(failed).to_contain_text("Rate limited by the provider (429)")
    expect(page.locator(".turn-out", has=failed)).not_to_contain_text("Empty")
    shot(page, T, "session")


# ---- 3. timeline and graph -----------------------------------------------------------------------------
def test_timeline_graph_and_sibling_order(ui, pages) -> None:
    page, base, pid = pages[1440], ui["base"], ui["pid"]
    page.goto(f"{base}/project/{pid}/traces/{AGENT_TRACE}")
    names = page.locator("nav.tree .tree-row .tree-name").all_inner_texts()
    assert names.index("zeta") < names.index("alpha")  # same start: the one that ends first
    page.get_by_role("tab", name="Timeline").click()
    bars = page.locator("[data-timeline] .tl-row")
    expect(bars).to_have_count(9)
    widths = page.eval_on_selector_all("[data-timeline] .tl-row", """rows => rows.map(r => [
        r.querySelector('.tree-name').textContent, r.querySelector('[data-tl-bar]').getBoundingClientRect().width,
        r.querySelector('[data-tl-bar]').getBoundingClientRect().left])""")
    by = {}
    for name, w, x in widths:
        by.setdefault(name, []).append((w, x))
    agent_w, agent_x = by["planner"][0]
    (w0, x0), (w1, x1), (w2, x2) = by["search"]
    assert abs(w0 / agent_w - 0.2) < 0.02 and abs(w1 / agent_w - 0.1) < 0.02 and abs(w2 / agent_w - 0.25) < 0.02
    assert x1 - (x0 + w0) > 0.15 * agent_w  # the 200 ms gap between the first two tools shows
    page.locator("[data-timeline] .tl-row", has_text="planner").hover()
    expect(page.locator("[data-tl-tip]")).to_contain_text("duration 1.00s")
    page.locator("[data-tl-zoom=in]").click()
    expect(page.locator("[data-tl-range]")).to_contain_text("zoomed")
    shot(page, T, "timeline", full_page=False)

    page.get_by_role("tab", name="Graph").click()
    nodes = page.locator("[data-graph-node]")
    counts = {n.get_attribute("data-graph-node"): n.get_attribute("data-count") for n in nodes.all()}
    assert counts == {"AGENT:planner": "1", "TOOL:search": "3", "GENERATION:summarise": "3", "EVENT:alpha": "1",
                      "EVENT:zeta": "1"}
    x = {k: nodes.filter(has=page.locator(f"text={k.split(':')[1]}")).first.bounding_box()["x"] for k in counts}
    assert x["AGENT:planner"] < x["TOOL:search"] < x["GENERATION:summarise"]
    expect(page.locator("[data-graph-node='TOOL:search']")).to_contain_text("avg 183ms")
    shot(page, T, "graph", full_page=False)
    page.get_by_role("tab", name="Tree").click()


def test_big_traces_render_fast(ui, pages) -> None:
    page, base, pid = pages[1440], ui["base"], ui["pid"]
    page.goto(f"{base}/project/{pid}/traces/{AGENT_TRACE}")
    page.get_by_role("tab", name="Tree").click()
    measured = {}
    for n, tid in BIG.items():
        start = time.monotonic()
        page.goto(f"{base}/project/{pid}/traces/{tid}")
        page.wait_for_function("window.__owlTraceViews && window.__owlTraceViews.rows > 0")
        total = time.monotonic() - start
        ready = page.evaluate("window.__owlTraceViews.ready")
        server = page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd")
        rows_in_dom = page.locator("nav.tree .tree-row").count()
        assert rows_in_dom < 150, rows_in_dom  # virtualised
        page.locator("nav.tree").evaluate("n => n.scrollTop = n.scrollHeight")
        expect(page.locator("nav.tree .tree-row").last).to_contain_text("llm")
        t1 = time.monotonic()
        page.get_by_role("tab", name="Timeline").click()
        expect(page.locator("[data-timeline] .tl-row").first).to_be_visible()
        timeline = time.monotonic() - t1
        page.get_by_role("tab", name="Graph").click()
        expect(page.locator("[data-graph-node='TOOL:tool-0']")).to_be_visible()
        page.get_by_role("tab", name="Tree").click()
        measured[n] = (total, server, ready, timeline)
        print(f"\ntrace with {n:,} observations: page {total * 1000:.0f} ms (server response {server:.0f} ms, "
              f"views drawn at {ready:.0f} ms), timeline {timeline * 1000:.0f} ms")
        shot(page, T, f"big-{n}", full_page=False)
    assert measured[2000][0] < 5 and measured[10000][0] < 15


# ---- 4. actions ------------------------------------------------------------------------------------------
def test_bulk_actions_and_add_to_dataset(ui, pages) -> None:
    page, base, pid = pages[1440], ui["base"], ui["pid"]
    page.goto(f"{base}/project/{pid}/traces")
    bar = page.locator("#trace-bulk")
    expect(bar.locator("[data-bulk-action]").first).to_be_disabled()
    boxes = page.locator("input[type=checkbox][name=trace_id]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    expect(bar.locator("[data-bulk-count]")).to_have_text("2")
    with page.expect_download() as dl:
        bar.get_by_role("button", name="Export JSON").click()
    exported = json.loads(open(dl.value.path()).read())
    assert len(exported) == 2 and all(t["observations"] for t in exported)
    bar.get_by_role("button", name="Add to dataset").click()
    dialog = page.get_by_role("dialog", name="Add traces to a dataset")
    dialog.get_by_label("or a new dataset").fill("from-bulk")
    shot(page, T, "bulk-dialog", full_page=False)
    dialog.get_by_role("button", name="Add to dataset").click()
    expect(page.get_by_role("dialog").get_by_role("status")).to_contain_text("Added 2 items")
    page.get_by_role("dialog").get_by_role("button", name="Done").click()
    page.locator("input[data-bulk-all=trace_id]").check()
    expect(bar.locator("[data-bulk-count]")).to_have_text(str(boxes.count()))

    # one observation from the trace page
    page.goto(f"{base}/project/{pid}/traces/{AGENT_TRACE}?observation=gen-1")
    page.locator("#detail").get_by_role("button", name="Add to dataset").click()
    dialog = page.get_by_role("dialog", name="Add to dataset")
    dialog.get_by_label("or a new dataset").fill("from-trace")
    dialog.get_by_role("button", name="Add to dataset").click()
    expect(page.get_by_role("dialog", name="Add to dataset").get_by_role("status")).to_contain_text("Added 1 item")


def test_time_range_applies_on_change_everywhere(ui, pages) -> None:
    page, base, pid = pages[1440], ui["base"], ui["pid"]
    for path in ("", "/sessions", "/users", "/traces"):
        page.goto(f"{base}/project/{pid}{path}")
        assert page.get_by_role("button", name="Apply").count() == 0 or not page.get_by_role(
            "button", name="Apply").first.is_visible()
        page.locator("select[data-range-select]").select_option("7d")
        page.wait_for_url(lambda url: "range=7d" in url)


# ---- 5. numbers ------------------------------------------------------------------------------------------
def test_one_number_format(ui, pages) -> None:
    page, base, pid = pages[1440], ui["base"], ui["pid"]
    page.goto(f"{base}/project/{pid}/traces")
    cells = page.locator("table.table-traces tbody td.num").all_inner_texts()
    assert "$0.00034" in cells and "$0.0107" in cells and "1.23s" in cells and "1,569" in cells, cells
    assert not any("0.00033975" in c for c in cells)
    # the browser's formatter says the same as the Jinja filters
    for fn, pairs in (("cost", COSTS), ("duration", DURATIONS), ("number", NUMBERS)):
        values = [v if v is None or v == v and abs(v) != float("inf") else None for v, _ in pairs]
        got = page.evaluate(f"vs => vs.map(v => Owlscope.format.{fn}(v === null ? null : v))", values)
        want = [("—" if fn != "number" else "") if v is None and p[0] is not None else p[1]
                for v, p in zip(values, pairs, strict=True)]
        assert got == want, (fn, got, want)
    page.goto(f"{base}/project/{pid}/datasets/{ui['dataset_id']}/runs")
    runs = page.locator("#runs-table").inner_text()
    assert "2.50s" in runs and "$0.00037" in runs, runs
    page.goto(f"{base}/project/{pid}/prompts/summariser?tab=metrics")
    metrics = page.locator("#prompt-metrics").inner_text()
    assert "$0.00074" in metrics or "$0.00049" in metrics, metrics
    assert "2.60s" in metrics or "2.50s" in metrics, metrics
    assert "7,500" in metrics or "4,500" in metrics, metrics
    page.goto(f"{base}/project/{pid}")
    page.wait_for_function("window.Chart && Chart.getChart(document.querySelector('canvas[data-chart=cost]'))")
    assert page.evaluate("Chart.getChart(document.querySelector('canvas[data-chart=cost]')).config.type") == "bar"


# ---- 6. small fixes ----------------------------------------------------------------------------------------
def test_small_fixes(ui, pages) -> None:
    page, base, pid = pages[1440], ui["base"], ui["pid"]
    page.goto(f"{base}/project/{pid}/evals")
    page.get_by_role("link", name="LLM connections").click()
    expect(page.get_by_role("navigation", name="Evaluation")).to_be_visible()
    expect(page.get_by_role("navigation", name="Evaluation").get_by_role("link", name="LLM connections")).to_have_attribute(
        "aria-current", "page")
    r = page.goto(f"{base}/project/{pid}/datasets/{ui['dataset_id']}/compare")
    assert r.ok and page.url.endswith("/runs")
    expect(page.get_by_role("alert").or_(page.locator(".flash"))).to_contain_text("Choose at least one run")


def test_traces_table_with_every_column_fits(ui, pages) -> None:
    """The column chooser at 1440 px: every optional column on, the table still fits; the choice is
    kept for the next visit (cookie), then put back to the default."""
    page, base, pid = pages[1440], ui["base"], ui["pid"]
    everything = ("input", "output", "scores", "tags", "environment", "level", "release", "version")
    page.goto(f"{base}/project/{pid}/traces?" + "&".join(f"cols={c}" for c in everything))
    expect(page.locator("table.table-traces tbody tr").first).to_be_visible()
    for header in ("Input", "Output", "Tags", "Release", "Version", "Latency", "Cost"):
        expect(page.locator("table.table-traces th", has_text=header).first).to_be_visible()
    shot(page, T, "traces-all-columns-1440", full_page=False)
    _fits(page, "#trace-results .table-wrap")
    page.goto(f"{base}/project/{pid}/traces?sort=latency.desc")
    expect(page.locator("table.table-traces th", has_text="Version")).to_be_visible()
    _fits(page, "#trace-results .table-wrap")
    # back to the default through the chooser itself
    page.locator("summary", has_text="Columns").click()
    for key in ("input", "output", "tags", "release", "version"):
        page.locator(f".column-chooser input[value={key}]").uncheck()
    page.get_by_role("button", name="Apply columns").click()
    expect(page.locator("table.table-traces th", has_text="Version")).to_have_count(0)
    page.goto(f"{base}/project/{pid}/traces")
    expect(page.locator("table.table-traces th", has_text="Input")).to_have_count(0)
    expect(page.locator("table.table-traces th", has_text="Scores")).to_be_visible()
