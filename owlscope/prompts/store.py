"""Prompt versions: create, fetch (resolved and cached), list, relabel, delete.

`PromptStore` is what the API and the UI call. Every write runs in one transaction that holds a
per-name write lock (PostgreSQL advisory lock; SQLite's write lock taken up front), keeps the
invariants (labels unique per name, `latest` on the newest version, one type per name, tags the
same on every version) and then invalidates the project's prompt cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from owlscope.errors import InvalidRequest, NotFound
from owlscope.prompts.cache import PromptCache
from owlscope.prompts.composition import DependencyTag, PromptNode, resolve
from owlscope.prompts.linking import forget_prompt_ids
from owlscope.prompts.model import LATEST, PRODUCTION, PromptInput, to_api, validate_label, validate_labels
from owlscope.storage.oltp.base import new_id
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.prompt_models import Prompt
from owlscope.wire import PageRequest, iso

DEFAULT_LIMIT = 50

# Told of every change inside its transaction: (session, project id, action "created" | "updated" |
# "deleted", the versions as the API's Prompt). What it returns runs after the commit (prompt webhooks
# write their outbox rows in the transaction and enqueue them after it).
PromptListener = Callable[[Session, str, str, list[dict[str, Any]]], Callable[[], None] | None]


def _node(row: Prompt) -> PromptNode:
    return PromptNode(id=row.id, name=row.name, version=row.version, type=row.type, prompt=row.prompt,
                      labels=tuple(row.labels or ()))


def _with_label(labels: list[str] | None, label: str) -> list[str]:
    labels = list(labels or [])
    return labels if label in labels else [*labels, label]


def _without(labels: list[str] | None, remove: set[str]) -> list[str]:
    return [label for label in labels or [] if label not in remove]


def _describe(name: str, version: int | None, label: str | None) -> str:
    return f"Prompt '{name}'" + (f" version {version}" if version is not None else f" with label '{label}'")


class PromptStore:
    def __init__(self, sessions: sessionmaker[Session], cache: PromptCache,
                 listeners: Sequence[PromptListener] = ()):
        self.sessions = sessions
        self.cache = cache
        self.listeners = tuple(listeners)

    # ---- transactions ------------------------------------------------------------------
    @contextmanager
    def _write(self, project_id: str, name: str) -> Iterator[Session]:
        """A transaction holding the write lock for one prompt name; invalidates caches after commit."""
        with write_transaction(self.sessions) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                                {"k": f"prompt:{project_id}:{name}"})
            session.info["after_commit"] = after = []
            yield session
        self.invalidate(project_id)
        for fn in after:
            fn()

    def _tell(self, session: Session, project_id: str, action: str, prompts: list[dict[str, Any]]) -> None:
        for listener in self.listeners:
            then = listener(session, project_id, action, prompts)
            if then is not None:
                session.info["after_commit"].append(then)

    def invalidate(self, project_id: str) -> None:
        self.cache.invalidate(project_id)
        forget_prompt_ids(self.sessions, project_id)

    @staticmethod
    def _versions(session: Session, project_id: str, name: str) -> list[Prompt]:
        """All versions of a name, newest first."""
        return list(session.scalars(
            select(Prompt).where(Prompt.project_id == project_id, Prompt.name == name)
            .order_by(Prompt.version.desc())
        ))

    # ---- writes ------------------------------------------------------------------------
    def create(self, project_id: str, data: PromptInput, *, created_by: str | None = None) -> dict[str, Any]:
        """A new version of `data.name` (version 1 if the name is new); returns it unresolved."""
        for attempt in range(5):
            try:
                return self._create(project_id, data, created_by)
            except IntegrityError:  # another writer took the version number (no lock on a new name)
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _create(self, project_id: str, data: PromptInput, created_by: str | None) -> dict[str, Any]:
        with self._write(project_id, data.name) as session:
            versions = self._versions(session, project_id, data.name)
            latest = versions[0] if versions else None
            if latest is not None and latest.type != data.type:
                raise InvalidRequest(
                    f"Prompt '{data.name}' is a {latest.type} prompt; a new version must also be {latest.type}. "
                    "Use another name for a prompt of another type."
                )
            version = (latest.version + 1) if latest else 1
            row = Prompt(
                id=new_id(), project_id=project_id, name=data.name, version=version, type=data.type,
                prompt=data.prompt, config=data.config, labels=[*data.labels, LATEST],
                tags=data.tags if data.tags is not None else list(latest.tags or []) if latest else [],
                commit_message=data.commit_message, created_by=created_by,
            )
            # Refuse references that do not resolve now (missing, cyclic, too deep): nothing is written.
            resolve(_node(row), self._lookup(session, project_id))
            moving = set(row.labels)
            for old in versions:
                changes: dict[str, Any] = {}
                if moving & set(old.labels or ()):
                    changes["labels"] = _without(old.labels, moving)
                if data.tags is not None and list(old.tags or []) != data.tags:
                    changes["tags"] = list(data.tags)
                for key, value in changes.items():
                    setattr(old, key, value)
            session.add(row)
            session.flush()
            created = to_api(row)
            self._tell(session, project_id, "created", [created])
            return created

    def update_labels(
        self, project_id: str, name: str, version: int, new_labels: list[str], *, replace: bool = False,
    ) -> dict[str, Any]:
        """Put `new_labels` on one version, taking them off any other version of the name.

        The API adds them to the version's labels; the UI may pass `replace=True` to set the exact
        list (`latest` stays where it is either way)."""
        labels = validate_labels(new_labels, field_name="newLabels")
        with self._write(project_id, name) as session:
            versions = self._versions(session, project_id, name)
            target = next((v for v in versions if v.version == version), None)
            if target is None:
                raise NotFound(f"Prompt '{name}' version {version} not found")
            keep = [LATEST] if LATEST in (target.labels or []) else []
            current = keep if replace else list(target.labels or [])
            target.labels = list(dict.fromkeys([*current, *labels]))
            moving = set(labels)
            for other in versions:
                if other is not target and moving & set(other.labels or ()):
                    other.labels = _without(other.labels, moving)
            session.flush()
            updated = to_api(target)
            self._tell(session, project_id, "updated", [updated])
            return updated

    def delete(self, project_id: str, name: str, *, version: int | None = None, label: str | None = None) -> int:
        """Delete every version of a name, one version, or the version carrying `label`.
        Returns the number of versions deleted; `latest` moves to the newest one left."""
        if version is not None and label is not None:
            raise InvalidRequest("Give version or label to delete, not both")
        if label is not None:
            validate_label(label, allow_latest=True)
        with self._write(project_id, name) as session:
            versions = self._versions(session, project_id, name)
            if version is not None:
                doomed = [v for v in versions if v.version == version]
            elif label is not None:
                doomed = [v for v in versions if label in (v.labels or [])]
            else:
                doomed = versions
            if not doomed:
                what = _describe(name, version, label) if (version or label) else f"Prompt '{name}'"
                raise NotFound(f"{what} not found")
            gone = [to_api(v) for v in doomed]
            session.execute(delete(Prompt).where(Prompt.id.in_([v.id for v in doomed])))
            left = [v for v in versions if v not in doomed]
            if left and not any(LATEST in (v.labels or []) for v in left):
                left[0].labels = _with_label(left[0].labels, LATEST)
            session.flush()
            self._tell(session, project_id, "deleted", gone)
            return len(doomed)

    # ---- reads -------------------------------------------------------------------------
    def _lookup(self, session: Session, project_id: str):
        def lookup(tag: DependencyTag) -> PromptNode | None:
            row = self._find(session, project_id, tag.name, version=tag.version, label=tag.label)
            return _node(row) if row is not None else None

        return lookup

    def _find(
        self, session: Session, project_id: str, name: str, *, version: int | None, label: str | None,
    ) -> Prompt | None:
        base = select(Prompt).where(Prompt.project_id == project_id, Prompt.name == name)
        if version is not None:
            if not 1 <= version <= 2**31 - 1:  # no such version (and the database takes 64-bit integers only)
                return None
            return session.scalars(base.where(Prompt.version == version)).first()
        # Labels are a JSON list: pick the version in Python (a name has few versions).
        rows = session.execute(
            select(Prompt.id, Prompt.labels).where(Prompt.project_id == project_id, Prompt.name == name)
            .order_by(Prompt.version.desc())
        ).all()
        hit = next((r.id for r in rows if label in (r.labels or [])), None)
        return session.get(Prompt, hit) if hit else None

    def get(
        self, project_id: str, name: str, *, version: int | None = None, label: str | None = None,
        resolve_refs: bool = True,
    ) -> dict[str, Any]:
        """One version as the API's `Prompt`; neither version nor label means the `production` label."""
        if version is not None and label is not None:
            raise InvalidRequest("Give version or label, not both")
        if version is None and label is None:
            label = PRODUCTION
        with self.sessions() as session:
            row = self._find(session, project_id, name, version=version, label=label)
            if row is None:
                raise NotFound(f"{_describe(name, version, label)} not found")
            if not resolve_refs:
                return to_api(row)
            content, graph = resolve(_node(row), self._lookup(session, project_id))
            return to_api(row, prompt=content, resolution_graph=graph)

    def get_json(self, project_id: str, name: str, *, version: int | None = None, label: str | None = None) -> bytes:
        """The resolved prompt as JSON bytes, from the cache when it holds it."""
        if version is None and label is None:
            label = PRODUCTION
        key = f"{name}\x00v{version}" if version is not None else f"{name}\x00l{label}"
        body, generation = self.cache.get(project_id, key)
        if body is not None:
            return body
        body = orjson.dumps(self.get(project_id, name, version=version, label=label))
        self.cache.set(project_id, generation, key, body)
        return body

    def versions(self, project_id: str, name: str) -> list[dict[str, Any]]:
        """Every version of a name, newest first, unresolved (for the UI's history view)."""
        with self.sessions() as session:
            rows = self._versions(session, project_id, name)
        if not rows:
            raise NotFound(f"Prompt '{name}' not found")
        return [to_api(r) for r in rows]

    def list(
        self, project_id: str, *, name: str | None = None, label: str | None = None, tag: str | None = None,
        from_updated_at: datetime | None = None, to_updated_at: datetime | None = None,
        page: int = 1, limit: int = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        """`PromptMetaListResponse`: one entry per name, built from the versions that match the filters."""
        req = PageRequest.of(page, limit)
        q = select(Prompt.name, Prompt.version, Prompt.type, Prompt.labels, Prompt.tags, Prompt.config,
                   Prompt.updated_at).where(Prompt.project_id == project_id)
        if name is not None:
            q = q.where(Prompt.name == name)
        if from_updated_at is not None:
            q = q.where(Prompt.updated_at >= from_updated_at)
        if to_updated_at is not None:
            q = q.where(Prompt.updated_at < to_updated_at)
        with self.sessions() as session:
            rows = session.execute(q.order_by(Prompt.name, Prompt.version.desc())).all()
        groups: dict[str, list[Any]] = {}
        for r in rows:
            if label is not None and label not in (r.labels or []):
                continue
            if tag is not None and tag not in (r.tags or []):
                continue
            groups.setdefault(r.name, []).append(r)
        names = sorted(groups)
        total = len(names)
        data = []
        for n in names[req.offset: req.offset + req.limit]:
            vs = groups[n]  # newest first
            data.append({
                "name": n,
                "type": vs[0].type,
                "versions": sorted(v.version for v in vs),
                "labels": sorted({lb for v in vs for lb in v.labels or []}),
                "tags": list(vs[0].tags or []),
                "lastUpdatedAt": iso(max(v.updated_at for v in vs)),
                "lastConfig": vs[0].config if vs[0].config is not None else {},
            })
        return {"data": data, "meta": req.meta(total)}
