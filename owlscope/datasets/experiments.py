"""Experiments: the public API's views over runs (`GET /api/public/experiments`) and run items
(`GET /api/public/experiment-items`), cursor-paged, newest activity first.

An experiment is a run (with or without a dataset); an experiment item is a run item. Times are
the run items' start times; inputs, outputs, levels and environments come from the item's root
observation (or its trace) in the OLAP store, read for one page at a time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from owlscope.datasets.common import parse_time
from owlscope.datasets.items import item_at
from owlscope.datasets.olap_reads import observations_by_key, trace_summaries
from owlscope.errors import InvalidRequest
from owlscope.storage.olap.client import Olap
from owlscope.storage.oltp.dataset_models import DatasetRun, DatasetRunItem
from owlscope.tracing.common import csv_list
from owlscope.tracing.scores import score_v3, scores_by
from owlscope.wire import decode_cursor, encode_cursor, iso

EXPERIMENT_GROUPS = ("core", "metadata", "scores")
ITEM_GROUPS = ("core", "dataset", "io", "metadata", "itemMetadata", "experimentMetadata", "scores")
_SCORE_GROUPS = {"details", "subject"}


# ---- parameters ----------------------------------------------------------------------------------

def _groups(fields: str | None, allowed: tuple[str, ...], default: tuple[str, ...]) -> set[str]:
    if not fields:
        return set(default)
    got = {f.strip() for f in fields.split(",") if f.strip()}
    bad = sorted(got - set(allowed))
    if bad:
        raise InvalidRequest(f"unknown field group(s) {', '.join(bad)}; available: {', '.join(allowed)}")
    return got | {"core"}


def _limit(value: int | None, name: str, default: int, maximum: int) -> int:
    v = default if value is None else value
    if not 1 <= v <= maximum:
        raise InvalidRequest(f"{name} must be from 1 to {maximum}, not {v}")
    return v


def _encode_cursor(ts: datetime, key: str) -> str:
    return encode_cursor([ts.isoformat(), key])


def _decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    ts, key = decode_cursor(cursor, (str, str))
    parsed = parse_time(ts, "cursor")
    if parsed is None:
        raise InvalidRequest("Invalid cursor")
    return parsed, key


_STRING_OPS = ("=", "!=", "contains", "does not contain", "starts with", "ends with")
_LIST_OPS = ("any of", "none of")


def _filter_conditions(text: str | None, columns: dict[str, Any]) -> list[Any]:
    """The `filter` parameter: a JSON array of {column, operator, value} on the given columns."""
    if not text:
        return []
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"filter is not valid JSON: {exc}") from exc
    if not isinstance(raw, list):
        raise InvalidRequest("filter must be a JSON array of conditions")
    out = []
    for i, cond in enumerate(raw):
        if not isinstance(cond, dict) or cond.get("column") not in columns:
            raise InvalidRequest(f"filter[{i}].column must be one of {', '.join(columns)}")
        col, op, value = columns[cond["column"]], cond.get("operator"), cond.get("value")
        if op in _LIST_OPS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidRequest(f"filter[{i}].value must be a list of strings for {op!r}")
            out.append(col.in_(value) if op == "any of" else or_(col.is_(None), col.not_in(value)))
        elif op in _STRING_OPS:
            if not isinstance(value, str):
                raise InvalidRequest(f"filter[{i}].value must be a string for {op!r}")
            out.append({
                "=": lambda c, v: c == v, "!=": lambda c, v: c != v,
                "contains": lambda c, v: c.contains(v, autoescape=True),
                "does not contain": lambda c, v: ~c.contains(v, autoescape=True),
                "starts with": lambda c, v: c.startswith(v, autoescape=True),
                "ends with": lambda c, v: c.endswith(v, autoescape=True),
            }[op](col, value))
        else:
            raise InvalidRequest(f"filter[{i}].operator must be one of {', '.join(_STRING_OPS + _LIST_OPS)}")
    return out


def _window(project_id: str, from_start_time: Any, to_start_time: Any, limit: int | None, score_limit: int | None,
            cursor: str | None) -> tuple[datetime, list[Any], int, int, tuple[datetime, str] | None]:
    """The run items of the time window (fromStartTime required), the page size, the score limit and
    the cursor position."""
    start = parse_time(from_start_time, "fromStartTime")
    if start is None:
        raise InvalidRequest("fromStartTime is required")
    end = parse_time(to_start_time, "toStartTime")
    ri = DatasetRunItem
    conds = [ri.project_id == project_id, ri.created_at >= start]
    if end is not None:
        conds.append(ri.created_at < end)
    return (start, conds, _limit(limit, "limit", 50, 100), _limit(score_limit, "scoreLimit", 50, 50),
            _decode_cursor(cursor))


# ---- experiments ---------------------------------------------------------------------------------

def list_experiments(
    sessions: sessionmaker[Session], olap: Olap | None, *, project_id: str, from_start_time: Any,
    to_start_time: Any = None, fields: str | None = None, limit: int | None = None, score_limit: int | None = None,
    cursor: str | None = None, ids: str | None = None, names: str | None = None, dataset_ids: str | None = None,
    filter: str | None = None,
) -> dict[str, Any]:
    start, conds, lim, slim, after = _window(project_id, from_start_time, to_start_time, limit, score_limit, cursor)
    groups = _groups(fields, EXPERIMENT_GROUPS, ("core",))
    ri, run = DatasetRunItem, DatasetRun
    run_conds = [run.project_id == project_id]
    if ids:
        run_conds.append(run.id.in_(csv_list(ids)))
    if names:
        run_conds.append(run.name.in_(csv_list(names)))
    if dataset_ids:
        run_conds.append(run.dataset_id.in_(csv_list(dataset_ids)))
    run_conds += _filter_conditions(filter, {"id": run.id, "name": run.name, "datasetId": run.dataset_id})
    activity = func.max(ri.created_at)
    q = (
        select(run, func.min(ri.created_at), activity, func.count(ri.id))
        .join(ri, and_(ri.project_id == run.project_id, ri.run_id == run.id))
        .where(*conds, *run_conds).group_by(run.project_id, run.id)
    )
    if after is not None:
        q = q.having(or_(activity < after[0], and_(activity == after[0], run.id > after[1])))
    with sessions() as session:
        rows = session.execute(q.order_by(activity.desc(), run.id).limit(lim + 1)).all()
        page = rows[:lim]
        trace_ids: dict[str, list[str]] = {}
        if olap is not None and page:
            item_conds = [*conds, ri.run_id.in_([r[0].id for r in page])]
            for run_id, trace_id in session.execute(select(ri.run_id, ri.trace_id).where(*item_conds)):
                trace_ids.setdefault(run_id, []).append(trace_id)
    ends: dict[str, datetime] = {}
    if olap is not None and trace_ids:
        all_traces = [t for ts in trace_ids.values() for t in ts]
        summaries = trace_summaries(olap, project_id, all_traces) if len(all_traces) <= 20_000 else {}
        for run_id, ts in trace_ids.items():
            found = [summaries[t]["end"] for t in ts if t in summaries and summaries[t]["end"] is not None]
            if found:
                ends[run_id] = max(found)
    scores = scores_by(olap, project_id, "dataset_run_id", [r[0].id for r in page], newest_first=True) \
        if "scores" in groups and olap is not None else {}
    data = []
    for r, first, last, count in page:
        out: dict[str, Any] = {
            "id": r.id, "name": r.name, "description": r.description, "startTime": iso(max(first, start)),
            "endTime": iso(max(ends.get(r.id, last), last)), "itemCount": count, "datasetId": r.dataset_id,
        }
        if "metadata" in groups:
            out["metadata"] = r.metadata_ if isinstance(r.metadata_, dict) else None
        if "scores" in groups:
            out["scores"] = [score_v3(project_id, s, _SCORE_GROUPS) for s in scores.get(r.id, [])[:slim]]
        data.append(out)
    meta: dict[str, Any] = {}
    if len(rows) > lim:
        last_run, _, last_activity, _ = page[-1]
        meta["cursor"] = _encode_cursor(last_activity, last_run.id)
    return {"data": data, "meta": meta}


# ---- experiment items ----------------------------------------------------------------------------

def list_experiment_items(
    sessions: sessionmaker[Session], olap: Olap | None, *, project_id: str, from_start_time: Any,
    to_start_time: Any = None, fields: str | None = None, limit: int | None = None, score_limit: int | None = None,
    cursor: str | None = None, experiment_ids: str | None = None, experiment_names: str | None = None,
    item_ids: str | None = None, dataset_ids: str | None = None, filter: str | None = None,
) -> dict[str, Any]:
    _, conds, lim, slim, after = _window(project_id, from_start_time, to_start_time, limit, score_limit, cursor)
    groups = _groups(fields, ITEM_GROUPS, ("core", "dataset"))
    ri, run = DatasetRunItem, DatasetRun
    if experiment_ids:
        conds.append(ri.run_id.in_(csv_list(experiment_ids)))
    if experiment_names:
        conds.append(run.name.in_(csv_list(experiment_names)))
    if item_ids:
        conds.append(ri.item_key.in_(csv_list(item_ids)))
    if dataset_ids:
        conds.append(run.dataset_id.in_(csv_list(dataset_ids)))
    conds += _filter_conditions(filter, {"experimentId": ri.run_id, "experimentName": run.name,
                                         "experimentItemId": ri.item_key, "datasetId": run.dataset_id})
    if after is not None:
        conds.append(or_(ri.created_at < after[0], and_(ri.created_at == after[0], ri.id > after[1])))
    q = (select(ri, run).join(run, and_(run.project_id == ri.project_id, run.id == ri.run_id))
         .where(*conds).order_by(ri.created_at.desc(), ri.id).limit(lim + 1))
    with sessions() as session:
        rows = session.execute(q).all()
        page = rows[:lim]
        versions = {}
        if groups & {"io", "itemMetadata"}:
            for r, _ in page:
                if r.dataset_item_id:
                    versions[r.id] = item_at(session, project_id, r.dataset_item_id, r.dataset_item_version)
    obs = observations_by_key(olap, project_id, [(r.trace_id, r.observation_id) for r, _ in page
                                                 if r.observation_id]) if olap is not None and page else {}
    traces = trace_summaries(olap, project_id, [r.trace_id for r, _ in page]) if olap is not None and page else {}
    scores = scores_by(olap, project_id, "trace_id", [r.trace_id for r, _ in page], newest_first=True) \
        if "scores" in groups and olap is not None else {}
    data = [_experiment_item(project_id, r, rn, obs, traces, versions, scores, groups, slim) for r, rn in page]
    meta: dict[str, Any] = {}
    if len(rows) > lim:
        meta["cursor"] = _encode_cursor(page[-1][0].created_at, page[-1][0].id)
    return {"data": data, "meta": meta}


def _experiment_item(
    project_id: str, r: DatasetRunItem, rn: DatasetRun, obs: dict, traces: dict, versions: dict, scores: dict,
    groups: set[str], slim: int,
) -> dict[str, Any]:
    o = obs.get((r.trace_id, r.observation_id)) if r.observation_id else None
    t = traces.get(r.trace_id) or {}
    src = o or t
    exp_md = (o or {}).get("metadata") or {}
    exp = exp_md.get("experiment") if isinstance(exp_md, dict) and isinstance(exp_md.get("experiment"), dict) else {}
    out: dict[str, Any] = {
        "id": r.observation_id or r.id, "traceId": r.trace_id,
        "startTime": iso(src.get("start") or r.created_at), "endTime": iso(src.get("end")),
        "level": (o or {}).get("level", "DEFAULT"), "environment": (o or {}).get("environment", "default"),
        "experimentId": rn.id, "experimentName": rn.name, "experimentItemId": r.item_key,
    }
    if "dataset" in groups:
        out["experimentDatasetId"] = rn.dataset_id
        out["experimentItemVersion"] = iso(r.dataset_item_version)
    version = versions.get(r.id)
    if "io" in groups:
        out["input"] = src.get("input")
        out["output"] = src.get("output")
        out["expectedOutput"] = version.expected_output if version is not None \
            else exp.get("dataset_item_expected_output")
    if "metadata" in groups:
        md = (o or {}).get("metadata")
        out["metadata"] = md if isinstance(md, dict) else None
    if "itemMetadata" in groups:
        md = version.metadata_ if version is not None else exp.get("dataset_item_metadata")
        out["experimentItemMetadata"] = md if isinstance(md, dict) else None
    if "experimentMetadata" in groups:
        out["experimentMetadata"] = rn.metadata_ if isinstance(rn.metadata_, dict) else None
        out["experimentDescription"] = rn.description
    if "scores" in groups:
        out["scores"] = [score_v3(project_id, s, _SCORE_GROUPS) for s in scores.get(r.trace_id, [])[:slim]]
    return out
