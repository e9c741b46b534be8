"""OLAP reads the evaluators need: which traces/observations match a filter, and their merged fields.

Filters are the traces table's (`owlscope.tracing.filters` conditions: name, userId, sessionId,
tags, environment, release, version, level, metadata key/value, ...) compiled against merged rows
(`argMaxIfMerge ... GROUP BY id`), so a trace whose attributes arrived over several batches is
judged on its merged state. Judge traces (environment `langfuse-llm-as-a-judge`) never match.

These are small dedicated queries (reads by id or id range) rather than the paging machinery of
`owlscope.tracing`, which serves the UI's lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from owlscope.storage.olap.client import Olap
from owlscope.tracing import obs_select, traces
from owlscope.tracing.common import Params, iso, merge_metadata, parse_json
from owlscope.tracing.filters import Column, Condition, compile_condition, conditions_from_list, resolve

JUDGE_ENVIRONMENT = "langfuse-llm-as-a-judge"
_LEVELS = "['DEBUG', 'DEFAULT', 'WARNING', 'ERROR']"

TRACE_MERGED: dict[str, str] = {
    "t_ts": "min(timestamp)",
    "t_name": "if(argMaxIfMerge(name) != '', argMaxIfMerge(name), argMaxIfMerge(root_name))",
    "t_user": "argMaxIfMerge(user_id)",
    "t_session": "argMaxIfMerge(session_id)",
    "t_release": "argMaxIfMerge(release)",
    "t_version": "argMaxIfMerge(version)",
    "t_env": "argMaxIfMerge(environment)",
    "t_bookmarked": "argMaxIfMerge(bookmarked)",
    "t_tags": "arraySort(groupUniqArrayArray(tags))",
    "t_metadata": "argMaxIfMerge(metadata)",
}
TRACE_IO: dict[str, str] = {
    "t_input": "if(argMaxIfMerge(input) != '', argMaxIfMerge(input), argMaxIfMerge(root_input))",
    "t_output": "if(argMaxIfMerge(output) != '', argMaxIfMerge(output), argMaxIfMerge(root_output))",
}
TRACE_COLUMNS: dict[str, Column] = {
    "id": Column("string", "id"),
    "name": Column("string", "t_name"),
    "timestamp": Column("datetime", "t_ts"),
    "userId": Column("string", "t_user"),
    "sessionId": Column("string", "t_session"),
    "environment": Column("string", "if(t_env = '', 'default', t_env)"),
    "version": Column("string", "t_version"),
    "release": Column("string", "t_release"),
    "tags": Column("array", "t_tags"),
    "bookmarked": Column("bool", "t_bookmarked"),
    "metadata": Column("object", "t_metadata"),
    "level": Column("string", "t_level", scope="obs"),  # the highest level among the trace's observations
}

OBS_MERGED: dict[str, str] = {
    "o_start": "min(sort_ts)",
    "o_type": "argMaxIfMerge(type)",
    "o_name": "argMaxIfMerge(name)",
    "o_env": "argMaxIfMerge(environment)",
    "o_level": "argMaxIfMerge(level)",
    "o_version": "argMaxIfMerge(version)",
    "o_model": "argMaxIfMerge(model)",
    "o_metadata": "argMaxIfMerge(metadata)",
    "o_parent": "argMaxIfMerge(parent_observation_id)",
}
OBS_IO: dict[str, str] = {"o_input": "argMaxIfMerge(input)", "o_output": "argMaxIfMerge(output)"}
OBSERVATION_COLUMNS: dict[str, Column] = {
    "id": Column("string", "id"),
    "type": Column("string", "o_type"),
    "name": Column("string", "o_name"),
    "environment": Column("string", "if(o_env = '', 'default', o_env)"),
    "level": Column("string", "if(o_level = '', 'DEFAULT', o_level)"),
    "version": Column("string", "o_version"),
    "model": Column("string", "o_model"),
    "metadata": Column("object", "o_metadata"),
    "parentObservationId": Column("string", "o_parent"),
    "traceId": Column("string", "trace_id"),
    # attributes of the observation's trace
    "traceName": Column("string", "t_name", scope="trace"),
    "userId": Column("string", "t_user", scope="trace"),
    "sessionId": Column("string", "t_session", scope="trace"),
    "tags": Column("array", "t_tags", scope="trace"),
    "release": Column("string", "t_release", scope="trace"),
}


def parse_conditions(raw: Any, target: str, what: str = "filter") -> list[Condition]:
    """Stored/requested filter dicts as conditions, checked against the target's columns
    (InvalidRequest on an unknown column, operator or value)."""
    conds = conditions_from_list(raw or [], what)
    columns = TRACE_COLUMNS if target == "trace" else OBSERVATION_COLUMNS
    p = Params(project_id="")
    for cond in conds:
        compile_condition(cond, resolve(cond, columns, what), p)
    return conds


def _aliases(merged: dict[str, str], exprs: Iterable[str], always: Iterable[str]) -> str:
    names = set(always) | {a for a in merged for e in exprs if a in e}
    return ", ".join(f"{merged[a]} AS {a}" for a in sorted(names))


def _trace_filter_sql(conds: list[Condition], p: Params, obs_restrict: str) -> tuple[list[str], list[str]]:
    """(HAVING parts on the merged trace row, WHERE parts on trace ids). `obs_restrict` narrows the
    observations read for the level aggregate (`AND trace_id IN ...`)."""
    having, where = [], []
    for cond in conds:
        col = resolve(cond, TRACE_COLUMNS)
        sql = compile_condition(cond, col, p)
        if col.scope == "self":
            having.append(sql)
        else:
            where.append(
                "id IN (SELECT trace_id FROM (SELECT trace_id, if(max(lv) = 0, 'DEFAULT', "
                f"arrayElement({_LEVELS}, max(lv))) AS t_level FROM (SELECT trace_id, "
                f"indexOf({_LEVELS}, argMaxIfMerge(level)) AS lv FROM {{db}}.observations "
                f"WHERE project_id = {{project_id:String}}{obs_restrict} "
                f"GROUP BY trace_id, id) GROUP BY trace_id) WHERE {sql})"
            )
    return having, where


def match_traces(olap: Olap, project_id: str, conds: list[Condition], *, ids: Iterable[str] | None = None,
                 after_id: str | None = None, limit: int | None = None, latest_first: bool = False) -> list[str]:
    """Ids of the project's traces that match `conds` (restricted to `ids` when given), by id
    (or newest first), after `after_id`."""
    p = Params(project_id=project_id)
    restrict = ""
    if ids is not None:
        p.values["ids"] = sorted(set(ids))
        if not p.values["ids"]:
            return []
        restrict = "id IN {ids:Array(String)}"
    having, where = _trace_filter_sql(conds, p, " AND trace_id IN {ids:Array(String)}" if restrict else "")
    having.append(f"t_env != {p.text(JUDGE_ENVIRONMENT)}")
    if after_id is not None:
        where.append(f"id > {p.text(after_id)}")
    clauses = ["project_id = {project_id:String}", *([restrict] if restrict else []), *where]
    cols = _aliases(TRACE_MERGED, having, ["t_env", "t_ts"])
    order = "t_ts DESC, id DESC" if latest_first else "id"
    sql = (f"SELECT id, {cols} FROM {{db}}.traces WHERE {' AND '.join(clauses)} GROUP BY id "
           f"HAVING {' AND '.join(having)} ORDER BY {order}" + (f" LIMIT {int(limit)}" if limit else ""))
    return [r[0] for r in olap.query(sql, p.values)]


def match_observations(olap: Olap, project_id: str, conds: list[Condition], *, ids: Iterable[str] | None = None,
                       trace_ids: Iterable[str] | None = None, after: tuple[str, str] | None = None,
                       limit: int | None = None, latest_first: bool = False) -> list[tuple[str, str]]:
    """(trace_id, id) of the project's observations that match `conds`, by (trace_id, id)."""
    p = Params(project_id=project_id)
    where = ["project_id = {project_id:String}"]
    trace_restrict = ""
    if trace_ids is not None:
        p.values["tids"] = sorted(set(trace_ids))
        if not p.values["tids"]:
            return []
        where.append("trace_id IN {tids:Array(String)}")
        trace_restrict = " AND id IN {tids:Array(String)}"
    if ids is not None:
        p.values["oids"] = sorted(set(ids))
        if not p.values["oids"]:
            return []
        where.append("id IN {oids:Array(String)}")
    if after is not None:
        where.append(f"(trace_id, id) > ({p.text(after[0])}, {p.text(after[1])})")
    having, trace_having = [], []
    for cond in conds:
        col = resolve(cond, OBSERVATION_COLUMNS)
        (having if col.scope == "self" else trace_having).append(compile_condition(cond, col, p))
    having.append(f"o_env != {p.text(JUDGE_ENVIRONMENT)}")
    if trace_having:
        where.append(
            f"trace_id IN (SELECT id FROM (SELECT id, {_aliases(TRACE_MERGED, trace_having, [])} FROM {{db}}.traces "
            f"WHERE project_id = {{project_id:String}}{trace_restrict} GROUP BY id HAVING {' AND '.join(trace_having)}))"
        )
    cols = _aliases(OBS_MERGED, having, ["o_env", "o_start"])
    order = "o_start DESC, id DESC" if latest_first else "trace_id, id"
    sql = (f"SELECT trace_id, id, {cols} FROM {{db}}.observations WHERE {' AND '.join(where)} "
           f"GROUP BY trace_id, id HAVING {' AND '.join(having)} ORDER BY {order}"
           + (f" LIMIT {int(limit)}" if limit else ""))
    return [(r[0], r[1]) for r in olap.query(sql, p.values)]


# ---- merged records ------------------------------------------------------------------------------------
def load_trace(olap: Olap, project_id: str, trace_id: str) -> dict[str, Any] | None:
    """A merged trace with parsed input, output and metadata; None when it does not exist."""
    # The metadata pieces too: the judge must see the same key-by-key merged metadata as the UI/API.
    merged = {**TRACE_MERGED, **TRACE_IO, "t_meta_pieces": traces.MERGED["t_meta_pieces"]}
    rows = olap.query_dicts(
        f"SELECT id, {', '.join(f'{e} AS {a}' for a, e in merged.items())} FROM {{db}}.traces "
        "WHERE project_id = {p:String} AND id = {id:String} GROUP BY id",
        {"p": project_id, "id": trace_id},
    )
    if not rows:
        return None
    r = rows[0]
    return {
        "id": r["id"], "name": r["t_name"] or None, "timestamp": iso(r["t_ts"]), "userId": r["t_user"] or None,
        "sessionId": r["t_session"] or None, "environment": r["t_env"] or "default", "tags": list(r["t_tags"]),
        "release": r["t_release"] or None, "version": r["t_version"] or None,
        "input": parse_json(r["t_input"]), "output": parse_json(r["t_output"]),
        "metadata": merge_metadata(r["t_meta_pieces"], r["t_metadata"]),
    }


def _observations(olap: Olap, project_id: str, trace_id: str, having: str, params: dict[str, Any],
                  limit: int = 1) -> list[dict[str, Any]]:
    merged = {**OBS_MERGED, **OBS_IO, "o_meta_pieces": obs_select.MERGED["o_meta_pieces"]}
    rows = olap.query_dicts(
        f"SELECT trace_id, id, {', '.join(f'{e} AS {a}' for a, e in merged.items())} FROM {{db}}.observations "
        "WHERE project_id = {p:String} AND trace_id = {t:String} GROUP BY trace_id, id "
        f"HAVING {having} ORDER BY o_start DESC, id DESC LIMIT {int(limit)}",
        {"p": project_id, "t": trace_id, **params},
    )
    return [{
        "id": r["id"], "traceId": r["trace_id"], "type": r["o_type"] or None, "name": r["o_name"] or None,
        "environment": r["o_env"] or "default", "level": r["o_level"] or "DEFAULT", "model": r["o_model"] or None,
        "startTime": iso(r["o_start"]), "input": parse_json(r["o_input"]), "output": parse_json(r["o_output"]),
        "metadata": merge_metadata(r["o_meta_pieces"], r["o_metadata"]),
    } for r in rows]


def load_observation(olap: Olap, project_id: str, trace_id: str, observation_id: str) -> dict[str, Any] | None:
    found = _observations(olap, project_id, trace_id, "id = {o:String}", {"o": observation_id})
    return found[0] if found else None


def find_named_observation(olap: Olap, project_id: str, trace_id: str, obs_type: str,
                           name: str) -> dict[str, Any] | None:
    """The latest-starting observation of `trace_id` with this type (lower-case is fine) and name."""
    found = _observations(olap, project_id, trace_id, "o_type = {ty:String} AND o_name = {n:String}",
                          {"ty": obs_type.upper(), "n": name})
    return found[0] if found else None
