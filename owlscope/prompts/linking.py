"""Link generations to prompt versions: (prompt name, version) -> prompt id, for the ingestion worker.

Cached per sessionmaker (i.e. per database) and project: found ids for PROMPT_ID_TTL seconds,
misses for MISS_TTL seconds (a prompt created just after its first generations is picked up
soon). Writes through `PromptStore` in this process forget the project's entries at once; in
another process an id can be stale for at most PROMPT_ID_TTL (only when a version number is
deleted and then reused).
"""

from __future__ import annotations

import threading
from weakref import WeakKeyDictionary

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from owlscope.cache import TTLCache
from owlscope.storage.oltp.prompt_models import Prompt

PROMPT_ID_TTL = 60.0
MISS_TTL = 5.0
_MAX_ENTRIES = 50_000
_CHUNK = 200

_Key = tuple[str, str, int]  # project_id, name, version
# The cached value is the prompt id, or "" for a pair known not to exist (for MISS_TTL).
_caches: WeakKeyDictionary[sessionmaker, TTLCache[_Key, str]] = WeakKeyDictionary()
_lock = threading.Lock()


def _cache(sessions: sessionmaker[Session]) -> TTLCache[_Key, str]:
    with _lock:
        cache = _caches.get(sessions)
        if cache is None:
            cache = _caches[sessions] = TTLCache(PROMPT_ID_TTL, _MAX_ENTRIES)
        return cache


def resolve_prompt_ids(
    sessions: sessionmaker[Session], project_id: str, pairs: set[tuple[str, int]],
) -> dict[tuple[str, int], str]:
    """The id of each (name, version) that exists in the project; pairs not found are left out."""
    cache = _cache(sessions)
    found: dict[tuple[str, int], str] = {}
    missing: list[tuple[str, int]] = []
    for pair in pairs:
        hit = cache.get((project_id, *pair))
        if hit is None:
            missing.append(pair)
        elif hit:
            found[pair] = hit
    if not missing:
        return found
    fetched: dict[tuple[str, int], str] = {}
    with sessions() as session:
        for i in range(0, len(missing), _CHUNK):
            chunk = missing[i:i + _CHUNK]
            rows = session.execute(
                select(Prompt.name, Prompt.version, Prompt.id).where(
                    Prompt.project_id == project_id,
                    tuple_(Prompt.name, Prompt.version).in_(chunk),
                )
            ).all()
            fetched.update({(r.name, r.version): r.id for r in rows})
    for pair in missing:
        pid = fetched.get(pair, "")
        cache.put((project_id, *pair), pid, ttl_seconds=PROMPT_ID_TTL if pid else MISS_TTL)
    found.update(fetched)
    return found


def forget_prompt_ids(sessions: sessionmaker[Session], project_id: str) -> None:
    """Drop the cached ids of one project (called after every prompt write)."""
    with _lock:
        cache = _caches.get(sessions)
    if cache is not None:
        cache.pop_where(lambda key, _pid: key[0] == project_id)
