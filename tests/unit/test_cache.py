"""owlscope.cache.TTLCache: the one in-process expiring cache."""

from __future__ import annotations

from owlscope.cache import TTLCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_their_ttl() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(10.0, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2, ttl_seconds=2.0)  # a shorter life for one entry
    cache.put("c", 3, ttl_seconds=50.0)  # never longer than the cache's own TTL
    clock.now += 5
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    clock.now += 6
    assert (cache.get("a"), cache.get("c"), len(cache)) == (None, None, 0)


def test_bounded_and_least_recently_used_goes_first() -> None:
    cache: TTLCache[str, int] = TTLCache(60.0, max_entries=2, clock=Clock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)


def test_get_or_load_loads_once_per_ttl_and_pop_where_forgets() -> None:
    clock = Clock()
    cache: TTLCache[tuple[str, int], str] = TTLCache(30.0, clock=clock)
    calls: list[int] = []

    def load() -> str:
        calls.append(1)
        return f"value {len(calls)}"

    assert cache.get_or_load(("p", 1), load) == "value 1"
    assert cache.get_or_load(("p", 1), load) == "value 1"
    clock.now += 31
    assert cache.get_or_load(("p", 1), load) == "value 2"
    cache.put(("q", 1), "other")
    cache.pop_where(lambda key, _value: key[0] == "p")
    assert (cache.get(("p", 1)), cache.get(("q", 1))) == (None, "other")
    cache.pop(("q", 1))
    cache.put(("r", 1), "x", ttl_seconds=0)  # nothing to keep
    assert len(cache) == 0
