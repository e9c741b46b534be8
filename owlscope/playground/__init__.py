"""The playground: try messages against a project's LLM connections, replay a traced generation,
keep the result as a prompt version or a dataset item. Every call is traced in the project under
the environment `langfuse-playground`.

- `spec`: the run request and how its messages compile (variables, placeholders);
- `run`: `stream_run` (streaming call, cost, trace);
- `sources`: the editor's state from a prompt version or a traced generation;
- `save`: a new prompt version or dataset item from the editor.
"""

from __future__ import annotations

from owlscope.playground.run import PLAYGROUND_ENVIRONMENT, stream_run
from owlscope.playground.save import save_dataset_item, save_prompt_version
from owlscope.playground.sources import empty_state, from_observation, from_prompt, replay_state
from owlscope.playground.spec import MAX_COLUMNS, compile_messages, parse_run

__all__ = [
    "MAX_COLUMNS", "PLAYGROUND_ENVIRONMENT", "compile_messages", "empty_state", "from_observation", "from_prompt",
    "parse_run", "replay_state", "save_dataset_item", "save_prompt_version", "stream_run",
]
