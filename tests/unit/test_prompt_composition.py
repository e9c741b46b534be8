"""Prompt composition (reference tags, nesting, cycles) and prompt input validation: pure functions."""

from __future__ import annotations

import pytest

from owlscope.errors import InvalidRequest
from owlscope.prompts.composition import (
    MAX_DEPTH,
    CompositionError,
    DependencyTag,
    PromptNode,
    dependency_tags,
    parse_tags,
    resolve,
)
from owlscope.prompts.model import parse_create, validate_label, validate_name, variables


def _lookup(*nodes: PromptNode):
    def lookup(tag: DependencyTag) -> PromptNode | None:
        for n in sorted(nodes, key=lambda n: -n.version):
            if n.name == tag.name and (tag.version == n.version or tag.label in n.labels):
                return n
        return None

    return lookup


def text(name: str, prompt: str, version: int = 1, labels: tuple[str, ...] = ("production",)) -> PromptNode:
    return PromptNode(id=f"{name}-v{version}", name=name, version=version, type="text", prompt=prompt,
                      labels=labels)


# ---- parsing -------------------------------------------------------------------------------------


def test_parse_tags_reads_version_and_label_references_in_order() -> None:
    s = ("a @@@langfusePrompt:name=team/base|version=3@@@ b @@@langfusePrompt:name=x|label=staging@@@ "
         "again @@@langfusePrompt:name=team/base|version=3@@@")
    assert parse_tags(s) == [DependencyTag("team/base", version=3), DependencyTag("x", label="staging")]


@pytest.mark.parametrize("tag", [
    "@@@langfusePrompt:label=x|name=y@@@",  # name must come first
    "@@@langfusePrompt:name=y@@@",  # neither version nor label
    "@@@langfusePrompt:name=y|version=two@@@",
    "@@@langfusePrompt:name=y|version=0@@@",
    "@@@langfusePrompt:name=|label=production@@@",
    "@@langfusePrompt:name=y|label=production@@",
])
def test_malformed_tags_are_not_references(tag: str) -> None:
    assert parse_tags(f"before {tag} after") == []
    node = text("root", f"before {tag} after")
    assert resolve(node, _lookup()) == (f"before {tag} after", None)


def test_dependency_tags_of_a_chat_prompt_come_from_message_contents() -> None:
    msgs = [{"role": "system", "content": "@@@langfusePrompt:name=a|label=production@@@"},
            {"type": "placeholder", "name": "history"},
            {"role": "user", "content": "@@@langfusePrompt:name=b|version=2@@@ {{q}}"}]
    assert dependency_tags("chat", msgs) == [DependencyTag("a", label="production"), DependencyTag("b", version=2)]


# ---- resolution ----------------------------------------------------------------------------------


def test_text_references_resolve_recursively_with_a_graph() -> None:
    leaf = text("leaf", "be brief")
    mid = text("team/mid", "Rules: @@@langfusePrompt:name=leaf|label=production@@@.", version=2)
    root = text("root", "Hi {{name}}. @@@langfusePrompt:name=team/mid|version=2@@@ Bye.", labels=())
    content, graph = resolve(root, _lookup(leaf, mid))
    assert content == "Hi {{name}}. Rules: be brief. Bye."
    assert graph == {
        "root": {"id": "root-v1", "name": "root", "version": 1},
        "dependencies": {
            "root-v1": [{"id": "team/mid-v2", "name": "team/mid", "version": 2}],
            "team/mid-v2": [{"id": "leaf-v1", "name": "leaf", "version": 1}],
        },
    }


def test_label_references_follow_the_label() -> None:
    v1 = text("base", "old", version=1, labels=())
    v2 = text("base", "new", version=2, labels=("production",))
    root = text("root", "[@@@langfusePrompt:name=base|label=production@@@|@@@langfusePrompt:name=base|version=1@@@]")
    assert resolve(root, _lookup(v1, v2))[0] == "[new|old]"


def test_chat_message_contents_resolve_and_placeholders_stay() -> None:
    base = text("persona", "You are a pirate.")
    root = PromptNode(id="c", name="chat", version=1, type="chat", prompt=[
        {"role": "system", "content": "@@@langfusePrompt:name=persona|label=production@@@ Be {{tone}}."},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{question}}"},
    ])
    content, graph = resolve(root, _lookup(base))
    assert content == [
        {"role": "system", "content": "You are a pirate. Be {{tone}}."},
        {"type": "placeholder", "name": "history"},
        {"role": "user", "content": "{{question}}"},
    ]
    assert graph is not None and graph["dependencies"] == {"c": [{"id": "persona-v1", "name": "persona", "version": 1}]}
    assert root.prompt[0]["content"].startswith("@@@")  # the stored content is not modified


def test_a_missing_reference_is_a_clear_400() -> None:
    root = text("root", "x @@@langfusePrompt:name=ghost|label=staging@@@")
    with pytest.raises(CompositionError) as err:
        resolve(root, _lookup())
    assert err.value.status == 400
    assert "'ghost' label 'staging'" in err.value.message and "does not exist" in err.value.message


def test_a_cycle_is_a_clear_400() -> None:
    a = text("a", "A(@@@langfusePrompt:name=b|label=production@@@)")
    b = text("b", "B(@@@langfusePrompt:name=a|label=production@@@)")
    with pytest.raises(CompositionError, match=r"Circular prompt reference: a v1 -> b v1 -> a v1"):
        resolve(a, _lookup(a, b))


def test_a_reference_to_another_version_of_the_same_prompt_is_a_cycle() -> None:
    old = text("p", "old", version=1, labels=())
    new = text("p", "new @@@langfusePrompt:name=p|version=1@@@", version=2)
    with pytest.raises(CompositionError, match="Circular"):
        resolve(new, _lookup(old, new))


def test_only_text_prompts_can_be_referenced() -> None:
    chat = PromptNode(id="c", name="c", version=1, type="chat", prompt=[], labels=("production",))
    with pytest.raises(CompositionError, match="chat prompt; only text prompts"):
        resolve(text("root", "@@@langfusePrompt:name=c|version=1@@@"), _lookup(chat))


def _chain(length: int) -> tuple[PromptNode, list[PromptNode]]:
    """root -> d1 -> ... -> d<length>: `length` levels of references below the root."""
    nodes = [text(f"d{length}", "end")]
    for i in range(length - 1, 0, -1):
        nodes.append(text(f"d{i}", f"<@@@langfusePrompt:name=d{i + 1}|label=production@@@>"))
    root = text("root", "<@@@langfusePrompt:name=d1|label=production@@@>")
    return root, nodes


def test_references_nest_to_max_depth_and_no_deeper() -> None:
    root, nodes = _chain(MAX_DEPTH)
    content, graph = resolve(root, _lookup(*nodes))
    assert content == "<" * MAX_DEPTH + "end" + ">" * MAX_DEPTH
    assert graph is not None and len(graph["dependencies"]) == MAX_DEPTH

    root, nodes = _chain(MAX_DEPTH + 1)
    with pytest.raises(CompositionError, match=f"nested deeper than {MAX_DEPTH} levels"):
        resolve(root, _lookup(*nodes))


def test_a_prompt_without_references_is_returned_as_is() -> None:
    node = text("plain", "Hello {{name}} @ @@ @@@")
    content, graph = resolve(node, _lookup())
    assert content is node.prompt and graph is None


# ---- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["summarize", "team/summarize", "a/b/c-d_e.f", "Team Prompt v2"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name, message", [
    ("", "required"), ("/lead", "start or end with '/'"), ("trail/", "start or end with '/'"),
    ("a//b", "empty folder segments"), ("new", "reserved"), ("a|b", "'|'"), (" pad", "whitespace"),
    ("x" * 256, "limit is 255"), (None, "required"), (3, "required"),
])
def test_invalid_names_are_400_with_the_reason(name: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message.replace("|", r"\|")):
        validate_name(name)


@pytest.mark.parametrize("label", ["production", "staging-2", "v1.2_rc", "a"])
def test_valid_labels(label: str) -> None:
    assert validate_label(label) == label


@pytest.mark.parametrize("label", ["Production", "with space", "ünï", "a/b", "", "x" * 37])
def test_invalid_labels_are_400(label: str) -> None:
    with pytest.raises(InvalidRequest, match="[Ll]abel"):
        validate_label(label)


def test_latest_cannot_be_set_by_hand() -> None:
    with pytest.raises(InvalidRequest, match="'latest' is always assigned"):
        validate_label("latest")
    with pytest.raises(InvalidRequest, match="'latest'"):
        parse_create({"name": "p", "prompt": "x", "labels": ["latest"]})


def test_parse_create_text_defaults() -> None:
    p = parse_create({"name": "p", "prompt": "Hello {{x}}", "labels": ["production", "production"]})
    assert (p.type, p.prompt, p.config, p.labels, p.tags, p.commit_message) == (
        "text", "Hello {{x}}", {}, ["production"], None, None)


def test_parse_create_chat_normalises_messages() -> None:
    p = parse_create({"name": "c", "type": "chat", "prompt": [
        {"role": "system", "content": "hi", "extra": 1}, {"type": "placeholder", "name": "h"},
        {"role": "user", "content": "q", "type": "chatmessage"}]})
    assert p.prompt == [{"role": "system", "content": "hi"}, {"type": "placeholder", "name": "h"},
                        {"role": "user", "content": "q", "type": "chatmessage"}]


@pytest.mark.parametrize("body, message", [
    ({"name": "p", "prompt": [{"role": "user", "content": "x"}]}, "set type to 'chat'"),
    ({"name": "p", "type": "chat", "prompt": "x"}, "list of messages"),
    ({"name": "p", "type": "chat", "prompt": [{"role": "user"}]}, r"prompt\[0\] needs a 'content'"),
    ({"name": "p", "type": "chat", "prompt": [{"type": "placeholder"}]}, "placeholder and needs"),
    ({"name": "p", "type": "chat", "prompt": [{"role": "u", "content": "{{h}}"}, {"type": "placeholder", "name": "h"}]},
     "both use: h"),
    ({"name": "p", "type": "image", "prompt": "x"}, "type must be"),
    ({"name": "p"}, "prompt is required"),
    ({"name": "p", "prompt": "x", "tags": "t"}, "tags must be a list"),
    ({"name": "p", "prompt": "x", "labels": "production"}, "labels must be a list"),
    ({"name": "p", "prompt": "x", "commitMessage": 5}, "commitMessage"),
    ([1, 2], "JSON object"),
])
def test_parse_create_rejects_bad_bodies(body: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_create(body)


def test_variables_are_listed_once_in_order() -> None:
    assert variables("{{b}} {{ a }} {{b}} {x}") == ["b", "a"]
