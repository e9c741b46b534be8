"""Record experiment runs from ingested spans (SDK v5 `run_experiment`, SDK v4 `item.run`).

The SDKs mark every span of an experiment item with `langfuse.experiment.*` attributes; the OTel
mapper keeps them under the observation metadata's `experiment` key (see
`owlscope.ingestion.otel.experiment_attributes`). After each batch insert this hook turns them
into runs and run items, without any run-item API call:

- run = (dataset, `experiment.name` — the run name); its id is the SDK's `experiment.id`, which
  for a dataset the SDK derives exactly as the server does, so run-level scores find it; local
  data (no dataset) makes a run without a dataset, found by that id;
- run item = (run, item, trace), pointing at the item's root observation (the task span), with
  the dataset item version the SDK ran against.

It is idempotent (insert-or-ignore plus fill-in updates): a replayed blob, or the spans of one
item arriving in several batches, change nothing more.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select

from owlscope.datasets.common import parse_time
from owlscope.datasets.runs import ensure_run, record_run_item
from owlscope.errors import InvalidRequest
from owlscope.storage.oltp.dataset_models import ITEM_ID_LENGTH, RUN_NAME_LENGTH, Dataset, DatasetItem
from owlscope.storage.oltp.db import write_transaction

if TYPE_CHECKING:
    from owlscope.ingestion.rows import ObservationEvent, Rows
    from owlscope.services import Services

log = logging.getLogger("owlscope.datasets")


@dataclass
class _Item:
    project_id: str
    run_id: str
    run_name: str
    dataset_id: str | None
    item_key: str
    trace_id: str
    observation_id: str | None = None
    description: str | None = None
    metadata: Any = None
    version: datetime | None = None
    created_at: datetime | None = None
    spans: list[str] = field(default_factory=list)


def experiment_of(obs: ObservationEvent) -> dict[str, Any] | None:
    """The experiment attributes stored on an observation, or None."""
    md = obs.metadata
    if not md or '"experiment"' not in md:
        return None
    try:
        parsed = orjson.loads(md)
    except orjson.JSONDecodeError:
        return None
    exp = parsed.get("experiment") if isinstance(parsed, dict) else None
    if not isinstance(exp, dict) or not exp.get("experiment_id") or not exp.get("experiment_name"):
        return None
    if not exp.get("dataset_item_id"):
        return None
    if len(exp["experiment_name"]) > RUN_NAME_LENGTH or len(exp["dataset_item_id"]) > ITEM_ID_LENGTH \
            or len(exp["experiment_id"]) > ITEM_ID_LENGTH or len(obs.trace_id) > ITEM_ID_LENGTH:
        log.warning("experiment span %s has an over-long run name or id; not recorded as a run item", obs.id)
        return None
    return exp


def collect(rows: Rows) -> list[_Item]:
    """Group the experiment spans of a batch by (project, run, item, trace)."""
    found: dict[tuple[str, str, str | None, str, str, str], _Item] = {}
    for obs in rows.observations:
        exp = experiment_of(obs)
        if exp is None:
            continue
        key = (obs.project_id, exp["experiment_id"], exp.get("dataset_id"), exp["experiment_name"],
               exp["dataset_item_id"], obs.trace_id)
        rec = found.get(key)
        if rec is None:
            rec = found[key] = _Item(
                project_id=obs.project_id, run_id=exp["experiment_id"], run_name=exp["experiment_name"],
                dataset_id=exp.get("dataset_id"), item_key=exp["dataset_item_id"], trace_id=obs.trace_id,
            )
        rec.spans.append(obs.id)
        rec.observation_id = rec.observation_id or exp.get("root_observation_id")
        rec.description = rec.description or exp.get("experiment_description")
        if rec.metadata is None and isinstance(exp.get("experiment_metadata"), dict):
            rec.metadata = exp["experiment_metadata"]
        if rec.version is None and exp.get("dataset_item_version"):
            try:
                rec.version = parse_time(exp["dataset_item_version"], "dataset_item_version")
            except InvalidRequest:
                pass
        start = obs.start_time
        if start is not None and (rec.created_at is None or start < rec.created_at):
            rec.created_at = start
    return list(found.values())


def record_experiments(services: Services, rows: Rows) -> int:
    """The after-flush hook: create or complete the runs and run items these rows describe.
    Returns the number of run items touched."""
    items = collect(rows)
    if not items:
        return 0
    by_project: dict[str, list[_Item]] = {}
    for it in items:
        by_project.setdefault(it.project_id, []).append(it)
    for project_id, recs in by_project.items():
        with write_transaction(services.sessions) as session:
            ds_ids = {r.dataset_id for r in recs if r.dataset_id}
            known = set(session.scalars(select(Dataset.id).where(
                Dataset.project_id == project_id, Dataset.id.in_(ds_ids)))) if ds_ids else set()
            item_keys = {r.item_key for r in recs if r.dataset_id in known}
            items_known = {
                (i.id, i.dataset_id) for i in session.scalars(select(DatasetItem).where(
                    DatasetItem.project_id == project_id, DatasetItem.id.in_(item_keys)))
            } if item_keys else set()
            for r in recs:
                # A dataset of another project, or one deleted since, records as a run without a dataset.
                dataset_id = r.dataset_id if r.dataset_id in known else None
                run = ensure_run(session, project_id=project_id, dataset_id=dataset_id, name=r.run_name,
                                 run_id=r.run_id, description=r.description, metadata=r.metadata,
                                 created_at=r.created_at)
                linked = r.item_key if (r.item_key, dataset_id) in items_known else None
                record_run_item(session, run, item_key=r.item_key, dataset_item_id=linked, trace_id=r.trace_id,
                                observation_id=r.observation_id, dataset_item_version=r.version,
                                created_at=r.created_at)
    return len(items)
