"""The in-process handoff of decoded requests from accept to the worker: bounded, taken once."""

from __future__ import annotations

from owlscope.pipeline.handoff import Handoff


def test_a_request_is_taken_once() -> None:
    h = Handoff(max_items=100)
    h.enabled = True
    h.put("k1", "env", "decoded", 10)
    assert h.take("k1") == ("env", "decoded", 10)
    assert h.take("k1") is None  # a second job for the same blob reads the blob
    assert (h.hits, h.misses) == (1, 1)


def test_nothing_is_held_without_a_worker_in_the_process() -> None:
    h = Handoff(max_items=100)
    h.put("k1", "env", "decoded", 10)
    assert h.take("k1") is None


def test_the_oldest_requests_go_when_the_bound_is_reached() -> None:
    h = Handoff(max_items=25)
    h.enabled = True
    for i in range(4):
        h.put(f"k{i}", "env", i, 10)
    assert h.take("k0") is None and h.take("k1") is None  # evicted: their blobs are read instead
    assert h.take("k2") == ("env", 2, 10) and h.take("k3") == ("env", 3, 10)
    h.put("big", "env", "decoded", 26)  # larger than the bound: never held
    assert h.take("big") is None


def test_clear_drops_everything() -> None:
    h = Handoff(max_items=100)
    h.enabled = True
    h.put("k1", "env", "decoded", 10)
    h.clear()
    assert h.take("k1") is None
