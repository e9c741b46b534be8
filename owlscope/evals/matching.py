"""What the evaluators read of the OLAP store: which traces/observations match a filter, and their
merged fields. The reads themselves are the read model's (`owlscope.tracing`): the filter columns
are those of the traces table and the observations API (a subset of them), compiled against merged
rows, so a trace whose attributes arrived over several batches is judged on its merged state and an
evaluator's filter selects exactly what the same filter selects in the UI. Judge traces
(environment `langfuse-llm-as-a-judge`) never match.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from owlscope.storage.olap.client import Olap
from owlscope.tracing import obs_select, traces
from owlscope.tracing.common import Params, iso, merge_metadata, nz, parse_json
from owlscope.tracing.filters import Column, Condition, compile_condition, conditions_from_list, resolve

JUDGE_ENVIRONMENT = "langfuse-llm-as-a-judge"

# The columns an evaluator can filter on (definitions: traces.COLUMNS and obs_select.COLUMNS).
# `level` of a trace is its most severe observation's, an unset level counting as DEFAULT.
TRACE_COLUMNS: dict[str, Column] = {name: traces.COLUMNS[name] for name in (
    "id", "name", "timestamp", "userId", "sessionId", "environment", "version", "release", "tags",
    "bookmarked", "metadata", "level")}
OBSERVATION_COLUMNS: dict[str, Column] = {name: obs_select.COLUMNS[name] for name in (
    "id", "type", "name", "environment", "level", "version", "model", "metadata", "parentObservationId",
    "traceId", "traceName", "userId", "sessionId", "tags", "release")}


def parse_conditions(raw: Any, target: str, what: str = "filter") -> list[Condition]:
    """Stored/requested filter dicts as conditions, checked against the target's columns
    (InvalidRequest on an unknown column, operator or value)."""
    conds = conditions_from_list(raw or [], what)
    columns = TRACE_COLUMNS if target == "trace" else OBSERVATION_COLUMNS
    p = Params(project_id="")
    for cond in conds:
        compile_condition(cond, resolve(cond, columns, what), p)
    return conds


def match_traces(olap: Olap, project_id: str, conds: list[Condition], *, ids: Iterable[str] | None = None,
                 after_id: str | None = None, limit: int | None = None, latest_first: bool = False) -> list[str]:
    """Ids of the project's traces that match `conds` (restricted to `ids` when given), by id
    (or newest first), after `after_id`."""
    for cond in conds:
        resolve(cond, TRACE_COLUMNS)
    return traces.match_trace_ids(
        olap, project_id, conds, ids=None if ids is None else list(ids), after_id=after_id, limit=limit,
        latest_first=latest_first, exclude_environment=JUDGE_ENVIRONMENT,
    )


def match_observations(olap: Olap, project_id: str, conds: list[Condition], *, ids: Iterable[str] | None = None,
                       trace_ids: Iterable[str] | None = None, after: tuple[str, str] | None = None,
                       limit: int | None = None, latest_first: bool = False) -> list[tuple[str, str]]:
    """(trace_id, id) of the project's observations that match `conds`, by (trace_id, id)."""
    for cond in conds:
        resolve(cond, OBSERVATION_COLUMNS)
    return obs_select.match_observation_keys(
        olap, project_id, conds, ids=None if ids is None else list(ids),
        trace_ids=None if trace_ids is None else list(trace_ids), after=after, limit=limit,
        latest_first=latest_first, exclude_environment=JUDGE_ENVIRONMENT,
    )


# ---- merged records ------------------------------------------------------------------------------------
def load_trace(olap: Olap, project_id: str, trace_id: str) -> dict[str, Any] | None:
    """A merged trace with parsed input, output and metadata (merged key by key, as the UI and the API
    show it); None when it does not exist."""
    r = traces.fetch_traces(olap, project_id, [trace_id]).get(trace_id)
    if r is None:
        return None
    return {
        "id": r["id"], "name": nz(r["t_name"]), "timestamp": iso(r["t_ts"]), "userId": nz(r["t_user"]),
        "sessionId": nz(r["t_session"]), "environment": r["t_env"] or "default", "tags": list(r["t_tags"]),
        "release": nz(r["t_release"]), "version": nz(r["t_version"]),
        "input": parse_json(r["t_input"]), "output": parse_json(r["t_output"]),
        "metadata": merge_metadata(r["t_meta_pieces"], r["t_metadata"]),
    }


_OBS_FIELDS = {"o_type", "o_name", "o_env", "o_level", "o_model", "o_start", "o_input", "o_output", "o_metadata",
               "o_meta_pieces"}


def _observation(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"], "traceId": r["trace_id"], "type": nz(r["o_type"]), "name": nz(r["o_name"]),
        "environment": r["o_env"] or "default", "level": r["o_level"] or "DEFAULT", "model": nz(r["o_model"]),
        "startTime": iso(r["o_start"]), "input": parse_json(r["o_input"]), "output": parse_json(r["o_output"]),
        "metadata": merge_metadata(r["o_meta_pieces"], r["o_metadata"]),
    }


def load_observation(olap: Olap, project_id: str, trace_id: str, observation_id: str) -> dict[str, Any] | None:
    found = obs_select.latest_observations(olap, project_id, trace_id, _OBS_FIELDS, observation_id=observation_id)
    return _observation(found[0]) if found else None


def find_named_observation(olap: Olap, project_id: str, trace_id: str, obs_type: str,
                           name: str) -> dict[str, Any] | None:
    """The latest-starting observation of `trace_id` with this type (lower-case is fine) and name."""
    found = obs_select.latest_observations(olap, project_id, trace_id, _OBS_FIELDS, type=obs_type.upper(),
                                           name=name)
    return _observation(found[0]) if found else None
