-- Rollups: pre-aggregated observations and traces per (project, hour), for the dashboard, the metrics
-- endpoints and the prompt aggregates (tracing/rollups.py reads and refreshes them).
--
-- Sums written at insert could not be corrected when an observation is updated later (a cost set by
-- an update, a model set late, a create arriving after its update): a sum would count twice and a
-- quantile state cannot retract. So an insert only *marks* what it touched, and a periodic refresh
-- recomputes whole hours in the engine (INSERT ... SELECT over the merged base tables):
--
-- - `rollup_marks`: per (project, kind, hour) the latest insert time (`now64(3)` at insert) of an
--   event whose own time falls in the hour: an observation's start (else its event time) marks its
--   hour for both kinds, a trace's timestamp (else its event time) marks the trace hour.
-- - `rollup_touched`: per insert, the traces it touched (insert time). An update without a start
--   time changes an observation counted in an earlier hour, and a late create (an earlier start)
--   moves an observation or a trace out of the hour it was counted in: neither is the event's own
--   hour, so the refresh resolves them from the touched traces and `rollup_members`.
-- - `rollup_members`: the hours (per kind and generation) each trace was counted in.
-- - `rollup_hours`: per (project, kind, hour) the current generation and the insert time it covers
--   (ReplacingMergeTree, version = generation). An hour is clean when it covers the hour's latest
--   mark; reads take rollup rows of the current generation of clean hours and merge the rest raw.
--   kind 'touched', hour 0 holds the refresh's watermark over `rollup_touched`.
-- - `rollup_observations` / `rollup_traces`: aggregate states per hour, generation and dimensions
--   (one row per key and generation; the engine is an AggregatingMergeTree so that rows it might
--   ever find twice merge rather than count twice).
--   Old generations are dropped by later refreshes; `rollup_touched` rows expire after 30 days (a
--   refresh whose watermark is older than that rebuilds every hour).

CREATE TABLE IF NOT EXISTS {db}.rollup_marks {on_cluster} (
  project_id String,
  kind LowCardinality(String),
  hour DateTime('UTC'),
  marked_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
) ENGINE = {replicated}AggregatingMergeTree ORDER BY (project_id, kind, hour);

CREATE TABLE IF NOT EXISTS {db}.rollup_touched {on_cluster} (
  project_id String,
  touched_at DateTime64(3, 'UTC'),
  trace_id String
) ENGINE = {replicated}ReplacingMergeTree ORDER BY (project_id, touched_at, trace_id)
  TTL toDateTime(touched_at) + INTERVAL 30 DAY;

CREATE TABLE IF NOT EXISTS {db}.rollup_members {on_cluster} (
  project_id String,
  trace_id String,
  kind LowCardinality(String),
  hour DateTime('UTC'),
  generation UInt64
) ENGINE = {replicated}ReplacingMergeTree ORDER BY (project_id, trace_id, kind, hour, generation);

CREATE TABLE IF NOT EXISTS {db}.rollup_hours {on_cluster} (
  project_id String,
  kind LowCardinality(String),
  hour DateTime('UTC'),
  generation UInt64,
  covered DateTime64(3, 'UTC')
) ENGINE = {replicated}ReplacingMergeTree(generation) ORDER BY (project_id, kind, hour);

CREATE TABLE IF NOT EXISTS {db}.rollup_observations {on_cluster} (
  project_id String,
  hour DateTime('UTC'),
  generation UInt64,
  environment String,
  type String,
  name String,
  level String,
  version String,
  model String,
  prompt_name String,
  prompt_version UInt32,
  n AggregateFunction(count),
  traces AggregateFunction(uniqExact, String),
  latency_sum AggregateFunction(sum, Nullable(Int64)),
  latency_min AggregateFunction(min, Nullable(Int64)),
  latency_max AggregateFunction(max, Nullable(Int64)),
  latency_count AggregateFunction(count, Nullable(Int64)),
  latency_avg AggregateFunction(avg, Nullable(Int64)),
  latency_q AggregateFunction(quantiles(0.5, 0.75, 0.9, 0.95, 0.99), Nullable(Int64)),
  ttft_sum AggregateFunction(sum, Nullable(Int64)),
  ttft_min AggregateFunction(min, Nullable(Int64)),
  ttft_max AggregateFunction(max, Nullable(Int64)),
  ttft_count AggregateFunction(count, Nullable(Int64)),
  ttft_avg AggregateFunction(avg, Nullable(Int64)),
  ttft_q AggregateFunction(quantiles(0.5, 0.75, 0.9, 0.95, 0.99), Nullable(Int64)),
  tokens_in_sum AggregateFunction(sum, UInt64),
  tokens_in_min AggregateFunction(min, UInt64),
  tokens_in_max AggregateFunction(max, UInt64),
  tokens_in_count AggregateFunction(count, UInt64),
  tokens_in_avg AggregateFunction(avg, UInt64),
  tokens_out_sum AggregateFunction(sum, UInt64),
  tokens_out_min AggregateFunction(min, UInt64),
  tokens_out_max AggregateFunction(max, UInt64),
  tokens_out_count AggregateFunction(count, UInt64),
  tokens_out_avg AggregateFunction(avg, UInt64),
  tokens_total_sum AggregateFunction(sum, UInt64),
  tokens_total_min AggregateFunction(min, UInt64),
  tokens_total_max AggregateFunction(max, UInt64),
  tokens_total_count AggregateFunction(count, UInt64),
  tokens_total_avg AggregateFunction(avg, UInt64),
  cost_in_sum AggregateFunction(sum, Float64),
  cost_in_min AggregateFunction(min, Float64),
  cost_in_max AggregateFunction(max, Float64),
  cost_in_count AggregateFunction(count, Float64),
  cost_in_avg AggregateFunction(avg, Float64),
  cost_out_sum AggregateFunction(sum, Float64),
  cost_out_min AggregateFunction(min, Float64),
  cost_out_max AggregateFunction(max, Float64),
  cost_out_count AggregateFunction(count, Float64),
  cost_out_avg AggregateFunction(avg, Float64),
  cost_total_sum AggregateFunction(sum, Float64),
  cost_total_min AggregateFunction(min, Float64),
  cost_total_max AggregateFunction(max, Float64),
  cost_total_count AggregateFunction(count, Float64),
  cost_total_avg AggregateFunction(avg, Float64),
  errors_sum AggregateFunction(sum, UInt8),
  errors_min AggregateFunction(min, UInt8),
  errors_max AggregateFunction(max, UInt8),
  errors_count AggregateFunction(count, UInt8),
  errors_avg AggregateFunction(avg, UInt8)
) ENGINE = {replicated}AggregatingMergeTree
  ORDER BY (project_id, hour, generation, environment, type, name, model, level, version, prompt_name, prompt_version);

CREATE TABLE IF NOT EXISTS {db}.rollup_traces {on_cluster} (
  project_id String,
  hour DateTime('UTC'),
  generation UInt64,
  name String,
  environment String,
  release String,
  version String,
  n AggregateFunction(count),
  users AggregateFunction(uniqExact, Nullable(String)),
  observed AggregateFunction(quantiles(0.5, 0.9, 0.95, 0.99), Nullable(Float64)),
  observations_sum AggregateFunction(sum, UInt64),
  observations_min AggregateFunction(min, UInt64),
  observations_max AggregateFunction(max, UInt64),
  observations_count AggregateFunction(count, UInt64),
  observations_avg AggregateFunction(avg, UInt64),
  latency_sum AggregateFunction(sum, Float64),
  latency_min AggregateFunction(min, Float64),
  latency_max AggregateFunction(max, Float64),
  latency_count AggregateFunction(count, Float64),
  latency_avg AggregateFunction(avg, Float64),
  latency_q AggregateFunction(quantiles(0.5, 0.75, 0.9, 0.95, 0.99), Float64),
  tokens_total_sum AggregateFunction(sum, UInt64),
  tokens_total_min AggregateFunction(min, UInt64),
  tokens_total_max AggregateFunction(max, UInt64),
  tokens_total_count AggregateFunction(count, UInt64),
  tokens_total_avg AggregateFunction(avg, UInt64),
  cost_total_sum AggregateFunction(sum, Float64),
  cost_total_min AggregateFunction(min, Float64),
  cost_total_max AggregateFunction(max, Float64),
  cost_total_count AggregateFunction(count, Float64),
  cost_total_avg AggregateFunction(avg, Float64),
  errors_sum AggregateFunction(sum, UInt8),
  errors_min AggregateFunction(min, UInt8),
  errors_max AggregateFunction(max, UInt8),
  errors_count AggregateFunction(count, UInt8),
  errors_avg AggregateFunction(avg, UInt8)
) ENGINE = {replicated}AggregatingMergeTree ORDER BY (project_id, hour, generation, environment, name, release, version);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_marks_observations_mv {on_cluster} TO {db}.rollup_marks AS SELECT
  e.project_id AS project_id,
  k AS kind,
  toDateTime(toStartOfHour(ifNull(e.start_time, e.event_ts)), 'UTC') AS hour,
  max(now64(3)) AS marked_at
FROM {db}.observation_events AS e ARRAY JOIN ['obs', 'trace'] AS k GROUP BY project_id, kind, hour;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_marks_traces_mv {on_cluster} TO {db}.rollup_marks AS SELECT
  e.project_id AS project_id,
  'trace' AS kind,
  toDateTime(toStartOfHour(ifNull(e.timestamp, e.event_ts)), 'UTC') AS hour,
  max(now64(3)) AS marked_at
FROM {db}.trace_events AS e GROUP BY project_id, hour;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_touched_observations_mv {on_cluster} TO {db}.rollup_touched AS SELECT
  e.project_id AS project_id,
  max(now64(3)) AS touched_at,
  e.trace_id AS trace_id
FROM {db}.observation_events AS e GROUP BY project_id, trace_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_touched_traces_mv {on_cluster} TO {db}.rollup_touched AS SELECT
  e.project_id AS project_id,
  max(now64(3)) AS touched_at,
  e.id AS trace_id
FROM {db}.trace_events AS e GROUP BY project_id, trace_id;
