"""The server-side cache of resolved prompt responses (JSON bytes, ready to send).

Every change to a project's prompts bumps that project's *generation*; the generation is part of
every cache key, so one bump makes all of the project's entries unreachable at once (they expire
on their own). Readers can never resurrect stale data: a reader that saw the old generation
writes under the old key, which nobody reads any more.

- `LocalPromptCache`: in-process (embedded mode: one process serves every request).
- `RedisPromptCache`: Redis when REDIS_URL is set, shared by every web process. The generation is
  a counter key per project; a read is ONE round trip (a Lua script reads the generation and the
  entry together). If Redis is unreachable reads miss and fall through to the database.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from owlscope.cache import TTLCache

log = logging.getLogger(__name__)


class PromptCache(Protocol):
    def get(self, project_id: str, key: str) -> tuple[bytes | None, int]:
        """The cached bytes (or None) and the generation they were looked up under."""

    def set(self, project_id: str, generation: int, key: str, value: bytes) -> None: ...

    def invalidate(self, project_id: str) -> None: ...

    def close(self) -> None: ...


class LocalPromptCache:
    """Prompts cached in process, keyed by (project, generation, key) in the one TTL cache class. A
    change to a project's prompts bumps its generation, so entries computed before it are never read."""

    def __init__(self, max_entries: int = 10_000, ttl_seconds: float = 300):
        self.ttl_seconds = ttl_seconds
        self._generations: dict[str, int] = {}
        self._entries: TTLCache[tuple[str, int, str], bytes] = TTLCache(ttl_seconds, max_entries)
        self._lock = threading.Lock()

    def get(self, project_id: str, key: str) -> tuple[bytes | None, int]:
        with self._lock:
            gen = self._generations.get(project_id, 0)
        return self._entries.get((project_id, gen, key)), gen

    def set(self, project_id: str, generation: int, key: str, value: bytes) -> None:
        with self._lock:
            if generation != self._generations.get(project_id, 0):
                return  # computed before a change: never store it
        self._entries.put((project_id, generation, key), value)

    def invalidate(self, project_id: str) -> None:
        with self._lock:
            self._generations[project_id] = self._generations.get(project_id, 0) + 1
        self._entries.pop_where(lambda k, _v: k[0] == project_id)

    def close(self) -> None:
        self._entries.clear()


# KEYS[1]: the generation key. ARGV[1], ARGV[2]: entry key prefix and suffix around the generation.
_GET_SCRIPT = """
local gen = redis.call('GET', KEYS[1]) or '0'
return {gen, redis.call('GET', ARGV[1] .. gen .. ARGV[2])}
"""


class RedisPromptCache:
    def __init__(self, url: str, *, ttl_seconds: int = 300, prefix: str = "owlscope:prompts"):
        import redis

        self.ttl_seconds = ttl_seconds
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._get = self._redis.register_script(_GET_SCRIPT)
        self._errors = (redis.RedisError, OSError)

    def _gen_key(self, project_id: str) -> str:
        return f"{self.prefix}:gen:{project_id}"

    def _entry_parts(self, project_id: str, key: str) -> tuple[str, str]:
        return f"{self.prefix}:v:{project_id}:", f":{key}"

    def get(self, project_id: str, key: str) -> tuple[bytes | None, int]:
        head, tail = self._entry_parts(project_id, key)
        try:
            gen, value = self._get(keys=[self._gen_key(project_id)], args=[head, tail])
        except self._errors as exc:
            log.warning("prompt cache read failed (serving from the database): %s", exc)
            return None, -1
        return value, int(gen)

    def set(self, project_id: str, generation: int, key: str, value: bytes) -> None:
        if generation < 0 or self.ttl_seconds <= 0:
            return
        head, tail = self._entry_parts(project_id, key)
        try:
            self._redis.set(f"{head}{generation}{tail}", value, ex=self.ttl_seconds)
        except self._errors as exc:
            log.warning("prompt cache write failed: %s", exc)

    def invalidate(self, project_id: str) -> None:
        try:
            self._redis.incr(self._gen_key(project_id))
        except self._errors:
            # Other processes may serve the old version until their entries expire (ttl_seconds).
            log.exception("prompt cache invalidation failed for project %s", project_id)

    def generation(self, project_id: str) -> int:
        value = self._redis.get(self._gen_key(project_id))
        return int(value or 0)

    def close(self) -> None:
        self._redis.close()


def build_prompt_cache(redis_url: str | None, ttl_seconds: int = 300) -> PromptCache:
    """Redis when a URL is given, else in-process. `ttl_seconds` bounds an entry's life (0: no cache)."""
    if redis_url:
        return RedisPromptCache(redis_url, ttl_seconds=ttl_seconds)
    return LocalPromptCache(ttl_seconds=ttl_seconds)
