"""What the dataset pages show: the runs table of a dataset and the item-by-item comparison of runs.

Both read the run items from the OLTP store and, for just those traces, outputs, latencies, costs
and scores from the OLAP store.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from owlscope.datasets.olap_reads import (
    observations_by_key,
    scores_for_runs,
    scores_for_traces,
    trace_summaries,
)
from owlscope.datasets.runs import find_run, run_to_api
from owlscope.datasets.store import find_dataset
from owlscope.errors import NotFound
from owlscope.storage.olap.client import Olap
from owlscope.storage.oltp.dataset_models import DatasetItem, DatasetRun, DatasetRunItem


def score_value(score: dict[str, Any]) -> Any:
    """A score as one value: the number for NUMERIC/BOOLEAN, the label for CATEGORICAL/TEXT."""
    if score.get("dataType") in ("NUMERIC", "BOOLEAN"):
        return score.get("value")
    return score.get("stringValue")


def _averages(scores: list[dict[str, Any]]) -> dict[str, float]:
    sums: dict[str, list[float]] = defaultdict(list)
    for s in scores:
        if s.get("dataType") in ("NUMERIC", "BOOLEAN") and isinstance(s.get("value"), int | float):
            sums[s["name"]].append(float(s["value"]))
    return {name: sum(vals) / len(vals) for name, vals in sorted(sums.items())}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def runs_table(sessions: sessionmaker[Session], olap: Olap, *, project_id: str, dataset_name: str) -> list[dict]:
    """Per run of the dataset, newest first: the run (API shape) plus `itemCount`, `avgLatency`
    (seconds), `avgTotalCost`, `totalCost` (USD), `avgScores` (numeric/boolean item scores by name)
    and `runScores` (run-level scores by name, latest value)."""
    with sessions() as session:
        ds = find_dataset(session, project_id, dataset_name)
        runs = session.scalars(select(DatasetRun).where(
            DatasetRun.project_id == project_id, DatasetRun.dataset_id == ds.id,
        ).order_by(DatasetRun.created_at.desc(), DatasetRun.id)).all()
        items = session.execute(select(DatasetRunItem.run_id, DatasetRunItem.trace_id).where(
            DatasetRunItem.project_id == project_id, DatasetRunItem.run_id.in_([r.id for r in runs]),
        )).all() if runs else []
    traces_by_run: dict[str, list[str]] = defaultdict(list)
    for run_id, trace_id in items:
        traces_by_run[run_id].append(trace_id)
    all_traces = {t for _, t in items}
    summaries = trace_summaries(olap, project_id, all_traces)
    trace_scores = scores_for_traces(olap, project_id, all_traces)
    run_scores = scores_for_runs(olap, project_id, [r.id for r in runs])
    out = []
    for run in runs:
        tids = traces_by_run.get(run.id, [])
        latencies = [summaries[t]["latency"] for t in tids if summaries.get(t, {}).get("latency") is not None]
        costs = [summaries[t]["cost"] for t in tids if summaries.get(t, {}).get("cost") is not None]
        scores = [s for t in tids for s in trace_scores.get(t, [])]
        out.append({
            **run_to_api(run, ds.name),
            "itemCount": len(tids),
            "avgLatency": _mean(latencies),
            "avgTotalCost": _mean(costs),
            "totalCost": sum(costs) if costs else None,
            "avgScores": _averages(scores),
            "runScores": {s["name"]: score_value(s) for s in run_scores.get(run.id, [])},
        })
    return out


def compare_runs(
    sessions: sessionmaker[Session], olap: Olap, *, project_id: str, dataset_name: str, run_names: list[str],
) -> dict[str, Any]:
    """Item by item, the given runs side by side.

    Returns {"runs": [run...], "items": [{"itemId", "status", "input", "expectedOutput",
    "metadata", "runs": {run_name: None | {"traceId", "observationId", "output", "scores":
    {name: value}, "latency", "cost"}}}]}, items newest first. When a run has several run items
    for one item (a re-run), the latest is shown."""
    with sessions() as session:
        ds = find_dataset(session, project_id, dataset_name)
        runs = []
        for name in run_names:
            run = find_run(session, project_id, ds.id, name)
            if run is None:
                raise NotFound(f"Dataset run {name!r} not found in dataset {dataset_name!r}")
            runs.append(run)
        items = session.scalars(select(DatasetItem).where(
            DatasetItem.project_id == project_id, DatasetItem.dataset_id == ds.id,
        ).order_by(DatasetItem.created_at.desc(), DatasetItem.id)).all()
        run_items = session.scalars(select(DatasetRunItem).where(
            DatasetRunItem.project_id == project_id, DatasetRunItem.run_id.in_([r.id for r in runs]),
        ).order_by(DatasetRunItem.created_at, DatasetRunItem.id)).all() if runs else []
    latest: dict[tuple[str, str], DatasetRunItem] = {}
    for ri in run_items:
        latest[(ri.run_id, ri.item_key)] = ri  # ordered by time: the last one wins
    picked = list(latest.values())
    obs = observations_by_key(olap, project_id, [(r.trace_id, r.observation_id) for r in picked if r.observation_id])
    summaries = trace_summaries(olap, project_id, {r.trace_id for r in picked})
    scores = scores_for_traces(olap, project_id, {r.trace_id for r in picked})
    name_by_id = {r.id: r.name for r in runs}

    def cell(ri: DatasetRunItem | None) -> dict[str, Any] | None:
        if ri is None:
            return None
        t = summaries.get(ri.trace_id) or {}
        o = obs.get((ri.trace_id, ri.observation_id)) if ri.observation_id else None
        return {
            "traceId": ri.trace_id, "observationId": ri.observation_id,
            "output": (o or t).get("output"),
            "scores": {s["name"]: score_value(s) for s in scores.get(ri.trace_id, [])},
            "latency": t.get("latency"), "cost": t.get("cost"),
        }

    return {
        "runs": [run_to_api(r, ds.name) for r in runs],
        "items": [{
            "itemId": it.id, "status": it.status, "input": it.input, "expectedOutput": it.expected_output,
            "metadata": it.metadata_,
            "runs": {name_by_id[r.id]: cell(latest.get((r.id, it.id))) for r in runs},
        } for it in items],
    }
