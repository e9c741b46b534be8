"""Datasets and experiments: datasets with JSON-schema-checked, versioned items; runs and run
items (from the API, from SDK experiment spans, or from prompt experiments run by the server);
and the comparisons the UI shows.

Entry points (plain functions, shared by the API and the UI):
- store: `create_dataset`, `update_dataset`, `get_dataset`, `list_datasets`, `delete_dataset`;
- items: `upsert_item`, `get_item`, `list_items` (with `version`), `item_versions`, `delete_item`;
- uploads: `add_items_from_traces`, `bulk_add_items`, `parse_upload`, `upload_columns`;
- runs: `create_run_item`, `list_run_items`, `list_runs`, `get_run`, `delete_run`;
- experiments: `list_experiments`, `list_experiment_items`;
- analysis: `runs_table`, `compare_runs`;
- prompt experiments: `start_prompt_experiment`, `run_prompt_experiment`, `prompt_experiment_status`;
- recording: `record_experiments` (the after-flush hook registered by `jobs.register`).
"""
