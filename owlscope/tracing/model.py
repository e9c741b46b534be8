"""The OLAP read model: how a trace and an observation are put back together from their partial rows.

`traces` and `observations` are AggregatingMergeTrees (migrations 0001 and 0002): a row is a partial
state until merged, so every read groups by the entity's key and merges each column with the
expressions below. They are defined here once; every reader (the public API, the UI tables, the
evaluators, datasets, prompts, the dashboard) selects them by alias and filters with the columns of
`owlscope.tracing.traces.COLUMNS` / `owlscope.tracing.obs_select.COLUMNS`, which are built on them.

Conventions: an alias never equals a column name (ClickHouse would substitute it inside the
aggregates); `t_` is a merged trace value, `o_` a merged observation value. An unset String merges
to '' and an unset DateTime64 to the epoch (`common.nz`, `common.utc` read them as None). An unset
level counts as DEFAULT and an unset environment as `default`, everywhere.

Cost and usage: the scalar columns of migration 0002 (`total_cost`, `input_tokens`, `output_tokens`,
`total_tokens`) hold the same value the maps give (`total`, else the sum of the keys; the
`input`/`output` keys). Readers use them (`rollups`), never a sum over the `Map` columns, which are
read only where a single key has no scalar (input/output cost) or for the details themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from owlscope.storage.olap.client import Olap
from owlscope.tracing.common import epoch_ms

# ---- traces ----------------------------------------------------------------------------------
TRACE: dict[str, str] = {
    "t_ts": "min(timestamp)",
    "t_name": "if(argMaxIfMerge(name) != '', argMaxIfMerge(name), argMaxIfMerge(root_name))",
    "t_user": "argMaxIfMerge(user_id)",
    "t_session": "argMaxIfMerge(session_id)",
    "t_release": "argMaxIfMerge(release)",
    "t_version": "argMaxIfMerge(version)",
    "t_env": "argMaxIfMerge(environment)",
    "t_bookmarked": "argMaxIfMerge(bookmarked)",
    "t_public": "max(public)",
    "t_tags": "arraySort(groupUniqArrayArray(tags))",
    "t_metadata": "argMaxIfMerge(metadata)",
    "t_meta_pieces": "maxMap(metadata_pieces)",
    "t_updated": "max(updated_at)",
}
TRACE_IO: dict[str, str] = {
    "t_input": "if(argMaxIfMerge(input) != '', argMaxIfMerge(input), argMaxIfMerge(root_input))",
    "t_output": "if(argMaxIfMerge(output) != '', argMaxIfMerge(output), argMaxIfMerge(root_output))",
}
TRACE_ENV = "if(t_env = '', 'default', t_env)"

# Environments Owlscope itself writes to (judge calls, prompt experiments) start with this prefix. The
# UI's lists and dashboard leave them out unless asked (`not_internal`); the public API never does.
INTERNAL_ENV_PREFIX = "langfuse-"


def not_internal(env_expr: str) -> str:
    """SQL: the environment `env_expr` is not an internal one."""
    return f"NOT startsWith({env_expr}, '{INTERNAL_ENV_PREFIX}')"


KEY = "__KEY__"  # where a metadata filter's key goes in a by-key expression (filters.object_sql)


def metadata_by_key(pieces: str, latest: str) -> str:
    """The JSON text whose `KEY` is the key's merged value: of the metadata pieces (oldest first, as
    `common.merge_metadata` applies them; `latest` last when it is not among them: a row written
    before migration 0002), the last one that has the key."""
    return (f"arrayLast(x -> JSONHas(x, {KEY}), arrayConcat(arraySort((x, t) -> (t, x), mapKeys({pieces}),"
            f" mapValues({pieces})), if({latest} = '' OR mapContains({pieces}, {latest}), [], [{latest}])))")


TRACE_METADATA = metadata_by_key("t_meta_pieces", "t_metadata")

# ---- observations ----------------------------------------------------------------------------
OBS: dict[str, str] = {
    "o_sort": "min(sort_ts)",
    "o_updated": "max(updated_at)",
    "o_type": "argMaxIfMerge(type)",
    "o_name": "argMaxIfMerge(name)",
    "o_parent": "argMaxIfMerge(parent_observation_id)",
    "o_start": "if(toUnixTimestamp64Milli(argMaxIfMerge(start_time)) = 0, min(sort_ts), argMaxIfMerge(start_time))",
    "o_end": "argMaxIfMerge(end_time)",
    "o_cst": "argMaxIfMerge(completion_start_time)",
    "o_level": "argMaxIfMerge(level)",
    "o_status": "argMaxIfMerge(status_message)",
    "o_version": "argMaxIfMerge(version)",
    "o_env": "argMaxIfMerge(environment)",
    "o_input": "argMaxIfMerge(input)",
    "o_output": "argMaxIfMerge(output)",
    "o_metadata": "argMaxIfMerge(metadata)",
    "o_model": "argMaxIfMerge(model)",
    "o_model_params": "argMaxIfMerge(model_parameters)",
    "o_usage": "argMaxIfMerge(usage_details)",
    "o_cost": "argMaxIfMerge(cost_details)",
    "o_prompt_id": "argMaxIfMerge(prompt_id)",
    "o_prompt_name": "argMaxIfMerge(prompt_name)",
    "o_prompt_version": "argMaxIfMerge(prompt_version)",
    "o_meta_pieces": "maxMap(metadata_pieces)",
    # the matched model's id stored at ingestion (migration 0003): '' when the name matched no model;
    # NULL for an observation with rows written before 0003 (matched by name when read)
    "o_model_id": "if(min(model_id_stored) = 1, argMaxIfMerge(internal_model_id), NULL)",
}
OBS_ENV = "if(o_env = '', 'default', o_env)"
OBS_LEVEL = "if(o_level = '', 'DEFAULT', o_level)"
OBS_METADATA = metadata_by_key("o_meta_pieces", "o_metadata")

_MS = "toUnixTimestamp64Milli"
LATENCY = f"if({_MS}(o_end) = 0, NULL, ({_MS}(o_end) - {_MS}(o_start)) / 1000)"
TTFT = f"if({_MS}(o_cst) = 0, NULL, ({_MS}(o_cst) - {_MS}(o_start)) / 1000)"
# Totals of one merged map (the details views; the rollups below give the same numbers without the map).
TOTAL_TOKENS = "if(mapContains(o_usage, 'total'), o_usage['total'], arraySum(mapValues(o_usage)))"
TOTAL_COST = "if(mapContains(o_cost, 'total'), o_cost['total'], arraySum(mapValues(o_cost)))"

# Rollup values (migration 0002): the scalar merged columns, the same values as the maps give, without
# merging a Map state (ClickHouse's slow generic path). Rows written before 0002 have no scalar states
# (`scalars_complete` 0): SAFE reads such an observation from its maps; FAST, for a project without
# such rows (`rollups_fast`), never touches the maps.
# (Each map is merged once: an inline alias, which identical definitions may repeat.)
_MAP_VALUE = {
    "o_cost_total": TOTAL_COST.replace("o_cost", "(argMaxIfMerge(cost_details) AS m_cost)", 1).replace("o_cost", "m_cost"),
    "o_tokens_in": "(argMaxIfMerge(usage_details) AS m_usage)['input']",
    "o_tokens_out": "(argMaxIfMerge(usage_details) AS m_usage)['output']",
    "o_tokens_total": TOTAL_TOKENS.replace("o_usage", "(argMaxIfMerge(usage_details) AS m_usage)", 1)
    .replace("o_usage", "m_usage"),
}
ROLLUP_FAST: dict[str, str] = {
    "o_cost_total": "argMaxIfMerge(total_cost)",
    "o_tokens_in": "argMaxIfMerge(input_tokens)",
    "o_tokens_out": "argMaxIfMerge(output_tokens)",
    "o_tokens_total": "argMaxIfMerge(total_tokens)",
}
ROLLUP_SAFE: dict[str, str] = {
    a: f"if(min(scalars_complete) = 1, {ROLLUP_FAST[a]}, {_MAP_VALUE[a]})" for a in ROLLUP_FAST
}
ROLLUPS = frozenset(ROLLUP_FAST)
_CLEAN: set[tuple[str, str]] = set()  # (database, project) without pre-0002 observation rows


def rollups_fast(olap: Olap, project_id: str) -> bool:
    """True when no observation row of the project predates migration 0002, so the rollups can read
    the scalar columns alone. Once true it stays true (the view writes only complete rows): cached."""
    key = (olap.database, project_id)
    if key in _CLEAN:
        return True
    legacy = olap.query(
        "SELECT 1 FROM {db}.observations WHERE project_id = {p:String} AND scalars_complete = 0 LIMIT 1",
        {"p": project_id},
    )
    if not legacy:
        _CLEAN.add(key)
    return not legacy


def obs_exprs(fast: bool) -> dict[str, str]:
    """OBS plus the rollup aliases (o_cost_total, o_tokens_in/out/total), FAST or SAFE."""
    return {**OBS, **(ROLLUP_FAST if fast else ROLLUP_SAFE)}


def obs_model(olap: Olap, project_id: str) -> dict[str, str]:
    """The observation expressions for this project (rollups FAST when it has no pre-0002 rows)."""
    return obs_exprs(rollups_fast(olap, project_id))


# ---- per-trace aggregates over its observations ----------------------------------------------
_LAST = f"if({_MS}(o_end) = 0, o_start, greatest(o_end, o_start))"
AGGREGATES: dict[str, str] = {
    "a_count": "count()",
    "a_ids": "groupArray(id)",
    "a_start": "min(o_start)",
    "a_end": "max(o_end)",
    "a_latency": f"round((max({_MS}({_LAST})) - min({_MS}(o_start))) / 1000, 3)",
    "a_input_tokens": "sum(o_tokens_in)",
    "a_output_tokens": "sum(o_tokens_out)",
    "a_total_tokens": "sum(o_tokens_total)",
    "a_input_cost": "sum(o_cost['input'])",
    "a_output_cost": "sum(o_cost['output'])",
    "a_total_cost": "sum(o_cost_total)",
    "a_costed": "countIf(o_cost_total != 0)",  # observations with a (non-zero) cost
    "a_errors": f"countIf({OBS_LEVEL} = 'ERROR')",
    "a_warnings": f"countIf({OBS_LEVEL} = 'WARNING')",
    "a_defaults": f"countIf({OBS_LEVEL} = 'DEFAULT')",
    "a_debugs": f"countIf({OBS_LEVEL} = 'DEBUG')",
    # the status message of the trace's first ERROR observation ('' when none has one)
    "a_error_message": f"argMinIf(o_status, o_start, {OBS_LEVEL} = 'ERROR')",
    # A trace's level: its most severe observation's (an unset level is DEFAULT); DEBUG only when every
    # observation is DEBUG. A trace without observations has no level here (callers show DEFAULT).
    "a_level": f"multiIf(countIf({OBS_LEVEL} = 'ERROR') > 0, 'ERROR', countIf({OBS_LEVEL} = 'WARNING') > 0, 'WARNING',"
               f" countIf({OBS_LEVEL} = 'DEFAULT') > 0, 'DEFAULT', 'DEBUG')",
}

# ---- building SELECT lists -------------------------------------------------------------------
_ALIAS = re.compile(r"\b[ota]_[a-z_]+\b")


def aliases_in(expr: str | Iterable[str], merged: Mapping[str, str]) -> set[str]:
    """The aliases of `merged` an expression (or several) refers to."""
    text = expr if isinstance(expr, str) else " ".join(expr)
    return {a for a in _ALIAS.findall(text) if a in merged}


def select_list(aliases: Iterable[str], merged: Mapping[str, str]) -> str:
    """`, expr AS alias` for each alias (sorted), to follow the key columns of a SELECT."""
    return "".join(f", {merged[a]} AS {a}" for a in sorted(set(aliases)))


def trace_aggregates_sql(restrict: str, only: set[str] | None = None, *, fast: bool = False) -> str:
    """Per trace_id: observation count, ids, start/end, latency (s), tokens, costs and level counts (the
    AGGREGATES named in `only`, default all). `restrict` is a row-level condition such as
    `trace_id IN {ids:Array(String)}`. Only the observation fields those aggregates use are merged
    (cost and usage maps are the expensive ones; total cost and tokens come from the scalar columns,
    and with `fast` (see `rollups_fast`) from those alone)."""
    names = sorted(only) if only is not None else list(AGGREGATES)
    exprs = [AGGREGATES[n] for n in names]
    merged = obs_exprs(fast)
    inner = (
        "SELECT trace_id, id%s FROM {db}.observations WHERE project_id = {project_id:String} AND %s"
        " GROUP BY trace_id, id"
    ) % (select_list(aliases_in(exprs, merged), merged), restrict)
    cols = ", ".join(f"{e} AS {n}" for n, e in zip(names, exprs, strict=True))
    return f"SELECT trace_id, {cols} FROM ({inner}) GROUP BY trace_id"


def aggregate_traces(olap: Olap, project_id: str, trace_ids: Iterable[str], names: set[str]) -> dict[str, dict[str, Any]]:
    """The AGGREGATES `names` of each of the traces (that has observations), by trace id."""
    ids = sorted(set(trace_ids))
    if not ids:
        return {}
    rows = olap.query_dicts(
        "SELECT * FROM (%s)" % trace_aggregates_sql("trace_id IN {tids:Array(String)}", names,
                                                   fast=rollups_fast(olap, project_id)),
        {"project_id": project_id, "tids": ids}, keys=ids,
    )
    return {r["trace_id"]: r for r in rows}


# ---- full-text search over trace input and output (migrations 0004, 0011) ---------------------
# The expression of the `idx_fts` text index, on a partial trace row. A query must use this exact
# expression in `hasAllTokens` for the index to answer it (the rows holding every word, read from
# the index's postings instead of the text).
TRACE_TEXT = ("lower(concat(finalizeAggregation(input), ' ', finalizeAggregation(output), ' ',"
              " finalizeAggregation(root_input), ' ', finalizeAggregation(root_output)))")
_TOKEN = re.compile(r"[a-z0-9]+")
TEXT_SEARCH_MAX = 10_000


def text_tokens(text: str) -> list[str]:
    """The words of a search as the index tokenizes them (ASCII letters and digits, lower-cased)."""
    return list(dict.fromkeys(_TOKEN.findall(text.lower())))[:8]


def search_trace_text(olap: Olap, project_id: str, text: str, *, cap: int = TEXT_SEARCH_MAX,
                      since: datetime | None = None) -> list[str]:
    """Ids of the traces whose merged input or output contains `text` (any case), newest first.
    Candidates come from partial rows holding every word (`hasAllTokens`, answered by the text index);
    only they are merged and checked for the whole text. Capped at `cap` ids: the newest `cap` matches.
    `since`: only traces starting at or after it (their rows all are, so older parts are skipped)."""
    words = text_tokens(text)
    if not words:
        return []
    params: dict[str, Any] = {"p": project_id, "q": text, "cap": cap, "words": words}
    after = ""
    if since is not None:
        params["since"] = epoch_ms(since)
        after = " AND timestamp >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')"
    rows = olap.query(
        "SELECT id FROM (SELECT id, min(timestamp) AS t_ts" + select_list(TRACE_IO, TRACE_IO) + " FROM {db}.traces"
        f" WHERE project_id = {{p:String}}{after} AND id IN (SELECT id FROM {{db}}.traces WHERE project_id = {{p:String}}"
        f"{after} AND hasAllTokens({TRACE_TEXT}, {{words:Array(String)}})) GROUP BY id)"
        " WHERE positionCaseInsensitiveUTF8(concat(t_input, ' ', t_output), {q:String}) > 0"
        " ORDER BY t_ts DESC, id DESC LIMIT {cap:UInt32}",
        params,
    )
    return [r[0] for r in rows]


def trace_io_previews(olap: Olap, project_id: str, trace_ids: list[str], chars: int = 200) -> dict[str, tuple[str, str]]:
    """(input, output) of each trace, merged and cut to their first `chars` characters, by id."""
    if not trace_ids:
        return {}
    rows = olap.query(
        "SELECT id, leftUTF8(t_input, {n:UInt32}), leftUTF8(t_output, {n:UInt32}) FROM (SELECT id"
        + select_list(TRACE_IO, TRACE_IO) + " FROM {db}.traces WHERE project_id = {p:String}"
        " AND id IN {ids:Array(String)} GROUP BY id)",
        {"p": project_id, "ids": sorted(set(trace_ids)), "n": chars},
    )
    return {r[0]: (r[1], r[2]) for r in rows}
