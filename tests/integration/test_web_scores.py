"""Scores and annotation in the UI: the scores table with its filters, the annotation panel writing
ANNOTATION scores with their author through the ingestion pipeline (trace, observation, session),
validation, update in place, removal, roles (VIEWER reads, MEMBER writes) and isolation."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator

import pytest
from web_tracing_data import Site, open_site, seed, wait_scores

from owlscope.storage.oltp.models import User
from owlscope.tracing.scores import list_scores_v2
from owlscope.tracing_config.score_configs import create_score_config


@pytest.fixture
def site(make_settings) -> Iterator[Site]:
    with open_site(make_settings, run_worker=True) as s:
        seed(s.olap, s.project_id)
        yield s


def _configs(site: Site) -> dict[str, str]:
    made = [
        create_score_config(site.services.sessions, project_id=site.project_id,
                            data={"name": "correctness", "dataType": "NUMERIC", "minValue": 0, "maxValue": 1}),
        create_score_config(site.services.sessions, project_id=site.project_id, data={
            "name": "tone", "dataType": "CATEGORICAL",
            "categories": [{"label": "rude", "value": 0}, {"label": "friendly", "value": 1}]}),
        create_score_config(site.services.sessions, project_id=site.project_id,
                            data={"name": "helpful", "dataType": "BOOLEAN"}),
    ]
    return {c["name"]: c["id"] for c in made}


def _user_id(site: Site, email: str) -> str:
    with site.services.sessions() as s:
        return s.query(User).filter_by(email=email).one().id


def _annotate(user, site: Site, **form: str):
    return user.post(f"{site.base}/annotate", form, htmx=True)


def _score_ids(page: str) -> list[str]:
    return re.findall(r"<td class=\"strong\">([^<]+)</td>", page)


def test_scores_table_and_filters(site: Site) -> None:
    r = site.owner.get(f"{site.base}/scores")
    assert r.status_code == 200
    page = html.unescape(r.text)
    assert sorted(_score_ids(page)) == ["helpful", "quality", "quality", "resolved", "tone"]
    assert "misses the point" in page and "session sess-1" in page and "observation" in page
    assert _score_ids(html.unescape(site.owner.get(f"{site.base}/scores?name=quality").text)) == ["quality", "quality"]
    assert _score_ids(html.unescape(site.owner.get(f"{site.base}/scores?source=EVAL").text)) == ["quality"]
    assert _score_ids(html.unescape(site.owner.get(f"{site.base}/scores?data_type=CATEGORICAL").text)) == ["tone"]
    numeric = html.unescape(site.owner.get(f"{site.base}/scores?name=quality&op=%3E&value=0.5").text)
    assert _score_ids(numeric) == ["quality"] and "0.9" in numeric
    assert sorted(_score_ids(html.unescape(site.owner.get(f"{site.base}/scores?trace=t-chat-1").text))) == \
        ["helpful", "quality", "tone"]
    empty = site.owner.get(f"{site.base}/scores?name=nothing")
    assert "No scores match" in empty.text
    assert site.owner.get(f"{site.base}/scores?value=abc").status_code == 400


def test_annotating_a_trace_writes_an_annotation_score_with_the_author(site: Site) -> None:
    ids = _configs(site)
    owner_id = _user_id(site, "owner@example.com")
    panel = site.owner.get(f"{site.base}/annotate?kind=trace&id=t-chat-2", headers={"HX-Request": "true"})
    assert panel.status_code == 200 and "correctness" in panel.text and "<html" not in panel.text
    r = _annotate(site.owner, site, kind="trace", id="t-chat-2", config_id=ids["correctness"], value="0.75",
                  comment="mostly right")
    assert r.status_code == 200
    assert "Saved" in r.text and 'value="0.75"' in r.text  # shown at once, before the worker flushes
    found = wait_scores(site, lambda s: any(x["source"] == "ANNOTATION" for x in s), trace_id="t-chat-2")
    score = next(x for x in found if x["source"] == "ANNOTATION")
    assert score["name"] == "correctness" and score["value"] == 0.75 and score["dataType"] == "NUMERIC"
    assert score["authorUserId"] == owner_id and score["configId"] == ids["correctness"]
    assert score["comment"] == "mostly right" and score["observationId"] is None
    assert score["environment"] == "production"

    # Setting it again updates the same score.
    _annotate(site.owner, site, kind="trace", id="t-chat-2", config_id=ids["correctness"], value="0.25")
    found = wait_scores(site, lambda s: any(x["source"] == "ANNOTATION" and x["value"] == 0.25 for x in s),
                         trace_id="t-chat-2")
    assert [x["id"] for x in found if x["source"] == "ANNOTATION"] == [score["id"]]
    page = html.unescape(site.owner.get(f"{site.base}/traces/t-chat-2").text)
    assert 'value="0.25"' in page and "Olive Owner" in page

    # And it can be removed.
    r = site.owner.post(f"{site.base}/annotate/clear", {"kind": "trace", "id": "t-chat-2", "score_id": score["id"]},
                        htmx=True)
    assert r.status_code == 200
    assert not [x for x in list_scores_v2(site.olap, site.project_id, trace_id="t-chat-2", limit=100,
                                          fields="score")["data"] if x["source"] == "ANNOTATION"]


def test_annotating_observations_and_sessions(site: Site) -> None:
    ids = _configs(site)
    r = _annotate(site.owner, site, kind="observation", id="o-gen-1", trace="t-chat-1", config_id=ids["tone"],
                  value="rude")
    assert r.status_code == 200
    r = _annotate(site.owner, site, kind="session", id="sess-1", config_id=ids["helpful"], value="1")
    assert r.status_code == 200
    obs = wait_scores(site, lambda s: any(x["source"] == "ANNOTATION" for x in s), observation_id="o-gen-1")
    tone = next(x for x in obs if x["source"] == "ANNOTATION")
    assert tone["traceId"] == "t-chat-1" and tone["stringValue"] == "rude" and tone["dataType"] == "CATEGORICAL"
    sess = wait_scores(site, lambda s: any(x["source"] == "ANNOTATION" for x in s), session_id="sess-1")
    helpful = next(x for x in sess if x["source"] == "ANNOTATION")
    assert helpful["traceId"] is None and helpful["value"] == 1 and helpful["stringValue"] == "True"
    # The scores table shows them with their author.
    page = html.unescape(site.owner.get(f"{site.base}/scores?source=ANNOTATION").text)
    assert page.count("<td class=\"muted\">Olive Owner</td>") == 2


def test_invalid_values_are_refused_inline(site: Site) -> None:
    ids = _configs(site)
    for config, value, message in (("correctness", "1.5", "between 0 and 1"), ("correctness", "x", "needs a number"),
                                    ("tone", "angry", "must be one of"), ("helpful", "maybe", "true or false"),
                                    ("correctness", "", "Choose a value")):
        r = _annotate(site.owner, site, kind="trace", id="t-chat-1", config_id=ids[config], value=value)
        assert r.status_code == 400 and message in html.unescape(r.text), (config, value)
    r = _annotate(site.owner, site, kind="trace", id="t-chat-1", config_id="no-such-config", value="1")
    assert r.status_code == 404
    time.sleep(0.5)
    assert not [x for x in list_scores_v2(site.olap, site.project_id, trace_id="t-chat-1", limit=100,
                                          fields="score")["data"] if x["source"] == "ANNOTATION"]


def test_viewer_cannot_annotate_or_comment_but_member_can(site: Site) -> None:
    ids = _configs(site)
    viewer = site.add_member("viewer@example.com", "VIEWER")
    member = site.add_member("member@example.com", "MEMBER")
    page = viewer.get(f"{site.base}/traces/t-chat-1")
    assert page.status_code == 200 and "annotating needs the Member role" in page.text
    r = _annotate(viewer, site, kind="trace", id="t-chat-1", config_id=ids["correctness"], value="1")
    assert r.status_code == 403
    r = viewer.post(f"{site.base}/comments", {"kind": "trace", "id": "t-chat-1", "content": "hi"})
    assert r.status_code == 403
    r = _annotate(member, site, kind="trace", id="t-chat-1", config_id=ids["correctness"], value="1")
    assert r.status_code == 200
    found = wait_scores(site, lambda s: any(x["source"] == "ANNOTATION" for x in s), trace_id="t-chat-1")
    assert next(x for x in found if x["source"] == "ANNOTATION")["authorUserId"] == \
        _user_id(site, "member@example.com")


def test_annotating_another_projects_trace_is_404(site: Site) -> None:
    from support.web import WebUser

    ids = _configs(site)
    other = WebUser(site.app)
    other.sign_up("other@example.com")
    other_project = other.onboard("Other", "Other")
    seed(site.olap, other_project, prefix="x-")
    r = _annotate(site.owner, site, kind="trace", id="x-t-chat-1", config_id=ids["correctness"], value="1")
    assert r.status_code == 404
    r = _annotate(site.owner, site, kind="observation", id="x-o-gen-1", trace="x-t-chat-1",
                  config_id=ids["correctness"], value="1")
    assert r.status_code == 404
    # Someone outside the project cannot write to it at all.
    r = other.post(f"{site.base}/annotate", {"kind": "trace", "id": "t-chat-1", "config_id": ids["correctness"],
                                             "value": "1"}, htmx=True)
    assert r.status_code == 404


def test_panel_without_configs_points_to_settings(site: Site) -> None:
    page = site.owner.get(f"{site.base}/traces/t-chat-1").text
    assert "No score configs yet." in page and "/settings/scores/new" in page


def test_categorical_annotation_stores_the_value_of_its_label(site: Site) -> None:
    config = create_score_config(site.services.sessions, project_id=site.project_id, data={
        "name": "manner", "dataType": "CATEGORICAL",
        "categories": [{"label": "rude", "value": 0}, {"label": "neutral", "value": 1},
                       {"label": "friendly", "value": 2}]})
    r = _annotate(site.owner, site, kind="trace", id="t-chat-3", config_id=config["id"], value="friendly")
    assert r.status_code == 200
    found = wait_scores(site, lambda s: any(x["source"] == "ANNOTATION" for x in s), trace_id="t-chat-3")
    score = next(x for x in found if x["source"] == "ANNOTATION")
    assert score["dataType"] == "CATEGORICAL" and score["stringValue"] == "friendly" and score["value"] == 2
    # the panel shows the label chosen
    page = html.unescape(site.owner.get(f"{site.base}/traces/t-chat-3").text)
    assert '<option value="friendly" selected>' in page


def test_saving_an_annotation_refreshes_the_scores_table(site: Site) -> None:
    ids = _configs(site)
    r = _annotate(site.owner, site, kind="trace", id="t-chat-2", config_id=ids["correctness"], value="0.5")
    assert r.status_code == 200
    # the response swaps the trace's scores table too (out of band), with the new score in it
    table = re.search(r'<section[^>]*id="scores-trace-[0-9a-f]+"[^>]*hx-swap-oob="true".*?</section>', r.text, re.S)
    assert table, r.text
    assert "correctness" in table.group(0) and "0.5" in table.group(0) and "quality" in table.group(0)
    # an observation's table likewise
    r = _annotate(site.owner, site, kind="observation", id="o-gen-2", trace="t-chat-2", config_id=ids["tone"],
                  value="friendly")
    table = re.search(r'<section[^>]*id="scores-observation-[0-9a-f]+"[^>]*hx-swap-oob="true".*?</section>', r.text, re.S)
    assert table and "tone" in table.group(0) and "friendly" in table.group(0)
