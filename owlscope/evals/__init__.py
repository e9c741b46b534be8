"""LLM-as-a-judge evaluation.

- `connections`: LLM connections per project (encrypted keys, `test_connection`), default model.
- `templates` / `builtin_templates`: versioned judge prompts with an output definition.
- `evaluators`: job configurations (target, filter, sampling, delay, mapping), preview, executions.
- `variables`: `{{variables}}`, mappings and JSONPath (jsonpath-ng).
- `judge`: provider adapters (OpenAI-compatible via `openai`, Anthropic via httpx).
- `jobs` / `runner`: scheduling after ingest flushes, backfills, execution, the sweeper.
- `public_api`: the unstable public evaluation API's shapes.
- `crypto`: AES-256-GCM for provider secrets; `check_encryption` for startup and `owlscope doctor`.
"""
