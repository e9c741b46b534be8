-- A min/max skip index on the observations' start time (`sort_ts`).
--
-- `observations` is ordered by (project_id, trace_id, id) and ids are random, so a part's granules each
-- span the part's whole time range; but rows arrive roughly in time order, so parts of older data
-- hold only older times. Reads restricted to recent hours (the hours a rollup does not yet cover,
-- the newest observations) then skip every part outside them instead of reading every row's time,
-- as `traces.idx_ts` (0007) does for traces. Added, then built for the rows already stored; both
-- statements can run again.

ALTER TABLE {db}.observations {on_cluster}
  ADD INDEX IF NOT EXISTS idx_sort_ts sort_ts TYPE minmax GRANULARITY 1;

ALTER TABLE {db}.observations {on_cluster} MATERIALIZE INDEX idx_sort_ts;
