"""The generations linked to a prompt, and their metrics per prompt version.

Observations are merged (model.OBS) before they are filtered by their prompt; the candidates are
first found from the partial `prompt_name` states (a one-column scan: the merged value is one of
them), so only the prompt's observations are merged. Tokens and cost are the rollups (model.py),
the same numbers the traces table shows. Scores are a ReplacingMergeTree read with FINAL; a score
counts for a version when it is attached to one of the version's generations, or to a trace that
contains one (a trace-level score counts once per version, however many generations it has).
"""

from __future__ import annotations

from typing import Any

from owlscope.storage.olap.client import Olap
from owlscope.tracing.common import seconds_between, utc
from owlscope.tracing.model import aliases_in, obs_model, select_list

_COLUMNS = ("o_prompt_version", "o_name", "o_model", "o_start", "o_end", "o_tokens_in", "o_tokens_out",
            "o_cost_total", "o_level")


def _generations_sql(merged: dict[str, str], version: bool = False) -> str:
    """The prompt's merged generations (every version, or `{version:UInt32}` when not 0)."""
    cond = "o_prompt_name = {prompt_name:String} AND o_prompt_version > 0"
    if version:
        cond += " AND (o_prompt_version = {version:UInt32} OR {version:UInt32} = 0)"
    return (
        "SELECT trace_id, id%s FROM {db}.observations WHERE project_id = {project_id:String}"
        " AND (trace_id, id) IN (SELECT trace_id, id FROM {db}.observations WHERE project_id = {project_id:String}"
        " AND finalizeAggregation(prompt_name) = {prompt_name:String})"
        " GROUP BY trace_id, id HAVING %s"
    ) % (select_list(aliases_in(cond, merged) | set(_COLUMNS), merged), cond)


_MS = "toUnixTimestamp64Milli"
_VERSIONS = f"""
SELECT
  o_prompt_version AS version,
  count() AS generations,
  quantile(0.5)(if({_MS}(o_end) > {_MS}(o_start), ({_MS}(o_end) - {_MS}(o_start)) / 1000.0, NULL)) AS median_latency,
  sum(o_tokens_in) AS input_tokens,
  sum(o_tokens_out) AS output_tokens,
  sum(o_cost_total) AS total_cost,
  countIf(o_cost_total != 0) AS costed
FROM (%s)
GROUP BY o_prompt_version
ORDER BY o_prompt_version DESC
"""

_SCORES = """
WITH gens AS (%s),
numeric AS (
  SELECT name, value, observation_id, trace_id FROM {db}.scores FINAL
  WHERE project_id = {project_id:String} AND data_type IN ('NUMERIC', 'BOOLEAN') AND value IS NOT NULL
)
SELECT version, name, avg(value) AS average, count() AS n FROM (
  SELECT g.o_prompt_version AS version, s.name AS name, s.value AS value
  FROM numeric AS s INNER JOIN (SELECT id, o_prompt_version FROM gens) AS g
    ON assumeNotNull(s.observation_id) = g.id
  WHERE s.observation_id IS NOT NULL AND s.observation_id != ''
  UNION ALL
  SELECT t.o_prompt_version AS version, s.name AS name, s.value AS value
  FROM numeric AS s INNER JOIN (SELECT DISTINCT trace_id, o_prompt_version FROM gens) AS t
    ON assumeNotNull(s.trace_id) = t.trace_id
  WHERE (s.observation_id IS NULL OR s.observation_id = '') AND s.trace_id IS NOT NULL
)
GROUP BY version, name
ORDER BY version DESC, name
"""


def prompt_version_metrics(olap: Olap, project_id: str, prompt_name: str) -> list[dict[str, Any]]:
    """One dict per version that has linked generations, newest first:
    `{version, generations, median_latency (s, None when no generation has ended), input_tokens,
    output_tokens, total_cost (None when no generation has a cost), scores: {name: average}}`,
    where `scores` averages each numeric (and boolean) score name."""
    params = {"project_id": project_id, "prompt_name": prompt_name}
    gens = _generations_sql(obs_model(olap, project_id))
    out: dict[int, dict[str, Any]] = {}
    for r in olap.query_dicts(_VERSIONS % gens, params):
        latency = r["median_latency"]
        out[int(r["version"])] = {
            "version": int(r["version"]),
            "generations": int(r["generations"]),
            "median_latency": None if latency is None or latency != latency else float(latency),
            "input_tokens": int(r["input_tokens"]),
            "output_tokens": int(r["output_tokens"]),
            "total_cost": float(r["total_cost"]) if r["costed"] else None,
            "scores": {},
        }
    if out:
        for r in olap.query_dicts(_SCORES % gens, params):
            entry = out.get(int(r["version"]))
            if entry is not None:
                entry["scores"][r["name"]] = float(r["average"])
    return sorted(out.values(), key=lambda e: -e["version"])


def linked_generations(
    olap: Olap, project_id: str, prompt_name: str, *, version: int | None = None, limit: int = 50,
) -> list[dict[str, Any]]:
    """The newest generations linked to the prompt (one version, or any), newest first:
    {id, traceId, name, model, version, start, latency (s), inputTokens, outputTokens, cost, level}."""
    sql = (f"SELECT * FROM ({_generations_sql(obs_model(olap, project_id), version=True)})"
           " ORDER BY o_start DESC, id LIMIT {limit:UInt32}")
    rows = olap.query_dicts(sql, {"project_id": project_id, "prompt_name": prompt_name, "version": version or 0,
                                  "limit": limit})
    out = []
    for r in rows:
        start, end = utc(r["o_start"]), utc(r["o_end"])
        latency = seconds_between(start, end)
        out.append({
            "id": r["id"], "traceId": r["trace_id"], "name": r["o_name"] or "", "model": r["o_model"] or "",
            "version": int(r["o_prompt_version"]), "start": start,
            "latency": latency if latency is not None and latency >= 0 else None,
            "inputTokens": int(r["o_tokens_in"]), "outputTokens": int(r["o_tokens_out"]),
            "cost": float(r["o_cost_total"]) if r["o_cost_total"] else None,
            "level": r["o_level"] or "DEFAULT",
        })
    return out
