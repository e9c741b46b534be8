"""Evaluators on experiments (target `experiment`): they judge dataset run items, i.e. one dataset
item run by an experiment (SDK `run_experiment`, `POST /dataset-run-items`, or a prompt experiment
started in the UI).

- The filter selects by dataset: `{"column": "datasetId", "operator": "any of" | "none of",
  "value": [ids]}` (no filter: every dataset, and runs on local data without a dataset).
- A mapping reads one object, the experiment item: `input` (the dataset item's input as the run
  saw it, else the run's own input), `output` (the run's output: its observation's, else its
  trace's), `metadata` (the run's metadata), `tool_calls` (in that output), `expected_output` and
  `experiment_item_metadata` (the dataset item's; for local data, what the SDK sent with the spans).
- The score goes to the run item's trace (and its observation when it names one), so the runs table
  and the comparison of runs show it next to the scores the SDK wrote.

Run items live in the OLTP store (`dataset_run_items`); the run's trace and observation are read
through the read model (`owlscope.evals.matching`, on `owlscope.tracing`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from owlscope.errors import InvalidRequest
from owlscope.evals import matching
from owlscope.evals.errors import EvalInvalid
from owlscope.storage.olap.client import Olap
from owlscope.storage.oltp.dataset_models import Dataset, DatasetItemVersion, DatasetRun, DatasetRunItem
from owlscope.tracing.filters import OPTION_OPS, conditions_from_list

DATASET_COLUMN = "datasetId"


@dataclass(frozen=True)
class RunItemTarget:
    run_item_id: str
    trace_id: str
    observation_id: str  # "" when the run item names none


@dataclass(frozen=True)
class DatasetFilter:
    include: frozenset[str] | None  # None: every dataset (and runs without one)
    exclude: frozenset[str]


def parse_filter(raw: Any, what: str = "filter") -> DatasetFilter:
    """The stored filter of an experiment evaluator (InvalidRequest on anything but datasetId)."""
    include: set[str] | None = None
    exclude: set[str] = set()
    for i, cond in enumerate(conditions_from_list(raw or [], what)):
        if cond.column != DATASET_COLUMN:
            raise InvalidRequest(f"Invalid {what}[{i}]: an experiment evaluator filters by {DATASET_COLUMN} only "
                                 f"(got {cond.column!r})")
        values = cond.value if isinstance(cond.value, list) else [cond.value]
        if cond.operator not in (*OPTION_OPS, "=") or not values or not all(isinstance(v, str) and v for v in values):
            raise InvalidRequest(f"Invalid {what}[{i}]: use operator 'any of' or 'none of' with a list of dataset ids")
        if cond.operator == "none of":
            exclude.update(values)
        else:
            include = set(values) if include is None else include & set(values)
    return DatasetFilter(None if include is None else frozenset(include), frozenset(exclude))


def check_datasets(session: Session, project_id: str, raw: list[dict[str, Any]], field: str = "filter") -> None:
    """Every dataset id of the filter must be a dataset of the project (400 naming the unknown ones)."""
    flt = parse_filter(raw, field)
    named = set(flt.include or ()) | set(flt.exclude)
    if not named:
        return
    known = dict(session.execute(select(Dataset.id, Dataset.name).where(Dataset.project_id == project_id)).all())
    unknown = sorted(named - set(known))
    if unknown:
        raise EvalInvalid(f"unknown dataset id(s) in {field}: {', '.join(unknown)} (use the ids of "
                          "GET /api/public/v2/datasets)", code="invalid_filter_value",
                          details={"field": field, "column": DATASET_COLUMN, "invalidValues": unknown,
                                   "allowedValues": sorted(known)})


def match_run_items(session: Session, project_id: str, flt: DatasetFilter, *, trace_ids: Iterable[str] | None = None,
                    run_item_ids: Iterable[str] | None = None, after_id: str | None = None,
                    limit: int | None = None, latest_first: bool = False) -> list[RunItemTarget]:
    """The project's run items whose run's dataset passes the filter, by id (after `after_id`) or
    newest first, restricted to those of `trace_ids` or with `run_item_ids` when given."""
    q = (select(DatasetRunItem.id, DatasetRunItem.trace_id, DatasetRunItem.observation_id)
         .join(DatasetRun, (DatasetRun.project_id == DatasetRunItem.project_id) & (DatasetRun.id == DatasetRunItem.run_id))
         .where(DatasetRunItem.project_id == project_id))
    if flt.include is not None:
        q = q.where(DatasetRun.dataset_id.in_(sorted(flt.include)))
    if trace_ids is not None:
        q = q.where(DatasetRunItem.trace_id.in_(sorted(set(trace_ids))))
    if run_item_ids is not None:
        q = q.where(DatasetRunItem.id.in_(sorted(set(run_item_ids))))
    if after_id is not None:
        q = q.where(DatasetRunItem.id > after_id)
    if flt.exclude:
        q = q.where(DatasetRun.dataset_id.is_(None) | DatasetRun.dataset_id.not_in(sorted(flt.exclude)))
    q = q.order_by(DatasetRunItem.created_at.desc(), DatasetRunItem.id.desc()) if latest_first \
        else q.order_by(DatasetRunItem.id)
    return [RunItemTarget(rid, tid, oid or "") for rid, tid, oid in
            session.execute(q if limit is None else q.limit(limit))]


def _item_version(session: Session, ri: DatasetRunItem) -> DatasetItemVersion | None:
    """The dataset item as the run saw it: its version in force at the run item's version (else the latest)."""
    if not ri.dataset_item_id:
        return None
    q = select(DatasetItemVersion).where(DatasetItemVersion.project_id == ri.project_id,
                                         DatasetItemVersion.item_id == ri.dataset_item_id)
    if ri.dataset_item_version is not None:
        q = q.where(DatasetItemVersion.valid_from <= ri.dataset_item_version)
    row = session.scalars(q.order_by(DatasetItemVersion.valid_from.desc(), DatasetItemVersion.id.desc())).first()
    if row is None and ri.dataset_item_version is not None:  # a version older than the item's history
        row = session.scalars(select(DatasetItemVersion).where(
            DatasetItemVersion.project_id == ri.project_id, DatasetItemVersion.item_id == ri.dataset_item_id,
        ).order_by(DatasetItemVersion.valid_from, DatasetItemVersion.id)).first()
    return None if row is None or row.is_deleted else row


def load_experiment_item(session: Session, olap: Olap, project_id: str,
                         run_item_id: str) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """(the experiment item a mapping reads, the run's merged trace) for one run item; None when the
    run item is gone. The trace is None while it is not (yet) stored."""
    ri = session.scalars(select(DatasetRunItem).where(
        DatasetRunItem.project_id == project_id, DatasetRunItem.id == run_item_id)).first()
    if ri is None:
        return None
    item = _item_version(session, ri)
    trace = matching.load_trace(olap, project_id, ri.trace_id)
    run = matching.load_observation(olap, project_id, ri.trace_id, ri.observation_id) if ri.observation_id else None
    run = run or trace or {}
    sent = run.get("metadata", {}).get("experiment") if isinstance(run.get("metadata"), Mapping) else None
    sent = sent if isinstance(sent, Mapping) else {}
    return {
        "input": item.input if item is not None else run.get("input"),
        "output": run.get("output"),
        "metadata": run.get("metadata"),
        "expected_output": item.expected_output if item is not None else sent.get("dataset_item_expected_output"),
        "experiment_item_metadata": item.metadata_ if item is not None else sent.get("dataset_item_metadata"),
        "traceId": ri.trace_id, "observationId": ri.observation_id or None, "datasetItemId": ri.dataset_item_id,
        "runId": ri.run_id,
    }, trace
