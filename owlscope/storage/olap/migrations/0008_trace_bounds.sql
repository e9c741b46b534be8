-- Per-trace upper bounds of total cost, total tokens and latency, kept at insert.
--
-- The traces table sorted by cost, tokens or latency (highest first) is an exact threshold top-K
-- (tracing/traces.py `_top_by_bound`): rank traces by an upper bound computed from each partial
-- observation row's own values, merge only the best candidates. Computed from `observations` at
-- read time, the bound is a GROUP BY over every partial row (seconds at ten million rows); here a
-- materialized view on `observations` keeps it per trace, in simple aggregates the engine folds
-- into one row per trace:
-- - cost, tokens: sums of the rows' own values (never negative: a row a later event overrides only
--   adds, so the sum is at least the merged total);
-- - first_ms: the smallest `sort_ts` (at most every merged start), last_ms: the largest of the rows'
--   own end, start and `sort_ts` (at least every merged end): last_ms - first_ms is at least the
--   trace's latency.
-- Rows of deleted traces are deleted with them (a stale row would only make a bound larger).
-- The last statement fills the table from the rows already stored (after the view exists, so no
-- row is missed; a row inserted meanwhile may count twice). If it runs twice (a migration stopped
-- after it and run again), sums count those rows twice: larger bounds, still bounds.

CREATE TABLE IF NOT EXISTS {db}.trace_bounds {on_cluster} (
  project_id String,
  trace_id String,
  cost SimpleAggregateFunction(sum, Float64),
  tokens SimpleAggregateFunction(sum, UInt64),
  first_ms SimpleAggregateFunction(min, Int64),
  last_ms SimpleAggregateFunction(max, Int64)
) ENGINE = {replicated}AggregatingMergeTree ORDER BY (project_id, trace_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.trace_bounds_mv {on_cluster} TO {db}.trace_bounds AS SELECT
  project_id,
  trace_id,
  sum(finalizeAggregation(total_cost)) AS cost,
  sum(finalizeAggregation(total_tokens)) AS tokens,
  min(toUnixTimestamp64Milli(sort_ts)) AS first_ms,
  max(greatest(toUnixTimestamp64Milli(finalizeAggregation(end_time)),
    toUnixTimestamp64Milli(finalizeAggregation(start_time)), toUnixTimestamp64Milli(sort_ts))) AS last_ms
FROM {db}.observations GROUP BY project_id, trace_id;

INSERT INTO {db}.trace_bounds (project_id, trace_id, cost, tokens, first_ms, last_ms) SELECT
  project_id,
  trace_id,
  sum(finalizeAggregation(total_cost)),
  sum(finalizeAggregation(total_tokens)),
  min(toUnixTimestamp64Milli(sort_ts)),
  max(greatest(toUnixTimestamp64Milli(finalizeAggregation(end_time)),
    toUnixTimestamp64Milli(finalizeAggregation(start_time)), toUnixTimestamp64Milli(sort_ts)))
FROM {db}.observations GROUP BY project_id, trace_id SETTINGS optimize_aggregation_in_order = 1;
