-- `metadata_pieces` as a Map(text, latest time) instead of a (texts, times) tuple of arrays.
--
-- maxMap over a tuple of arrays is the `maxMappedArrays` aggregate, which the lite chDB engine
-- (chdb-core-lite, the default embedded engine) does not have: it cannot even load a table with such
-- a column. maxMap over a Map is the -Map combinator applied to max, present in every build, and keeps
-- the same meaning: per distinct metadata text, the latest event time that carried it. 0002 and 0003
-- now write the Map form; this migration converts a store created by their earlier text (the
-- conversion is a cast: the pieces keep their texts and times) and replaces both views with the ones
-- that write a Map. On a store that already has the Map form the ALTERs change nothing.
--
-- A store created with the tuple form must run this migration with the full engine (chdb-core) or on
-- a ClickHouse server before the lite engine can open it (docs/deploy.md, "Upgrading").
--
-- Views are dropped first, then the columns converted, then the views created again: a migration killed
-- half-way re-runs from the top.

DROP VIEW IF EXISTS {db}.traces_mv {on_cluster};

DROP VIEW IF EXISTS {db}.observations_mv {on_cluster};

ALTER TABLE {db}.traces {on_cluster}
  MODIFY COLUMN metadata_pieces SimpleAggregateFunction(maxMap, Map(String, DateTime64(3, 'UTC')));

ALTER TABLE {db}.observations {on_cluster}
  MODIFY COLUMN metadata_pieces SimpleAggregateFunction(maxMap, Map(String, DateTime64(3, 'UTC')));

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
  toUInt8(1) AS scalars_complete,
  argMaxIfState(assumeNotNull(e.internal_model_id), e.event_ts, isNotNull(e.internal_model_id)) AS internal_model_id,
  toUInt8(1) AS model_id_stored
FROM {db}.observation_events AS e GROUP BY e.project_id, e.trace_id, e.id;
