"""What runs need from the OLAP store: the run items' observations and traces (input, output,
times, cost) and their scores. Reads are bounded by the ids of one page or one run and go through
the read model (`owlscope.tracing`): metadata merged key by key and costs from the scalar rollups,
as the traces and observations views show them.
"""

from __future__ import annotations

from collections.abc import Iterable

from owlscope.storage.olap.client import Olap
from owlscope.tracing import obs_select, traces
from owlscope.tracing.common import merge_metadata, parse_json, seconds_between, utc
from owlscope.tracing.model import aggregate_traces, obs_model
from owlscope.tracing.scores import score_v2, scores_by

_CHUNK = 2000
_OBS_FIELDS = {"o_input", "o_output", "o_start", "o_end", "o_level", "o_env", "o_metadata", "o_meta_pieces",
               "o_cost_total"}


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    vals = sorted(set(values))
    for i in range(0, len(vals), _CHUNK):
        yield vals[i:i + _CHUNK]


def observations_by_key(olap: Olap, project_id: str, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """(trace_id, observation_id) -> merged observation: input, output, start, end, level,
    environment, metadata (parsed, merged key by key), cost (its total; None without one)."""
    keys = list(set(keys))
    merged = obs_model(olap, project_id)
    out: dict[tuple[str, str], dict] = {}
    for tids in _chunks(k[0] for k in keys):
        tset = set(tids)
        rows = obs_select.fetch_merged(olap, project_id, [k for k in keys if k[0] in tset], _OBS_FIELDS, merged)
        for key, r in rows.items():
            out[key] = {
                "input": parse_json(r["o_input"]), "output": parse_json(r["o_output"]),
                "start": utc(r["o_start"]), "end": utc(r["o_end"]), "level": r["o_level"] or "DEFAULT",
                "environment": r["o_env"] or "default",
                "metadata": merge_metadata(r["o_meta_pieces"], r["o_metadata"]),
                "cost": float(r["o_cost_total"]) if r["o_cost_total"] else None,
            }
    return out


def trace_summaries(olap: Olap, project_id: str, trace_ids: Iterable[str]) -> dict[str, dict]:
    """trace_id -> input, output (explicit, else the root span's), start, end (over the trace's
    observations), latency in seconds and total cost."""
    out: dict[str, dict] = {}
    for tids in _chunks(trace_ids):
        for tid, r in traces.fetch_traces(olap, project_id, tids, aliases={"t_input", "t_output", "t_ts"}).items():
            out[tid] = {"input": parse_json(r["t_input"]), "output": parse_json(r["t_output"]),
                        "start": utc(r["t_ts"]), "end": None, "latency": None, "cost": None}
        for tid, agg in aggregate_traces(olap, project_id, tids, {"a_start", "a_end", "a_total_cost"}).items():
            start, end, cost = agg["a_start"], agg["a_end"], agg["a_total_cost"]
            rec = out.setdefault(tid, {"input": None, "output": None, "start": None, "end": None,
                                       "latency": None, "cost": None})
            start, end = utc(start), utc(end)
            rec["start"] = start or rec["start"]
            rec["end"] = end
            rec["latency"] = seconds_between(start, end)
            rec["cost"] = float(cost) if cost else None
    return out


def scores_for_traces(olap: Olap, project_id: str, trace_ids: Iterable[str]) -> dict[str, list[dict]]:
    """trace_id -> its scores (the API's `Score` shape), oldest first."""
    return _scores(olap, project_id, "trace_id", trace_ids)


def scores_for_runs(olap: Olap, project_id: str, run_ids: Iterable[str]) -> dict[str, list[dict]]:
    """dataset_run_id -> its run-level scores (the API's `Score` shape), oldest first."""
    return _scores(olap, project_id, "dataset_run_id", run_ids)


def _scores(olap: Olap, project_id: str, column: str, ids: Iterable[str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for chunk in _chunks(ids):
        for key, rows in scores_by(olap, project_id, column, chunk).items():
            out.setdefault(key, []).extend(score_v2(r) for r in rows)
    return out
