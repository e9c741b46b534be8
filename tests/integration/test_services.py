"""The typed wiring: Services built in one pass, close() releasing what they own, and the UI's
template environment built per app with every filter the templates use."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from pathlib import Path

import pytest

from owlscope.evals.queueing import JudgePool
from owlscope.pipeline.process import IngestProcessor
from owlscope.services import Services, build_services
from owlscope.worker.tasks import start_worker


def _owned_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


def test_services_fields_are_typed_and_set(make_settings) -> None:
    svc = build_services(make_settings("embedded"))
    try:
        names = {f.name for f in dataclasses.fields(Services)}
        assert "extras" not in names
        for f in dataclasses.fields(Services):
            assert getattr(svc, f.name) is not None, f.name
        assert isinstance(svc.processor, IngestProcessor) and svc.processor.services is svc
        assert isinstance(svc.judges, JudgePool)
        hooks = {h.__name__ for h in svc.after_flush}
        assert hooks == {"schedule_new_targets", "record_experiments"}
    finally:
        svc.close()


@pytest.mark.parametrize("stack_name", ["embedded", "scaleout"])
def test_close_stops_every_thread_and_pool(make_settings, stack_name: str) -> None:
    settings = make_settings(stack_name)  # starts the test's own servers first
    before = set(threading.enumerate())
    svc = build_services(settings)
    start_worker(svc)  # queue consumer threads, the flush and sweeper loops
    done = threading.Event()
    svc.judges.executor.submit(done.set)  # a judge thread
    assert done.wait(5)
    started = _owned_threads(before)
    assert any(t.name.startswith("owlscope-judge") for t in started)
    assert any("flush_loop" in t.name for t in started)
    assert len(started) >= 4

    svc.close()
    deadline = time.monotonic() + 10
    while _owned_threads(before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _owned_threads(before) == []
    with pytest.raises(RuntimeError):  # the judge pool takes no more work
        svc.judges.executor.submit(done.set)


def _filters_used(template_dir: Path) -> set[str]:
    used: set[str] = set()
    for path in template_dir.rglob("*.html"):
        text = path.read_text()
        for block in re.findall(r"\{\{(.*?)\}\}|\{%(.*?)%\}", text, flags=re.S):
            expr = " ".join(block)
            used.update(re.findall(r"\|\s*([A-Za-z_]\w*)", expr))
    return used


def test_template_environment_is_per_app_and_has_every_filter() -> None:
    from owlscope.app import create_app
    from owlscope.web.templating import TEMPLATE_DIR

    one, two = create_app(), create_app()
    env = one.state.templates.env
    assert env is not two.state.templates.env
    missing = {name for name in _filters_used(TEMPLATE_DIR) if name not in env.filters and name not in env.tests}
    assert missing == set()
    assert {"duration", "cost", "ago", "io_html"} <= set(env.filters)


def _request(path: str, query: str):
    from starlette.requests import Request

    return Request({"type": "http", "method": "GET", "path": path, "query_string": query.encode(), "headers": []})


def test_pager_keeps_every_other_query_parameter() -> None:
    from owlscope.web.templating import build_templates

    env = build_templates().env
    template = env.from_string('{% import "_macros.html" as ui %}{{ ui.pager(request, page, pages, total, "item") }}')
    html = template.render(request=_request("/project/p/datasets/d", "status=ARCHIVED&q=a+b&page=2"),
                           page=2, pages=3, total=120)
    assert 'href="/project/p/datasets/d?status=ARCHIVED&amp;q=a+b&amp;page=1"' in html
    assert 'href="/project/p/datasets/d?status=ARCHIVED&amp;q=a+b&amp;page=3"' in html
    assert "Page 2 of 3 · 120 items" in html
    single = template.render(request=_request("/x", ""), page=1, pages=1, total=1)
    assert "Previous" not in single and "Next" not in single and "1 item" in single


def test_list_templates_use_the_one_pager() -> None:
    from owlscope.web.templating import TEMPLATE_DIR

    hand_written = [str(p.relative_to(TEMPLATE_DIR)) for p in TEMPLATE_DIR.rglob("*.html")
                    if re.search(r'href="[^"]*[?&]page=', p.read_text())]
    assert hand_written == []


def test_a_refused_headless_init_stops_the_start_and_releases_everything(make_settings) -> None:
    from owlscope.config import ConfigError

    settings = make_settings("embedded", init_org_id="org", init_user_email="a@example.com",
                             init_user_password="short")
    before = set(threading.enumerate())
    with pytest.raises(ConfigError, match="LANGFUSE_INIT_USER_PASSWORD"):
        build_services(settings)
    assert _owned_threads(before) == []
