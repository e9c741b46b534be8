-- Skip indexes for point lookups and for the newest traces.
--
-- `traces` and `observations` are ordered by (project_id, id) and (project_id, trace_id, id), and ids
-- are random: every part's key range covers almost any id, so a lookup by id reads one granule in
-- every part, and a granule of partial rows is thousands of aggregate states per column. With many
-- parts (tens of millions of rows) that dominates reading one trace, or the 50 newest.
-- - `traces.idx_id`, `observations.idx_trace`: bloom filters on the looked-up key, so a lookup reads
--   only the parts (granules) that hold it.
-- - `traces.idx_ts`: min/max of the partial rows' `timestamp`. Every row of a trace has a timestamp at
--   or after the trace's start, so reading the newest traces' rows can add `timestamp >= <the oldest
--   start on the page>` and skip the parts of older data (tracing/traces.py).
-- The indexes are added, then built for the rows already stored; every statement can run again.

ALTER TABLE {db}.traces {on_cluster}
  ADD INDEX IF NOT EXISTS idx_id id TYPE bloom_filter(0.001) GRANULARITY 1;

ALTER TABLE {db}.traces {on_cluster}
  ADD INDEX IF NOT EXISTS idx_ts timestamp TYPE minmax GRANULARITY 1;

ALTER TABLE {db}.observations {on_cluster}
  ADD INDEX IF NOT EXISTS idx_trace trace_id TYPE bloom_filter(0.001) GRANULARITY 1;

ALTER TABLE {db}.traces {on_cluster} MATERIALIZE INDEX idx_id;

ALTER TABLE {db}.traces {on_cluster} MATERIALIZE INDEX idx_ts;

ALTER TABLE {db}.observations {on_cluster} MATERIALIZE INDEX idx_trace;
