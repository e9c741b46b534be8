-- Full-text search over trace input and output.
--
-- A token bloom filter skip index on the lower-cased text of each partial trace row (input, output
-- and the root observation's input and output). A search asks `hasToken` of that same expression for
-- each word, so ClickHouse skips the granules that cannot hold the word, then the few candidate traces
-- are merged and checked for the phrase (tracing/model.py `TRACE_TEXT`, tracing/trace_table.py).
-- The index is added, then built for the rows already stored; both statements can run again.

ALTER TABLE {db}.traces {on_cluster}
  ADD INDEX IF NOT EXISTS idx_text lower(concat(finalizeAggregation(input), ' ', finalizeAggregation(output), ' ', finalizeAggregation(root_input), ' ', finalizeAggregation(root_output))) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 1;

ALTER TABLE {db}.traces {on_cluster} MATERIALIZE INDEX idx_text;
