-- The matched model of each observation, stored at ingestion.
--
-- The worker prices a generation with the project's price book; the model that matched (a project
-- model or a global one) is now kept with the row as `internal_model_id`, so the read returns the id
-- that priced the cost instead of matching the name again. An event that names a model stores the
-- matched id, or '' when no model matched (so a later event naming an unknown model replaces an
-- earlier match, as the model name itself does); an event that names no model stores NULL (says
-- nothing). `model_id_stored` is 1 on rows the view writes from now on and 0 (the default) on older
-- rows: an observation with an older row is matched by name when read (api/model_prices.py).
--
-- Columns first, then the view is replaced (DROP + CREATE): a migration killed half-way re-runs
-- from the top. The view is 0002's plus the two columns.

ALTER TABLE {db}.observation_events {on_cluster}
  ADD COLUMN IF NOT EXISTS internal_model_id Nullable(String);

ALTER TABLE {db}.observations {on_cluster}
  ADD COLUMN IF NOT EXISTS internal_model_id AggregateFunction(argMaxIf, String, DateTime64(3, 'UTC'), UInt8),
  ADD COLUMN IF NOT EXISTS model_id_stored SimpleAggregateFunction(min, UInt8) DEFAULT 0;

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
  toUInt8(1) AS scalars_complete,
  argMaxIfState(assumeNotNull(e.internal_model_id), e.event_ts, isNotNull(e.internal_model_id)) AS internal_model_id,
  toUInt8(1) AS model_id_stored
FROM {db}.observation_events AS e GROUP BY e.project_id, e.trace_id, e.id;
