"""The one in-process TTL cache: a bounded map whose entries expire, safe to share between threads.

It wraps `cachetools.TLRUCache` (least recently used goes first when full; each entry may carry its
own time to live) behind a lock, with the few operations callers need. Every in-process cache of
the server that ends by time (API keys, UI read results, enrichment lookups) is one of these; the
embedded store's read results, which end by a write that can change them instead, are `storage/olap/results.py`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TLRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        # The value stored is (expires_at, value), so put() can give one entry a shorter life.
        self._entries: TLRUCache[K, tuple[float, V]] = TLRUCache(
            maxsize=max_entries, ttu=lambda _k, v, _now: v[0], timer=clock)
        self._clock = clock

    def get(self, key: K) -> V | None:
        with self._lock:
            hit = self._entries.get(key)
        return None if hit is None else hit[1]

    def put(self, key: K, value: V, *, ttl_seconds: float | None = None) -> None:
        ttl = self.ttl_seconds if ttl_seconds is None else min(ttl_seconds, self.ttl_seconds)
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl, value)

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """The cached value, or `load()` stored for next time (two threads may both load once)."""
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None:
            return hit[1]
        value = load()
        self.put(key, value)
        return value

    def pop(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def pop_where(self, predicate: Callable[[K, V], bool]) -> None:
        with self._lock:
            for key in [k for k, (_, v) in self._entries.items() if predicate(k, v)]:
                self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            self._entries.expire()
            return len(self._entries)
