-- Rollup days: the hourly rollup rows of a day merged, per kept key and at most one other key.
--
-- A read over 30 days by model and day merged ~20,000 hourly rows (720 hours x every combination
-- of the rollup keys). Their percentile states hold every value up to 8,192, so the merge handled
-- nearly every observation's latency again (~150 ms at 10M observations). A day row merges the
-- day's hourly rows for one key (`dim`: 'model', 'name', ...; '' for none) besides the ones always
-- kept (observations: environment and type; traces: environment), the other keys left empty: a
-- state then holds at most 8,192 values, and a month by model is ~100 rows.
--
-- The columns are the hourly tables' (`hour` is the day's start) plus `dim`, which the sort key
-- must include: a row of key 'name' whose name is empty has every column of the row of key ''.
-- A refresh rebuilds the days of the hours it recomputed, and every day whose hours have a newer
-- generation than the day (the days of hours refreshed before this migration), as generation
-- `{gen}` under kinds 'obs_day' / 'trace_day' in `rollup_hours`. A read takes a day from here when
-- the whole day is in its range, none of the day's hours is dirty and the day's generation is not
-- older than any of its hours' (tracing/rollups.py, `clean_days`).

CREATE TABLE IF NOT EXISTS {db}.rollup_observations_days {on_cluster} AS {db}.rollup_observations
  ENGINE = {replicated}AggregatingMergeTree
  ORDER BY (project_id, hour, generation, environment, type, name, model, level, version, prompt_name, prompt_version);

ALTER TABLE {db}.rollup_observations_days {on_cluster}
  ADD COLUMN IF NOT EXISTS dim LowCardinality(String) AFTER generation,
  MODIFY ORDER BY (project_id, hour, generation, environment, type, name, model, level, version, prompt_name,
                   prompt_version, dim);

CREATE TABLE IF NOT EXISTS {db}.rollup_traces_days {on_cluster} AS {db}.rollup_traces
  ENGINE = {replicated}AggregatingMergeTree ORDER BY (project_id, hour, generation, environment, name, release, version);

ALTER TABLE {db}.rollup_traces_days {on_cluster}
  ADD COLUMN IF NOT EXISTS dim LowCardinality(String) AFTER generation,
  MODIFY ORDER BY (project_id, hour, generation, environment, name, release, version, dim);
