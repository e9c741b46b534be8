"""In-process caches the UI must clear after a change."""

from __future__ import annotations

from collections.abc import Iterable

from owlscope.services import Services


def invalidate_api_keys(services: Services, *, key_ids: Iterable[str] = (), project_id: str | None = None) -> None:
    """Forget revoked keys in this process's API key cache at once (other processes: within its TTL)."""
    cache = services.keys
    for key_id in key_ids:
        cache.invalidate(key_id=key_id)
    if project_id is not None:
        cache.invalidate(project_id=project_id)
