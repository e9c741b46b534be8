"""A local OpenAI-compatible HTTP server that answers deterministically.

The one thing tests cannot reach is a paid LLM API; product code and the SDK's OpenAI wrapper talk
to this server through the real `openai` client. Behaviour:

- chat completions echo the last user message (`"echo: <text>"`), with usage counted in words;
  `stream=True` streams the same text in word chunks and a final usage chunk;
- when `tools` are given, the first call answers with a call of the first tool (streamed as
  tool-call deltas when `stream=True`: the name, then the arguments in two pieces); once the last
  message is a tool result, the answer is `"echo tool: <result>"`;
- a model whose name starts with "slow" streams one chunk every 0.15 s (to watch streaming);
- `response_format` json_schema (judge calls): returns `{"score": s, "reasoning": r}` where s is 0
  when the prompt says the answer contradicts its context (the text contains "CONTRADICTS"), or when
  it has a CONTEXT: and an ANSWER: section and the answer uses a word (4+ letters) the context does
  not contain (an unsupported claim), and 1 otherwise; a model named "judge-error" answers 500,
  "judge-auth" answers 401, "judge-quota" answers 429 insufficient_quota, "judge-flaky" answers 503
  to the first request for each prompt and normally afterwards;
- POST /v1/messages speaks Anthropic's Messages API: with a forced tool it answers a `tool_use` block
  whose input is the judge's verdict (same rules and error models); with tools, a call of the first
  one (then `"echo tool: <result>"` once a tool_result comes back); else an echo text block;
  `stream=True` answers its event stream (text word by word, tool input in two pieces);
- embeddings return a fixed-length vector derived from the input's length.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _words(text: str) -> int:
    return max(1, len(text.split()))


def _text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            c = m.get("content")
            if isinstance(c, list):
                return " ".join(p.get("text", "") for p in c if isinstance(p, dict))
            return str(c)
    return ""


def _unsupported_words(prompt: str) -> list[str]:
    """Words of the ANSWER section that the CONTEXT section does not contain (case-insensitive)."""
    if "CONTEXT:" not in prompt or "ANSWER:" not in prompt:
        return []
    context = prompt.split("CONTEXT:", 1)[1].split("ANSWER:", 1)[0].lower()
    answer = prompt.rsplit("ANSWER:", 1)[1].lower()
    known = set(re.findall(r"[a-z]{4,}", context))
    return [w for w in dict.fromkeys(re.findall(r"[a-z]{4,}", answer)) if w not in known]


def judge(prompt: str) -> dict[str, Any]:
    if "CONTRADICTS" in prompt or "contradict" in prompt.split("ANSWER:")[-1].lower():
        return {"score": 0, "reasoning": "The answer contradicts the provided context."}
    unsupported = _unsupported_words(prompt)
    if unsupported:
        return {"score": 0, "reasoning": f"The answer is not supported by the context: {', '.join(unsupported)}."}
    return {"score": 1, "reasoning": "The answer is supported by the provided context."}


def _stream_deltas(text: str, tool_calls: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The chunks' deltas: the text word by word, or each tool call as its name then its
    arguments in two pieces (as OpenAI streams them)."""
    if tool_calls:
        out: list[dict[str, Any]] = [{"role": "assistant", "content": None}]
        for i, call in enumerate(tool_calls):
            args = call["function"]["arguments"]
            half = len(args) // 2
            out.append({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                        "function": {"name": call["function"]["name"], "arguments": ""}}]})
            out += [{"tool_calls": [{"index": i, "function": {"arguments": piece}}]} for piece in (args[:half], args[half:])]
        return out
    pieces = text.split(" ") if text else [""]
    return [{"role": "assistant", "content": w} if i == 0 else {"content": " " + w} for i, w in enumerate(pieces)]


class Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI  # type: ignore[assignment]

    def log_message(self, *args: Any) -> None:  # silence per-request logging
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        self.server.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        if self.path.endswith("/embeddings"):
            inputs = body.get("input")
            inputs = inputs if isinstance(inputs, list) else [inputs]
            data = [{"object": "embedding", "index": i, "embedding": [len(str(x)) / 100.0] * 8}
                    for i, x in enumerate(inputs)]
            tokens = sum(_words(str(x)) for x in inputs)
            self._send(200, {"object": "list", "data": data, "model": body.get("model"),
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
            return
        if self.path.endswith("/messages"):
            self._anthropic(body)
            return
        if not self.path.endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"unknown path {self.path}"}})
            return
        model = body.get("model", "gpt-4o")
        messages = body.get("messages", [])
        prompt = "\n".join(str(m.get("content")) for m in messages)
        if self._judge_error(model, prompt, anthropic=False):
            return
        message: dict[str, Any]
        finish = "stop"
        if body.get("response_format", {}).get("type") in ("json_schema", "json_object"):
            text = json.dumps(judge(prompt))
            message = {"role": "assistant", "content": text}
        elif messages and messages[-1].get("role") == "tool":
            text = f"echo tool: {messages[-1].get('content')}"
            message = {"role": "assistant", "content": text}
        elif body.get("tools") and not any(m.get("role") == "tool" for m in messages):
            fn = body["tools"][0]["function"]["name"]
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function",
                "function": {"name": fn, "arguments": json.dumps({"query": _text(messages)})},
            }]}
            text, finish = "", "tool_calls"
        else:
            text = f"echo: {_text(messages)}"
            message = {"role": "assistant", "content": text}
        p_tokens, c_tokens = _words(prompt), _words(text or "x")
        usage = {"prompt_tokens": p_tokens, "completion_tokens": c_tokens, "total_tokens": p_tokens + c_tokens,
                 "prompt_tokens_details": {"cached_tokens": 1, "audio_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": 0}}
        created = int(time.time())
        if body.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": model}
            pause = 0.15 if str(model).startswith("slow") else 0.0
            for delta in _stream_deltas(text, message.get("tool_calls")):
                chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                time.sleep(pause)
            end = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
            self.wfile.write(f"data: {json.dumps(end)}\n\n".encode())
            if body.get("stream_options", {}).get("include_usage"):
                self.wfile.write(f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        self._send(200, {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage,
        })


    def _judge_error(self, model: str, prompt: str, *, anthropic: bool) -> bool:
        """Answer the error a judge-* model stands for; False when the model should answer normally."""
        def err(status: int, message: str, kind: str, code: str | None = None) -> None:
            if anthropic:
                self._send(status, {"type": "error", "error": {"type": kind, "message": message}})
            else:
                self._send(status, {"error": {"message": message, "type": kind, "code": code}})

        if model == "judge-error":
            err(500, "upstream exploded", "server_error" if not anthropic else "api_error")
        elif model == "judge-auth":
            err(401, "Incorrect API key provided", "invalid_request_error" if not anthropic else
                "authentication_error", "invalid_api_key")
        elif model == "judge-quota":
            err(429, "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota", "insufficient_quota")
        elif model == "judge-flaky" and prompt not in self.server.seen_prompts:
            self.server.seen_prompts.add(prompt)
            err(503, "temporarily overloaded", "server_error" if not anthropic else "overloaded_error")
        else:
            return False
        return True

    def _anthropic(self, body: dict[str, Any]) -> None:
        model = body.get("model", "claude")
        messages = body.get("messages", [])
        prompt = "\n".join(str(m.get("content")) for m in messages)
        if self._judge_error(model, prompt, anthropic=True):
            return
        choice = body.get("tool_choice") or {}
        last = messages[-1].get("content") if messages else None
        result = next((b for b in last if isinstance(b, dict) and b.get("type") == "tool_result"), None) \
            if isinstance(last, list) else None
        if choice.get("type") == "tool":
            content = [{"type": "tool_use", "id": "toolu_fake", "name": choice.get("name"), "input": judge(prompt)}]
            stop = "tool_use"
        elif result is not None:
            content = [{"type": "text", "text": f"echo tool: {result.get('content')}"}]
            stop = "end_turn"
        elif body.get("tools"):
            content = [{"type": "tool_use", "id": "toolu_1", "name": body["tools"][0]["name"],
                        "input": {"query": _text(messages)}}]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": f"echo: {_text(messages)}"}]
            stop = "end_turn"
        usage = {"input_tokens": _words(prompt), "output_tokens": 7}
        if body.get("stream"):
            self._anthropic_stream(model, content, stop, usage)
            return
        self._send(200, {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                         "content": content, "stop_reason": stop, "usage": usage})

    def _anthropic_stream(self, model: str, content: list[dict[str, Any]], stop: str, usage: dict[str, int]) -> None:
        """The Messages API's event stream: text word by word, tool input JSON in two pieces."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()

        def event(kind: str, data: dict[str, Any]) -> None:
            self.wfile.write(f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode())

        event("message_start", {"message": {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                                            "content": [], "usage": {"input_tokens": usage["input_tokens"],
                                                                     "output_tokens": 1}}})
        for i, block in enumerate(content):
            if block["type"] == "text":
                event("content_block_start", {"index": i, "content_block": {"type": "text", "text": ""}})
                words = block["text"].split(" ")
                for j, w in enumerate(words):
                    event("content_block_delta", {"index": i, "delta": {"type": "text_delta",
                                                                        "text": w if j == 0 else " " + w}})
            else:
                event("content_block_start", {"index": i, "content_block": {**block, "input": {}}})
                args = json.dumps(block["input"])
                for piece in (args[: len(args) // 2], args[len(args) // 2:]):
                    event("content_block_delta", {"index": i, "delta": {"type": "input_json_delta",
                                                                        "partial_json": piece}})
            event("content_block_stop", {"index": i})
        event("message_delta", {"delta": {"stop_reason": stop}, "usage": {"output_tokens": usage["output_tokens"]}})
        event("message_stop", {})


class FakeOpenAI(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict[str, Any]] = []
        self.seen_prompts: set[str] = set()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
        self.server_close()
