"""Provider adapters: one structured-output call to a judge model.

- OpenAI-compatible endpoints (OpenAI, Azure OpenAI, LiteLLM proxies, vLLM, Ollama) through the
  `openai` client with `response_format={"type": "json_schema", ...}`; an endpoint that rejects
  json_schema is asked once more with `json_object` and the schema in the instructions.
- Anthropic through its Messages API over plain httpx, forcing a tool whose input schema is the
  output schema.

Errors are classified (`JudgeError.kind`) so the job runner can decide: `auth` and `quota` pause
the evaluator when repeated, `transient` (429, 5xx, timeouts, unparsable output) is retried with
backoff, `invalid` (400/404: bad model name, bad request) fails the execution at once.
The clients never retry on their own: the job runner owns the retry policy.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import openai

# `openai` is imported by the functions that call a model, not with this module: loading it takes
# ~25 MiB that a server which never calls an OpenAI-compatible model would keep for nothing.

OPENAI_ADAPTERS = ("openai", "azure")
ADAPTERS = (*OPENAI_ADAPTERS, "anthropic")
AZURE_API_VERSION = "2024-10-21"
ANTHROPIC_URL = "https://api.anthropic.com/v1"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "azure": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest"}
TIMEOUT_SECONDS = 45.0


@dataclass(frozen=True)
class JudgeModel:
    """Everything needed to call one model: the decrypted connection plus the model name."""

    provider: str
    adapter: str
    api_key: str
    model: str
    base_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # temperature, max_tokens, ...
    config: dict[str, Any] | None = None


@dataclass
class JudgeResult:
    output: dict[str, Any]
    text: str
    usage: dict[str, int]
    model: str
    started_at: float
    ended_at: float


class JudgeError(Exception):
    """kind: auth | quota | transient | invalid."""

    def __init__(self, kind: str, message: str, *, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status})" if self.status else self.message


def call_judge(model: JudgeModel, prompt: str, schema: dict[str, Any]) -> JudgeResult:
    """Ask `model` to judge `prompt` and answer a JSON object following `schema`."""
    if model.adapter in OPENAI_ADAPTERS:
        return _openai_judge(model, prompt, schema)
    if model.adapter == "anthropic":
        return _anthropic_judge(model, prompt, schema)
    raise JudgeError("invalid", f"adapter {model.adapter!r} is not supported (use one of {', '.join(ADAPTERS)})")


def ping(model: JudgeModel) -> str:
    """A tiny real call (a few output tokens); returns the model's text or raises JudgeError."""
    import openai

    messages = [{"role": "user", "content": "Reply with the single word: ok"}]
    if model.adapter in OPENAI_ADAPTERS:
        client = openai_client(model)
        try:
            resp = client.chat.completions.create(model=model.model, messages=messages, max_tokens=5)
        except openai.OpenAIError as exc:
            raise openai_error(exc) from exc
        return (resp.choices[0].message.content or "") if resp.choices else ""
    if model.adapter == "anthropic":
        data = anthropic_post(model, {"model": model.model, "max_tokens": 5, "messages": messages})
        return "".join(b.get("text", "") for b in data.get("content", []) if isinstance(b, dict))
    raise JudgeError("invalid", f"adapter {model.adapter!r} is not supported")


# ---- OpenAI-compatible ----------------------------------------------------------------------------
@functools.cache
def _openai_http() -> httpx.Client:
    import openai

    # One pooled HTTP client for every call: building one loads the CA bundle (~150 ms on a busy
    # 2-core box), which would otherwise be paid by each judge and playground call.
    return openai.DefaultHttpxClient()


@functools.cache
def anthropic_http() -> httpx.Client:
    """The pooled HTTP client of Messages API calls (see _openai_http)."""
    return httpx.Client(timeout=TIMEOUT_SECONDS)


def openai_client(model: JudgeModel) -> openai.OpenAI:
    """The `openai` client of an OpenAI-compatible or Azure connection (no retries of its own)."""
    import openai

    headers = dict(model.headers)
    if model.adapter == "azure":
        if not model.base_url:
            raise JudgeError("invalid", "an Azure connection needs its base URL (https://<resource>.openai.azure.com/openai/deployments)")
        return openai.AzureOpenAI(
            api_key=model.api_key, base_url=f"{model.base_url.rstrip('/')}/{model.model}",
            api_version=AZURE_API_VERSION, default_headers=headers, max_retries=0, timeout=TIMEOUT_SECONDS,
            http_client=_openai_http(),
        )
    return openai.OpenAI(api_key=model.api_key, base_url=model.base_url or None, default_headers=headers,
                         max_retries=0, timeout=TIMEOUT_SECONDS, http_client=_openai_http())


def _openai_judge(model: JudgeModel, prompt: str, schema: dict[str, Any]) -> JudgeResult:
    import openai

    client = openai_client(model)
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    fmt: dict[str, Any] = {"type": "json_schema", "json_schema": {"name": "evaluation", "strict": True,
                                                                  "schema": schema}}
    params = {k: v for k, v in model.params.items() if k in ("temperature", "max_tokens", "top_p")}
    started = time.time()
    try:
        resp = client.chat.completions.create(model=model.model, messages=messages, response_format=fmt, **params)
    except openai.BadRequestError as exc:
        if "response_format" not in str(exc) and "json_schema" not in str(exc):
            raise openai_error(exc) from exc
        # Older vLLM/Ollama builds know only json_object: put the schema into the instructions.
        messages = [{"role": "system", "content": "Answer with a JSON object that follows this JSON schema:\n"
                     + json.dumps(schema)}, *messages]
        try:
            resp = client.chat.completions.create(model=model.model, messages=messages,
                                                  response_format={"type": "json_object"}, **params)
        except openai.OpenAIError as exc2:
            raise openai_error(exc2) from exc2
    except openai.OpenAIError as exc:
        raise openai_error(exc) from exc
    ended = time.time()
    if not resp.choices:
        raise JudgeError("transient", "the model returned no choices")
    text = resp.choices[0].message.content or ""
    usage = {}
    if resp.usage is not None:
        usage = {"input": resp.usage.prompt_tokens or 0, "output": resp.usage.completion_tokens or 0,
                 "total": resp.usage.total_tokens or 0}
    return JudgeResult(output=_parse_json(text), text=text, usage=usage, model=resp.model or model.model,
                       started_at=started, ended_at=ended)


def openai_error(exc: Exception) -> JudgeError:
    """An `openai` exception as a classified JudgeError."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        code = str(body.get("code") or getattr(exc, "code", "") or "")
        message = str(body.get("message") or exc.message)
        return _classify(status, code, message)
    if isinstance(exc, openai.APIConnectionError):
        return JudgeError("transient", f"cannot reach the LLM endpoint: {exc}")
    return JudgeError("transient", f"{type(exc).__name__}: {exc}")


def _classify(status: int, code: str, message: str) -> JudgeError:
    if status in (401, 403):
        return JudgeError("auth", f"authentication failed: {message}", status=status)
    if status == 429 and ("quota" in code or "quota" in message.lower() or "billing" in message.lower()):
        return JudgeError("quota", f"quota exceeded: {message}", status=status)
    if status == 402:
        return JudgeError("quota", f"payment required: {message}", status=status)
    if status in (408, 409, 429) or status >= 500:
        return JudgeError("transient", message, status=status)
    return JudgeError("invalid", message, status=status)


# ---- Anthropic ------------------------------------------------------------------------------------
def anthropic_request(model: JudgeModel) -> tuple[str, dict[str, str]]:
    """The Messages API URL and headers of an Anthropic connection."""
    url = (model.base_url or ANTHROPIC_URL).rstrip("/") + "/messages"
    headers = {"x-api-key": model.api_key, "anthropic-version": ANTHROPIC_VERSION,
               "content-type": "application/json", **model.headers}
    return url, headers


def anthropic_error(resp: httpx.Response) -> JudgeError:
    """A Messages API error response (read) as a classified JudgeError."""
    try:
        data = resp.json()
    except ValueError:
        data = {}
    err = data.get("error") if isinstance(data, dict) else None
    err = err if isinstance(err, dict) else {}
    message = str(err.get("message") or resp.text[:300] or resp.reason_phrase)
    kind = str(err.get("type") or "")
    if resp.status_code == 529 or kind == "overloaded_error":
        return JudgeError("transient", message, status=resp.status_code)
    return _classify(resp.status_code, kind, message)


def anthropic_post(model: JudgeModel, payload: dict[str, Any]) -> dict[str, Any]:
    """POST a Messages API payload; the answer, or a classified JudgeError."""
    url, headers = anthropic_request(model)
    try:
        resp = anthropic_http().post(url, json=payload, headers=headers)
    except httpx.HTTPError as exc:
        raise JudgeError("transient", f"cannot reach the LLM endpoint: {exc}") from exc
    if resp.status_code >= 400:
        raise anthropic_error(resp)
    try:
        data = resp.json()
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def _anthropic_judge(model: JudgeModel, prompt: str, schema: dict[str, Any]) -> JudgeResult:
    tool = {"name": "submit_evaluation", "description": "Submit the evaluation result.", "input_schema": schema}
    payload: dict[str, Any] = {
        "model": model.model, "max_tokens": int(model.params.get("max_tokens") or 1024),
        "messages": [{"role": "user", "content": prompt}],
        "tools": [tool], "tool_choice": {"type": "tool", "name": tool["name"]},
    }
    if "temperature" in model.params:
        payload["temperature"] = model.params["temperature"]
    started = time.time()
    data = anthropic_post(model, payload)
    ended = time.time()
    output: dict[str, Any] | None = None
    text = ""
    for block in data.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_use" and isinstance(block.get("input"), dict):
            output = block["input"]
        elif block.get("type") == "text":
            text += str(block.get("text", ""))
    if output is None:
        output = _parse_json(text)  # a model that ignored the tool but answered JSON
    u = data.get("usage") or {}
    usage = {"input": int(u.get("input_tokens") or 0), "output": int(u.get("output_tokens") or 0)}
    usage["total"] = usage["input"] + usage["output"]
    return JudgeResult(output=output, text=text or json.dumps(output), usage=usage,
                       model=str(data.get("model") or model.model), started_at=started, ended_at=ended)


def _parse_json(text: str) -> dict[str, Any]:
    t = text.strip()
    if t.startswith("```"):  # a fenced block from a model that was not constrained
        t = t.strip("`").removeprefix("json").strip()
    try:
        value = json.loads(t)
    except ValueError:
        raise JudgeError("transient", f"the model's answer is not JSON: {text[:200]!r}") from None
    if not isinstance(value, dict):
        raise JudgeError("transient", f"the model's answer is not a JSON object: {text[:200]!r}")
    return value
