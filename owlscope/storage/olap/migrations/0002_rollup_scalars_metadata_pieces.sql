-- Rollups without the Map columns, and metadata merged key by key.
--
-- 1. `observations` gains scalar merged columns for the cost and token rollups (dashboards, daily
--    metrics, per-trace totals): merging an argMaxIf state of a Map goes through ClickHouse's slow
--    generic path (~600 ms per Map column per 1M rows), a Float64/UInt64 one does not. They hold the
--    same value the reads derive from the latest non-empty map: `total` (else the sum of the keys) and
--    the `input`/`output` keys. Rows written before this migration have empty states here and
--    `scalars_complete` = 0 (the column default); the MV writes 1. An observation is read from the
--    scalars only when min(scalars_complete) = 1, otherwise from its maps (tracing/obs_select.py:
--    `rollups_fast` picks the map-free SQL for a project without pre-0002 rows). Aggregate states
--    cannot be backfilled from merged values (the winning event time is not recoverable), so old rows
--    keep being read from their maps.
-- 2. `traces` and `observations` gain `metadata_pieces`: every distinct metadata JSON text with the
--    latest event time that carried it, a Map(text, time) merged with maxMap (repeated identical
--    pieces, as the v5 SDK sends trace metadata on every span, stay one entry). This file first stored
--    a (texts, times) tuple of arrays, which the lite chDB engine cannot merge; 0006 converts such a
--    column in place. Reads merge the pieces key by key in time order, the later
--    piece winning a key (tracing/common.py: `merge_metadata`); rows without pieces fall back to
--    `metadata` (the latest piece whole), which the views keep filling for filters and dimensions.
--
-- Order matters for a migration killed half-way (it re-runs from the top): columns first, then the
-- views are replaced (DROP + CREATE), all idempotent. The `*_events` tables do not change.

ALTER TABLE {db}.traces {on_cluster}
  ADD COLUMN IF NOT EXISTS metadata_pieces SimpleAggregateFunction(maxMap, Map(String, DateTime64(3, 'UTC')));

ALTER TABLE {db}.observations {on_cluster}
  ADD COLUMN IF NOT EXISTS metadata_pieces SimpleAggregateFunction(maxMap, Map(String, DateTime64(3, 'UTC'))),
  ADD COLUMN IF NOT EXISTS total_cost AggregateFunction(argMaxIf, Float64, DateTime64(3, 'UTC'), UInt8),
  ADD COLUMN IF NOT EXISTS input_tokens AggregateFunction(argMaxIf, UInt64, DateTime64(3, 'UTC'), UInt8),
  ADD COLUMN IF NOT EXISTS output_tokens AggregateFunction(argMaxIf, UInt64, DateTime64(3, 'UTC'), UInt8),
  ADD COLUMN IF NOT EXISTS total_tokens AggregateFunction(argMaxIf, UInt64, DateTime64(3, 'UTC'), UInt8),
  ADD COLUMN IF NOT EXISTS scalars_complete SimpleAggregateFunction(min, UInt8) DEFAULT 0;

DROP VIEW IF EXISTS {db}.traces_mv {on_cluster};

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.traces_mv {on_cluster} TO {db}.traces AS SELECT
  e.project_id AS project_id,
  e.id AS id,
  min(ifNull(e.timestamp, e.event_ts)) AS timestamp,
  max(e.event_ts) AS updated_at,
  max(ifNull(e.public, 0)) AS public,
  groupUniqArrayArray(e.tags) AS tags,
  argMaxIfState(assumeNotNull(e.name), e.event_ts, isNotNull(e.name)) AS name,
  argMaxIfState(assumeNotNull(e.root_name), e.event_ts, isNotNull(e.root_name)) AS root_name,
  argMaxIfState(assumeNotNull(e.user_id), e.event_ts, isNotNull(e.user_id)) AS user_id,
  argMaxIfState(assumeNotNull(e.session_id), e.event_ts, isNotNull(e.session_id)) AS session_id,
  argMaxIfState(assumeNotNull(e.release), e.event_ts, isNotNull(e.release)) AS release,
  argMaxIfState(assumeNotNull(e.version), e.event_ts, isNotNull(e.version)) AS version,
  argMaxIfState(assumeNotNull(e.environment), e.event_ts, isNotNull(e.environment)) AS environment,
  argMaxIfState(assumeNotNull(e.bookmarked), e.event_ts, isNotNull(e.bookmarked)) AS bookmarked,
  argMaxIfState(assumeNotNull(e.metadata), e.event_ts, isNotNull(e.metadata)) AS metadata,
  argMaxIfState(assumeNotNull(e.input), e.event_ts, isNotNull(e.input)) AS input,
  argMaxIfState(assumeNotNull(e.output), e.event_ts, isNotNull(e.output)) AS output,
  argMaxIfState(assumeNotNull(e.root_input), e.event_ts, isNotNull(e.root_input)) AS root_input,
  argMaxIfState(assumeNotNull(e.root_output), e.event_ts, isNotNull(e.root_output)) AS root_output,
  maxMapIf(map(assumeNotNull(e.metadata), e.event_ts), isNotNull(e.metadata)) AS metadata_pieces
FROM {db}.trace_events AS e GROUP BY e.project_id, e.id;

DROP VIEW IF EXISTS {db}.observations_mv {on_cluster};

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.observations_mv {on_cluster} TO {db}.observations AS SELECT
  e.project_id AS project_id,
  e.trace_id AS trace_id,
  e.id AS id,
  min(ifNull(e.start_time, e.event_ts)) AS sort_ts,
  max(e.event_ts) AS updated_at,
  argMaxIfState(assumeNotNull(e.type), e.event_ts, isNotNull(e.type)) AS type,
  argMaxIfState(assumeNotNull(e.name), e.event_ts, isNotNull(e.name)) AS name,
  argMaxIfState(assumeNotNull(e.parent_observation_id), e.event_ts, isNotNull(e.parent_observation_id)) AS parent_observation_id,
  argMaxIfState(assumeNotNull(e.start_time), e.event_ts, isNotNull(e.start_time)) AS start_time,
  argMaxIfState(assumeNotNull(e.end_time), e.event_ts, isNotNull(e.end_time)) AS end_time,
  argMaxIfState(assumeNotNull(e.completion_start_time), e.event_ts, isNotNull(e.completion_start_time)) AS completion_start_time,
  argMaxIfState(assumeNotNull(e.level), e.event_ts, isNotNull(e.level)) AS level,
  argMaxIfState(assumeNotNull(e.status_message), e.event_ts, isNotNull(e.status_message)) AS status_message,
  argMaxIfState(assumeNotNull(e.version), e.event_ts, isNotNull(e.version)) AS version,
  argMaxIfState(assumeNotNull(e.environment), e.event_ts, isNotNull(e.environment)) AS environment,
  argMaxIfState(assumeNotNull(e.input), e.event_ts, isNotNull(e.input)) AS input,
  argMaxIfState(assumeNotNull(e.output), e.event_ts, isNotNull(e.output)) AS output,
  argMaxIfState(assumeNotNull(e.metadata), e.event_ts, isNotNull(e.metadata)) AS metadata,
  argMaxIfState(assumeNotNull(e.model), e.event_ts, isNotNull(e.model)) AS model,
  argMaxIfState(assumeNotNull(e.model_parameters), e.event_ts, isNotNull(e.model_parameters)) AS model_parameters,
  argMaxIfState(e.usage_details, e.event_ts, notEmpty(e.usage_details)) AS usage_details,
  argMaxIfState(e.cost_details, e.event_ts, notEmpty(e.cost_details)) AS cost_details,
  argMaxIfState(assumeNotNull(e.provided_cost), e.event_ts, isNotNull(e.provided_cost)) AS provided_cost,
  argMaxIfState(assumeNotNull(e.prompt_id), e.event_ts, isNotNull(e.prompt_id)) AS prompt_id,
  argMaxIfState(assumeNotNull(e.prompt_name), e.event_ts, isNotNull(e.prompt_name)) AS prompt_name,
  argMaxIfState(assumeNotNull(e.prompt_version), e.event_ts, isNotNull(e.prompt_version)) AS prompt_version,
  maxMapIf(map(assumeNotNull(e.metadata), e.event_ts), isNotNull(e.metadata)) AS metadata_pieces,
  argMaxIfState(if(mapContains(e.cost_details, 'total'), e.cost_details['total'], arraySum(mapValues(e.cost_details))),
    e.event_ts, notEmpty(e.cost_details)) AS total_cost,
  argMaxIfState(e.usage_details['input'], e.event_ts, notEmpty(e.usage_details)) AS input_tokens,
  argMaxIfState(e.usage_details['output'], e.event_ts, notEmpty(e.usage_details)) AS output_tokens,
  argMaxIfState(if(mapContains(e.usage_details, 'total'), e.usage_details['total'], arraySum(mapValues(e.usage_details))),
    e.event_ts, notEmpty(e.usage_details)) AS total_tokens,
  toUInt8(1) AS scalars_complete
FROM {db}.observation_events AS e GROUP BY e.project_id, e.trace_id, e.id;
