"""Prompt management with the official `langfuse` SDK against a real server on a loopback port:
create, get (default, label, version), compile, placeholders, relabel, fallback, composition, and a
generation from the SDK's OpenAI wrapper linked to the prompt version it used."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langfuse import Langfuse

from conftest import LiveServer
from owlscope.prompts import prompt_store
from support.fake_openai import FakeOpenAI


@contextmanager
def sdk_client(sdk_server) -> Iterator[tuple[Langfuse, dict, LiveServer]]:
    """The process-wide SDK server and client (the SDK keeps process-wide state: a second client
    that is shut down would break the other SDK tests of this process)."""
    yield sdk_server.client, sdk_server.keys, sdk_server.server


def test_sdk_prompt_lifecycle(sdk_server) -> None:
    with sdk_client(sdk_server) as (lf, _key, _srv):
        created = lf.create_prompt(name="team/summarize", prompt="Summarize {{text}} in {{n}} words.",
                                   labels=["production"], tags=["docs"], config={"temperature": 0.1},
                                   commit_message="first")
        assert (created.name, created.version, created.labels) == ("team/summarize", 1, ["production", "latest"])
        assert created.commit_message == "first"

        p = lf.get_prompt("team/summarize")  # no label, no version: production
        assert (p.version, p.config, p.tags, p.is_fallback) == (1, {"temperature": 0.1}, ["docs"], False)
        assert p.compile(text="the report", n=5) == "Summarize the report in 5 words."

        lf.create_prompt(name="team/summarize", prompt="Shorten {{text}}.", labels=["staging"])
        staging = lf.get_prompt("team/summarize", label="staging", cache_ttl_seconds=0)
        assert (staging.version, staging.compile(text="it"), staging.tags) == (2, "Shorten it.", ["docs"])
        assert lf.get_prompt("team/summarize", version=1, cache_ttl_seconds=0).prompt.startswith("Summarize")
        assert lf.get_prompt("team/summarize", label="latest", cache_ttl_seconds=0).version == 2

        lf.update_prompt(name="team/summarize", version=2, new_labels=["production"])
        assert lf.get_prompt("team/summarize", cache_ttl_seconds=0).version == 2
        assert lf.get_prompt("team/summarize", version=1, cache_ttl_seconds=0).labels == []

        chat = lf.create_prompt(name="assistant", type="chat", labels=["production"], prompt=[
            {"role": "system", "content": "You are {{persona}}."},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "{{question}}"},
        ])
        assert chat.version == 1
        got = lf.get_prompt("assistant", type="chat", cache_ttl_seconds=0)
        messages = got.compile(persona="a pirate", question="Where?", history=[
            {"role": "user", "content": "Ahoy"}, {"role": "assistant", "content": "Arr"}])
        assert messages == [
            {"role": "system", "content": "You are a pirate."},
            {"role": "user", "content": "Ahoy"},
            {"role": "assistant", "content": "Arr"},
            {"role": "user", "content": "Where?"},
        ]

        # Composition: the SDK receives the resolved text.
        lf.create_prompt(name="shared/tone", prompt="Be brief.", labels=["production"])
        lf.create_prompt(name="composed", labels=["production"],
                         prompt="@@@langfusePrompt:name=shared/tone|label=production@@@ Answer {{q}}.")
        assert lf.get_prompt("composed", cache_ttl_seconds=0).compile(q="now") == "Be brief. Answer now."

        listed = lf.api.prompts.list(name="team/summarize")
        assert listed.data[0].versions == [1, 2] and listed.meta.total_items == 1


def test_sdk_falls_back_when_the_prompt_is_missing(sdk_server) -> None:
    with sdk_client(sdk_server) as (lf, _key, _srv):
        text = lf.get_prompt("does-not-exist", fallback="Hello {{name}}", max_retries=0)
        assert text.is_fallback is True
        assert text.compile(name="Ada") == "Hello Ada"

        chat = lf.get_prompt("no-chat", type="chat", max_retries=0,
                             fallback=[{"role": "system", "content": "Hi {{name}}"}])
        assert chat.is_fallback is True
        assert chat.compile(name="Ada") == [{"role": "system", "content": "Hi Ada"}]

        lf.create_prompt(name="does-not-exist", prompt="Now I exist", labels=["production"])
        real = lf.get_prompt("does-not-exist", fallback="Hello {{name}}", max_retries=0, cache_ttl_seconds=0)
        assert (real.is_fallback, real.prompt) == (False, "Now I exist")


def _generation_with_prompt(sdk_server) -> tuple[dict[str, Any], dict[str, Any]]:
    """Call the fake LLM through the SDK's OpenAI wrapper with `langfuse_prompt=`; return the
    created prompt (API shape) and the merged OLAP row of the generation."""
    from langfuse.openai import OpenAI

    with FakeOpenAI() as llm, sdk_client(sdk_server) as (lf, key, srv):
        lf.create_prompt(name="qa/answer", prompt="v1 {{q}}", labels=[])
        lf.create_prompt(name="qa/answer", prompt="Answer: {{q}}", labels=["production"])
        prompt = lf.get_prompt("qa/answer", cache_ttl_seconds=0)
        assert prompt.version == 2

        openai = OpenAI(base_url=llm.base_url, api_key="test-key")
        reply = openai.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": prompt.compile(q="why")}],
            langfuse_prompt=prompt, langfuse_public_key=key["public_key"],
        )
        assert reply.choices[0].message.content == "echo: Answer: why"
        lf.flush()

        olap, project = srv.services.olap, key["project_id"]
        deadline = time.monotonic() + 30
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = olap.query_dicts(
                "SELECT id, argMaxIfMerge(type) AS type, argMaxIfMerge(prompt_name) AS prompt_name, "
                "argMaxIfMerge(prompt_version) AS prompt_version, argMaxIfMerge(prompt_id) AS prompt_id "
                "FROM {db}.observations WHERE project_id = {p:String} GROUP BY project_id, trace_id, id "
                "HAVING type = 'GENERATION' AND prompt_name = 'qa/answer'", {"p": project})
            if rows and rows[0]["prompt_name"]:  # enrichment happens before the insert: one look is enough
                break
            time.sleep(0.2)
        created = prompt_store(srv.services).get(project, "qa/answer", version=2)
        assert rows, "the generation never reached the OLAP store"
        return created, rows[0]


def test_openai_wrapper_generation_is_linked_to_the_prompt_version(sdk_server) -> None:
    created, row = _generation_with_prompt(sdk_server)
    assert (row["prompt_name"], row["prompt_version"]) == ("qa/answer", 2)
    # prompt_id: filled by the ingestion worker (owlscope/pipeline/enrich.py) via resolve_prompt_ids.
    assert row["prompt_id"] == created["id"]
