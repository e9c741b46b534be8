"""Internal environments (`langfuse-*`: the judge's calls, prompt experiments) stay out of the traces,
sessions and users lists and the dashboard's totals until one is chosen, or "show internal
environments" is; the public API returns them as Langfuse's does."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from owlscope.accounts.bootstrap import create_org_project_user
from owlscope.app import create_app
from owlscope.ingestion.rows import ObservationEvent, TraceEvent, observations_table, traces_table
from support.web import PASSWORD, WebUser

ENVS = {"prod-1": "production", "judge-1": "langfuse-llm-as-a-judge", "exp-1": "langfuse-prompt-experiment"}


@pytest.fixture
def site(make_settings) -> Iterator[dict[str, Any]]:
    app = create_app(make_settings(), run_worker=False)
    with TestClient(app):
        services = app.state.services
        keys = create_org_project_user(services.sessions, services.settings, org_name="Acme", project_name="Bot",
                                       email="owner@example.com", password=PASSWORD)
        pid = keys["project_id"]
        now = datetime.now(UTC) - timedelta(minutes=5)
        services.olap.insert_arrow("trace_events", traces_table([TraceEvent(
            project_id=pid, id=tid, event_ts=now, timestamp=now, name=f"name-{tid}", user_id=f"user-{tid}",
            session_id=f"session-{tid}", environment=env) for tid, env in ENVS.items()]))
        services.olap.insert_arrow("observation_events", observations_table([ObservationEvent(
            project_id=pid, id=f"gen-{tid}", trace_id=tid, event_ts=now, start_time=now, type="GENERATION",
            name="llm", environment=env, model="gpt-4o", usage_details={"input": 10, "output": 5, "total": 15},
            cost_details={"total": 0.5}) for tid, env in ENVS.items()]))
        user = WebUser(app)
        assert user.sign_in("owner@example.com").status_code == 303
        yield {"app": app, "user": user, "pid": pid, "keys": keys}


def _text(r: Any) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", r.text)).split())


def _choose(site: dict, environment: str) -> None:
    r = site["user"].post(f"/project/{site['pid']}/environment", {"environment": environment, "next": "/"})
    assert r.status_code == 303


LINKS = {"/traces": "/traces/{}", "/sessions": "/sessions/session-{}", "/users": "/users/user-{}"}


def _shown(site: dict, page: str) -> set[str]:
    """Which of the traces a list links to (the trace, its session or its user)."""
    r = site["user"].get(f"/project/{site['pid']}{page}")
    assert r.status_code == 200
    link = f"/project/{site['pid']}" + LINKS[page.split("?")[0]]
    return {tid for tid in ENVS if f'href="{link.format(tid)}' in r.text}


def test_lists_and_dashboard_hide_internal_environments_by_default(site: dict) -> None:
    every = set(ENVS)
    for page in ("/traces", "/sessions", "/users"):
        assert _shown(site, page) == {"prod-1"}, page
    dashboard = site["user"].get(f"/project/{site['pid']}?range=24h")
    assert dashboard.status_code == 200
    totals = re.search(r'"cost": \[([^\]]*)\]', html.unescape(dashboard.text))
    assert totals and abs(sum(float(x) for x in totals.group(1).split(",") if x.strip()) - 0.5) < 1e-9

    # the selector offers the internal ones apart, and "show internal environments"
    selector = site["user"].get(f"/project/{site['pid']}/traces").text
    group = re.search(r'<optgroup label="Internal[^"]*">(.*?)</optgroup>', selector, re.S).group(1)
    assert 'value="*"' in group and "langfuse-llm-as-a-judge" in group and "production" not in group

    # a page filter naming an internal environment shows it
    assert _shown(site, "/traces?env=langfuse-prompt-experiment") == {"exp-1"}

    _choose(site, "*")
    for page in ("/traces", "/sessions", "/users"):
        assert _shown(site, page) == every, page
    selector = site["user"].get(f"/project/{site['pid']}/traces").text
    assert re.search(r'<option value="\*" selected>Show internal environments', selector)
    dashboard = html.unescape(site["user"].get(f"/project/{site['pid']}?range=24h").text)
    costs = re.search(r'"cost": \[([^\]]*)\]', dashboard).group(1)
    assert abs(sum(float(x) for x in costs.split(",") if x.strip()) - 1.5) < 1e-9

    _choose(site, "langfuse-llm-as-a-judge")
    for page in ("/traces", "/sessions", "/users"):
        assert _shown(site, page) == {"judge-1"}, page

    _choose(site, "")
    assert _shown(site, "/traces") == {"prod-1"}


def test_public_api_returns_internal_environments(site: dict) -> None:
    client = TestClient(site["app"])
    auth = (site["keys"]["public_key"], site["keys"]["secret_key"])
    traces = client.get("/api/public/traces", auth=auth).json()["data"]
    assert {t["id"] for t in traces} == set(ENVS)
    sessions = client.get("/api/public/sessions", auth=auth).json()["data"]
    assert {s["id"] for s in sessions} == {f"session-{t}" for t in ENVS}
