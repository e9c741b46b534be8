"""Decoded requests handed from accept to the worker of the same process.

The web decodes every OTLP request to validate it before the blob is written; when a worker runs
in the same process (`owlscope serve`), it takes the decoded request from here instead of reading
and decoding the blob again. The blob stays the durable copy: a miss (another process, an entry
evicted under a backlog, a job re-enqueued by the sweeper) reads and decodes the blob as before.
Bounded by the number of spans held, so a backlog cannot grow memory without limit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

DEFAULT_MAX_ITEMS = 20_000


class Handoff:
    def __init__(self, max_items: int = DEFAULT_MAX_ITEMS):
        self.max_items = max_items
        self.enabled = False  # set while a worker consumes in this process
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Any, Any, int]] = OrderedDict()
        self._items = 0
        self.hits = 0
        self.misses = 0

    def put(self, key: str, envelope: Any, decoded: Any, items: int) -> None:
        if not self.enabled or items > self.max_items:
            return
        with self._lock:
            self._entries[key] = (envelope, decoded, items)
            self._items += items
            while self._items > self.max_items:
                _, (_, _, n) = self._entries.popitem(last=False)  # the oldest goes: it reads its blob
                self._items -= n

    def take(self, key: str) -> tuple[Any, Any, int] | None:
        """(envelope, decoded payload, items) put under `key`, removed; None when not here."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                self.misses += 1
                return None
            self._items -= entry[2]
            self.hits += 1
            return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._items = 0
