"""The reliability campaign: hostile input and faults against a real server. Every test here is
marked `reliability` (run by the normal `pytest` command; `-m "not reliability"` skips them)."""

from __future__ import annotations

import pytest

from conftest import LiveServer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def server(make_settings):
    """server(**settings) -> a running embedded LiveServer, stopped at teardown."""
    started: list[LiveServer] = []

    def start(*, run_worker: bool = True, **overrides) -> LiveServer:
        srv = LiveServer(make_settings("embedded", **overrides), run_worker=run_worker).__enter__()
        started.append(srv)
        return srv

    yield start
    for srv in reversed(started):
        srv.__exit__(None, None, None)
