"""The project dashboard: totals, charts' data, latency percentiles, cost by model, top users and
score distributions for a time range and environment; the get-started page of an empty project."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from web_tracing_data import Site, bulk, open_site, seed

from owlscope.tracing.dashboard import bucket_seconds, buckets


@pytest.fixture
def site(make_settings) -> Iterator[Site]:
    with open_site(make_settings) as s:
        seed(s.olap, s.project_id)
        yield s


def _kpis(page: str) -> dict[str, str]:
    return dict(re.findall(r'<div class="kpi-label">([^<]+)</div><div class="kpi-value">(.*?)</div>', page))


def _chart_data(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', page,
                                re.S).group(1))


def test_empty_project_shows_how_to_start(make_settings) -> None:
    with open_site(make_settings) as site:
        r = site.owner.get(site.base)
        assert r.status_code == 200 and "Get started" in r.text and "LANGFUSE_HOST" in r.text


def test_dashboard_totals_models_users_and_scores(site: Site) -> None:
    r = site.owner.get(site.base)
    assert r.status_code == 200
    page = html.unescape(r.text)
    kpis = _kpis(page)
    assert kpis["Traces"] == "5" and kpis["Users"] == "2"
    assert kpis["Total cost"] == "$0.00586"  # 0.0007 + 0.001 + 0.0013 + 0.0027 + 0.00016
    assert kpis["Tokens"] == "2,606"
    data = _chart_data(r.text)
    assert sum(data["series"]["traces"]) == 5
    assert round(sum(data["series"]["cost"]), 6) == 0.00586
    assert sum(data["series"]["tokens"]) == 2606
    assert [m["model"] for m in data["models"]] == ["gpt-4o", "claude-3-5-sonnet", "gpt-4o-mini"]
    models = page.split("Cost by model")[1].split("</section>")[0]
    assert "gpt-4o" in models and "$0.003" in models and "846" in models
    users = page.split("Top users")[1].split("</section>")[0]
    assert users.index("alice") < users.index("bob")  # $0.003 before $0.0027
    latency = page.split(">Latency<")[1].split("</section>")[0]
    assert "p95" in latency and "30.00s" in latency  # claude's p50/p95
    names = {s["name"]: s for s in data["scores"]}
    assert names["quality"]["kind"] == "histogram" and sum(b[2] for b in names["quality"]["bins"]) == 2
    assert names["helpful"]["values"] == [["True", 1]] and names["tone"]["values"] == [["friendly", 1]]


def test_dashboard_follows_range_and_environment(site: Site) -> None:
    bulk(site.olap, site.project_id, 10, start=datetime.now(UTC) - timedelta(days=3))
    assert _kpis(html.unescape(site.owner.get(site.base).text))["Traces"] == "15"
    assert _kpis(html.unescape(site.owner.get(f"{site.base}?range=24h").text))["Traces"] == "5"
    start = (datetime.now(UTC) - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    end = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    custom = html.unescape(site.owner.get(f"{site.base}?range=custom&from={start}&to={end}").text)
    assert _kpis(custom)["Traces"] == "10" and _kpis(custom)["Total cost"] == "$0"
    site.owner.post(f"{site.base}/environment", {"environment": "staging", "next": site.base})
    staging = html.unescape(site.owner.get(site.base).text)
    assert _kpis(staging)["Traces"] == "1" and _kpis(staging)["Total cost"] == "$0.0027"
    assert "environment staging" in staging
    data = _chart_data(site.owner.get(site.base).text)
    assert [m["model"] for m in data["models"]] == ["claude-3-5-sonnet"] and data["scores"] == []


def test_bad_ranges_are_refused(site: Site) -> None:
    r = site.owner.get(f"{site.base}?range=custom&from=2025-02-01T00:00&to=2025-01-01T00:00")
    assert r.status_code == 400
    r = site.owner.get(f"{site.base}?range=custom&from=2020-01-01T00:00&to=2025-01-01T00:00")
    assert r.status_code == 400 and "400 days" in r.text
    # "All time" is not a dashboard range: the default applies.
    assert site.owner.get(f"{site.base}?range=all").status_code == 200


def test_chart_buckets_cover_the_range() -> None:
    start = datetime(2026, 1, 1, 10, 30, tzinfo=UTC)
    for span, step in ((timedelta(hours=1), 60), (timedelta(days=1), 900), (timedelta(days=7), 3 * 3600),
                       (timedelta(days=30), 86400), (timedelta(days=90), 86400)):
        assert bucket_seconds(start, start + span) == step
        points = buckets(start, start + span, step)
        assert points[0] <= start < points[0] + timedelta(seconds=step)
        assert points[-1] < start + span and len(points) <= 101
