-- Rollup days: the hourly rollup rows of a day merged, per kept key and at most one other key.
--
-- A read over 30 days by model and day merged ~20,000 hourly rows (720 hours x every combination
-- of the rollup keys). Their percentile states hold every value up to 8,192, so the merge handled
-- nearly every observation's latency again (~150 ms at 10M observations). A day row merges the
-- day's hourly rows for one key (`dim`: 'model', 'name', ...; '' for none) besides the ones always
-- kept (observations: environment and type; traces: environment), the other keys left empty: a
-- state then holds at most 8,192 values, and a month by model is ~100 rows.
--
-- The columns are the hourly tables' (`hour` is the day's start) and `dim`, which leads the sort key:
-- a read takes one key's rows, and a row holds up to ~130 KB of percentile states, so the other
-- keys' rows must not share its granules (a month of the traces' '' rows read in 5 ms instead of
-- 50 ms when every key's rows were read). `dim` must be in the key anyway: a row of key 'name' whose
-- name is empty has every other column of the row of key ''.
--
-- `rollup_users_days`: per day, environment and user the traces, their newest start, cost and
-- tokens (the dashboard's most active users; built from the day's stored trace facts, OLAP 0009).
--
-- A refresh rebuilds the days of the hours it recomputed, and every day whose hours have a newer
-- generation than the day (the days of hours refreshed before this migration), as generation
-- `{gen}` under kinds 'obs_day' / 'trace_day' in `rollup_hours`. A read takes a day from here when
-- the whole day is in its range, none of the day's hours is dirty and the day's generation is not
-- older than any of its hours' (tracing/rollups.py, `cover`).

CREATE TABLE IF NOT EXISTS {db}.rollup_observations_days {on_cluster}
  ENGINE = {replicated}AggregatingMergeTree
  ORDER BY (project_id, dim, hour, generation, environment, type, name, model, level, version, prompt_name, prompt_version)
  EMPTY AS SELECT CAST('' AS LowCardinality(String)) AS dim, * FROM {db}.rollup_observations;

CREATE TABLE IF NOT EXISTS {db}.rollup_traces_days {on_cluster}
  ENGINE = {replicated}AggregatingMergeTree ORDER BY (project_id, dim, hour, generation, environment, name, release, version)
  EMPTY AS SELECT CAST('' AS LowCardinality(String)) AS dim, * FROM {db}.rollup_traces;

CREATE TABLE IF NOT EXISTS {db}.rollup_users_days {on_cluster} (
  project_id String,
  hour DateTime('UTC'),
  generation UInt64,
  environment String,
  user_id String,
  n AggregateFunction(count),
  last AggregateFunction(max, DateTime64(3, 'UTC')),
  cost AggregateFunction(sum, Float64),
  tokens AggregateFunction(sum, UInt64)
) ENGINE = {replicated}AggregatingMergeTree ORDER BY (project_id, hour, generation, environment, user_id);
