"""Keeping what worked: the editor's messages as a new prompt version, or a run as a dataset item.

Both go through the domains that own them (owlscope.prompts `PromptStore.create`,
owlscope.datasets `create_dataset` / `upsert_item`), so the same rules hold as in the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from owlscope.datasets.items import upsert_item
from owlscope.datasets.store import create_dataset
from owlscope.errors import InvalidRequest
from owlscope.pipeline.masking import masker_for
from owlscope.playground.spec import ModelChoice, RunRequest, Tool, compile_messages
from owlscope.prompts import parse_create, prompt_store
from owlscope.tracing_config.common import parse_input

if TYPE_CHECKING:
    from owlscope.services import Services


class SavePromptRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    type: str = "chat"  # "text" keeps a single message as a text prompt
    messages: list[dict[str, Any]] = Field(min_length=1)
    model: ModelChoice | None = None
    tools: list[Tool] = Field(default_factory=list)
    output_schema: dict[str, Any] | None = None
    commit_message: str = ""
    labels: list[str] = Field(default_factory=list)


def prompt_body(req: SavePromptRequest) -> dict[str, Any]:
    """The CreatePromptRequest for the editor's state: variables and placeholders stay templates;
    model, parameters, tools and output schema go into the config."""
    messages: list[dict[str, Any]] = []
    for m in req.messages:
        if m.get("type") == "placeholder":
            messages.append({"type": "placeholder", "name": m.get("name")})
        else:
            messages.append({"role": m.get("role"), "content": m.get("content") or ""})
    config: dict[str, Any] = {}
    if req.model is not None:
        config = {"model": req.model.model, **req.model.params}
    if req.tools:
        config["tools"] = [{"type": "function", "function": t.model_dump()} for t in req.tools]
    if req.output_schema is not None:
        config["response_format"] = {"type": "json_schema", "json_schema": {"name": "output",
                                                                          "schema": req.output_schema}}
    prompt: Any = messages
    prompt_type = "chat"
    if req.type == "text":
        if len(messages) != 1 or "content" not in messages[0]:
            raise InvalidRequest("a text prompt is one message: remove the others or save it as a chat prompt")
        prompt, prompt_type = messages[0]["content"], "text"
    return {"name": req.name, "type": prompt_type, "prompt": prompt, "config": config, "labels": req.labels,
            "commitMessage": req.commit_message.strip() or None}


def save_prompt_version(services: Services, project_id: str, body: Any, *,
                        created_by: str | None = None) -> dict[str, Any]:
    """A new version of the named prompt (version 1 of a new name); returns the API's Prompt."""
    req = parse_input(SavePromptRequest, body)
    return prompt_store(services).create(project_id, parse_create(prompt_body(req)), created_by=created_by)


class SaveItemRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    dataset: str = Field(min_length=1)
    run: RunRequest
    output: Any = None
    trace_id: str | None = None
    observation_id: str | None = None


def save_dataset_item(services: Services, project_id: str, body: Any) -> dict[str, Any]:
    """A dataset item from a run (the dataset is created when the name is new).

    Its input is the variables when the messages use some (so the item feeds a prompt experiment
    of the saved prompt), else the compiled messages; the expected output is the run's output; the
    item links to the run's trace."""
    req = parse_input(SaveItemRequest, body)
    item_input: Any = dict(req.run.variables) if req.run.variables else compile_messages(req.run)
    create_dataset(services.sessions, project_id=project_id, name=req.dataset)
    return upsert_item(
        services.sessions, masker=masker_for(services, project_id), project_id=project_id, dataset_name=req.dataset, input=item_input,
        expected_output=req.output,
        metadata={"source": "playground", "provider": req.run.model.provider, "model": req.run.model.model},
        source_trace_id=req.trace_id or None, source_observation_id=req.observation_id or None,
    )
