-- The merged facts behind each generation of the rollups, one row per observation and per trace.
--
-- A read served from rollups (tracing/rollups.py) takes the clean whole hours of its range from
-- `rollup_observations` / `rollup_traces` and merges the rest from the raw partial rows. The rest
-- is small (the range's first and last partial hours, dirty hours) but finding its observations
-- in tables ordered by random ids is a lookup of thousands of keys, which reads nearly every
-- granule. A refresh now writes the merged facts of the hours it recomputes here first, ordered
-- by time, and builds the rollup rows from them; a partial hour that is clean is then read from its
-- facts by time range instead of from the raw rows. Generations as in the rollup tables: a hour's
-- current generation is the one `rollup_hours` names; older ones are deleted after each refresh.
-- The columns are the merged values the metrics views read (tracing/model.py aliases).

CREATE TABLE IF NOT EXISTS {db}.rollup_obs_facts {on_cluster} (
  project_id String,
  hour DateTime('UTC'),
  generation UInt64,
  trace_id String,
  id String,
  o_sort DateTime64(3, 'UTC'),
  o_env String,
  o_type String,
  o_name String,
  o_level String,
  o_version String,
  o_model String,
  o_prompt_name String,
  o_prompt_version UInt32,
  o_start DateTime64(3, 'UTC'),
  o_end DateTime64(3, 'UTC'),
  o_cst DateTime64(3, 'UTC'),
  o_tokens_in UInt64,
  o_tokens_out UInt64,
  o_tokens_total UInt64,
  o_cost Map(String, Float64),
  o_cost_total Float64
) ENGINE = {replicated}MergeTree ORDER BY (project_id, hour, generation, o_sort);

CREATE TABLE IF NOT EXISTS {db}.rollup_trace_facts {on_cluster} (
  project_id String,
  hour DateTime('UTC'),
  generation UInt64,
  id String,
  t_ts DateTime64(3, 'UTC'),
  t_name String,
  t_user String,
  t_env String,
  t_release String,
  t_version String,
  a_count UInt64,
  a_latency Float64,
  a_total_tokens UInt64,
  a_total_cost Float64,
  a_errors UInt64,
  a_has UInt8
) ENGINE = {replicated}MergeTree ORDER BY (project_id, hour, generation, t_ts);

-- Generations written before this migration have no facts: every hour is made dirty (a refresh
-- with no watermark rebuilds them all, with facts; reads merge raw rows until then).
TRUNCATE TABLE IF EXISTS {db}.rollup_hours {on_cluster};
