"""Per-version metrics of a prompt, from the OLAP observations and scores linked to it.

Observations are an AggregatingMergeTree: each one is merged (`argMaxIfMerge ... GROUP BY`)
before it can be filtered by its prompt. Scores are a ReplacingMergeTree read with FINAL; a score
counts for a version when it is attached to one of the version's generations, or to a trace that
contains one (a trace-level score counts once per version, however many generations it has).
"""

from __future__ import annotations

from typing import Any

from owlscope.storage.olap.client import Olap

_GENERATIONS = """
SELECT id, trace_id, prompt_version, start_time, end_time, usage_details, cost_details FROM (
  SELECT
    id, trace_id,
    argMaxIfMerge(prompt_name) AS prompt_name,
    argMaxIfMerge(prompt_version) AS prompt_version,
    argMaxIfMerge(start_time) AS start_time,
    argMaxIfMerge(end_time) AS end_time,
    argMaxIfMerge(usage_details) AS usage_details,
    argMaxIfMerge(cost_details) AS cost_details
  FROM {db}.observations
  WHERE project_id = {project_id:String}
  GROUP BY project_id, trace_id, id
) WHERE prompt_name = {prompt_name:String} AND prompt_version > 0
"""

_VERSIONS = f"""
SELECT
  prompt_version AS version,
  count() AS generations,
  quantile(0.5)(if(end_time > start_time, dateDiff('millisecond', start_time, end_time) / 1000.0, NULL))
    AS median_latency,
  sum(usage_details['input']) AS input_tokens,
  sum(usage_details['output']) AS output_tokens,
  sum(cost_details['total']) AS total_cost,
  countIf(mapContains(cost_details, 'total')) AS costed
FROM ({_GENERATIONS})
GROUP BY prompt_version
ORDER BY prompt_version DESC
"""

_SCORES = f"""
WITH gens AS ({_GENERATIONS}),
numeric AS (
  SELECT name, value, observation_id, trace_id FROM {{db}}.scores FINAL
  WHERE project_id = {{project_id:String}} AND data_type IN ('NUMERIC', 'BOOLEAN') AND value IS NOT NULL
)
SELECT version, name, avg(value) AS average, count() AS n FROM (
  SELECT g.prompt_version AS version, s.name AS name, s.value AS value
  FROM numeric AS s INNER JOIN (SELECT id, prompt_version FROM gens) AS g
    ON assumeNotNull(s.observation_id) = g.id
  WHERE s.observation_id IS NOT NULL AND s.observation_id != ''
  UNION ALL
  SELECT t.prompt_version AS version, s.name AS name, s.value AS value
  FROM numeric AS s INNER JOIN (SELECT DISTINCT trace_id, prompt_version FROM gens) AS t
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
    out: dict[int, dict[str, Any]] = {}
    for r in olap.query_dicts(_VERSIONS, params):
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
        for r in olap.query_dicts(_SCORES, params):
            entry = out.get(int(r["version"]))
            if entry is not None:
                entry["scores"][r["name"]] = float(r["average"])
    return sorted(out.values(), key=lambda e: -e["version"])
