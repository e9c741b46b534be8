"""Prompt experiments run by the server: a prompt version × a dataset × a model.

For each active item the prompt is filled with the item's input variables, the model is called
through the `openai` client, and the call is traced into the project (a trace and a generation,
through the ingestion pipeline like any SDK event); a run item links the dataset item to the trace.

Everything that can be checked is checked before the first call (prompt, dataset, a free run
name, every prompt variable present in every item, a usable model connection), so a bad
experiment fails with a clear 400 instead of half-running. `start_prompt_experiment` does those
checks and queues the job; the job is idempotent (items already in the run are skipped), and its
status lives in the blob store (`prompt_experiment_status`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select

from owlscope.datasets.runs import ensure_run, find_run, record_run_item
from owlscope.datasets.store import find_dataset
from owlscope.errors import InvalidRequest, NotFound
from owlscope.evals.connections import get_connection, judge_model
from owlscope.evals.jobs import schedule, schedule_run_items
from owlscope.storage.oltp.dataset_models import DatasetItem, DatasetRunItem
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.eval_models import Evaluator
from owlscope.wire import iso

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.datasets")
ENVIRONMENT = "langfuse-prompt-experiment"
PROMPT_EXPERIMENT_TASK = "dataset_prompt_experiment"
_VAR = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}")
OPENAI_ADAPTERS = ("openai",)
_PARAM_KEYS = ("temperature", "max_tokens", "top_p", "frequency_penalty", "presence_penalty", "stop", "seed")
ProgressFn = Callable[[dict[str, Any]], None]


# ---- prompt ------------------------------------------------------------------------------------

def prompt_variables(prompt: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(variables, placeholders) of a prompt in the API's shape, in order of first use."""
    if prompt["type"] == "text":
        return list(dict.fromkeys(_VAR.findall(prompt["prompt"]))), []
    names: list[str] = []
    holders: list[str] = []
    for m in prompt["prompt"]:
        if m.get("type") == "placeholder":
            holders.append(m["name"])
        else:
            names += _VAR.findall(m.get("content") or "")
    return list(dict.fromkeys(names)), holders


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def compile_messages(prompt: dict[str, Any], variables: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat messages for one item: variables filled in, placeholders replaced by the item's
    message lists; a text prompt becomes one user message."""
    def fill(text: str) -> str:
        return _VAR.sub(lambda m: _text(variables[m.group(1)]) if m.group(1) in variables else m.group(0), text)

    if prompt["type"] == "text":
        return [{"role": "user", "content": fill(prompt["prompt"])}]
    out: list[dict[str, Any]] = []
    for m in prompt["prompt"]:
        if m.get("type") == "placeholder":
            value = variables.get(m["name"]) or []
            out += value if isinstance(value, list) else [{"role": "user", "content": _text(value)}]
        else:
            out.append({"role": m["role"], "content": fill(m.get("content") or "")})
    return out


def check_items(prompt: dict[str, Any], items: list[DatasetItem]) -> None:
    """Every prompt variable and placeholder must be a key of every item's input (a 400 naming
    the missing variables and the first items that lack them otherwise)."""
    names, holders = prompt_variables(prompt)
    needed = names + holders
    if not needed:
        return
    bad = []
    for it in items:
        keys = set(it.input) if isinstance(it.input, dict) else set()
        missing = [n for n in needed if n not in keys]
        if missing:
            bad.append((it.id, missing))
    if bad:
        all_missing = sorted({n for _, ms in bad for n in ms})
        sample = "; ".join(f"item {i!r} lacks {', '.join(ms)}" for i, ms in bad[:5])
        raise InvalidRequest(
            f"prompt {prompt['name']!r} version {prompt['version']} uses variable(s) {', '.join(all_missing)} "
            f"that {len(bad)} of {len(items)} dataset items do not have in their input (an object with "
            f"those keys): {sample}"
        )


# ---- model ---------------------------------------------------------------------------------------

def llm_client(services: Services, *, project_id: str, connection_id: str | None, base_url: str | None,
               api_key: str | None) -> Any:
    """An `openai.OpenAI` client: from base_url/api_key when given, else from the project's LLM
    connection (by id, or by provider name) with an OpenAI-compatible adapter."""
    from openai import OpenAI

    if base_url or api_key:
        return OpenAI(base_url=base_url, api_key=api_key or "none", max_retries=1, timeout=120)
    if not connection_id:
        raise InvalidRequest("choose an LLM connection (connection_id) or give base_url and api_key")
    with services.sessions() as session:
        row = get_connection(session, project_id, connection_id=connection_id) or get_connection(
            session, project_id, provider=connection_id)
        if row is None:
            raise NotFound(f"LLM connection {connection_id!r} not found in this project")
        if row.adapter not in OPENAI_ADAPTERS:
            raise InvalidRequest(f"LLM connection {row.provider!r} uses the {row.adapter!r} adapter; prompt "
                                 f"experiments need an OpenAI-compatible one ({', '.join(OPENAI_ADAPTERS)})")
        conn = judge_model(services.settings, row, model="")
    return OpenAI(base_url=conn.base_url or None, api_key=conn.api_key, default_headers=conn.headers or None,
                  max_retries=1, timeout=120)


# ---- tracing ---------------------------------------------------------------------------------------

def _events(*, trace_id: str, gen_id: str, prompt: dict, item: DatasetItem, run_name: str, model: str,
            params: dict, messages: list, start: datetime, end: datetime, output: str | None,
            usage: dict | None, error: str | None, response_model: str | None) -> list[dict[str, Any]]:
    md = {"dataset_id": item.dataset_id, "dataset_item_id": item.id, "experiment_run_name": run_name,
          "prompt_name": prompt["name"], "prompt_version": prompt["version"]}
    now = iso(datetime.now(UTC))
    trace = {"id": trace_id, "timestamp": iso(start), "name": f"prompt-experiment/{prompt['name']}",
             "input": item.input, "output": output, "metadata": md, "environment": ENVIRONMENT}
    gen: dict[str, Any] = {
        "id": gen_id, "traceId": trace_id, "name": prompt["name"], "startTime": iso(start), "endTime": iso(end),
        "input": messages, "output": {"role": "assistant", "content": output} if output is not None else None,
        "model": response_model or model, "modelParameters": params, "metadata": md,
        "promptName": prompt["name"], "promptVersion": prompt["version"], "environment": ENVIRONMENT,
    }
    if usage:
        gen["usageDetails"] = usage
    if error:
        gen.update(level="ERROR", statusMessage=error)
    return [{"id": uuid.uuid4().hex, "type": "trace-create", "timestamp": now, "body": trace},
            {"id": uuid.uuid4().hex, "type": "generation-create", "timestamp": now, "body": gen}]


# ---- the experiment ----------------------------------------------------------------------------------

def _prepare(services: Services, *, project_id: str, prompt_name: str, prompt_version: int | None,
             dataset_name: str, run_name: str, allow_existing_run: bool) -> tuple[dict, list[DatasetItem], str]:
    from owlscope.prompts import prompt_store

    if not run_name or not run_name.strip():
        raise InvalidRequest("run_name must be a non-empty string")
    prompt = prompt_store(services).get(project_id, prompt_name, version=prompt_version)
    with services.sessions() as session:
        ds = find_dataset(session, project_id, dataset_name)
        if not allow_existing_run and find_run(session, project_id, ds.id, run_name) is not None:
            raise InvalidRequest(f"dataset {dataset_name!r} already has a run named {run_name!r}: choose another name")
        items = list(session.scalars(select(DatasetItem).where(
            DatasetItem.project_id == project_id, DatasetItem.dataset_id == ds.id, DatasetItem.status == "ACTIVE",
        ).order_by(DatasetItem.created_at, DatasetItem.id)))
    if not items:
        raise InvalidRequest(f"dataset {dataset_name!r} has no active items")
    check_items(prompt, items)
    return prompt, items, ds.id


def run_prompt_experiment(
    services: Services, *, project_id: str, prompt_name: str, prompt_version: int | None, connection_id: str | None,
    model: str, dataset_name: str, run_name: str, evaluator_ids: list[str] | tuple[str, ...] = (),
    concurrency: int = 4, on_progress: ProgressFn | None = None, base_url: str | None = None,
    api_key: str | None = None, model_params: dict[str, Any] | None = None, description: str | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Run the experiment now (in this thread, `concurrency` calls at a time) and return a summary:
    {runId, runName, datasetName, total, done, failed, errors}. `on_progress` gets that summary
    after each item. With `resume`, an existing run of that name is continued (its items skipped)."""
    from owlscope.pipeline.accept import accept_events

    prompt, items, dataset_id = _prepare(services, project_id=project_id, prompt_name=prompt_name,
                                         prompt_version=prompt_version, dataset_name=dataset_name,
                                         run_name=run_name, allow_existing_run=resume)
    client = llm_client(services, project_id=project_id, connection_id=connection_id, base_url=base_url,
                        api_key=api_key)
    params = {k: prompt["config"][k] for k in _PARAM_KEYS if isinstance(prompt.get("config"), dict)
              and k in prompt["config"]}
    params.update(model_params or {})
    started = datetime.now(UTC)
    with write_transaction(services.sessions) as session:
        run = ensure_run(session, project_id=project_id, dataset_id=dataset_id, name=run_name,
                         description=description, created_at=started, metadata={
                             "prompt": {"name": prompt["name"], "version": prompt["version"], "id": prompt["id"]},
                             "model": model, "modelParameters": params, "evaluators": list(evaluator_ids),
                             "source": "prompt-experiment"})
        done_keys = set(session.scalars(select(DatasetRunItem.item_key).where(
            DatasetRunItem.project_id == project_id, DatasetRunItem.run_id == run.id)))
    todo = [it for it in items if it.id not in done_keys]
    progress = {"runId": run.id, "runName": run_name, "datasetName": dataset_name, "total": len(items),
                "done": len(items) - len(todo), "failed": 0, "errors": []}
    lock = threading.Lock()

    def one(item: DatasetItem) -> None:
        messages = compile_messages(prompt, item.input if isinstance(item.input, dict) else {})
        trace_id, gen_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        start = datetime.now(UTC)
        output = usage = error = response_model = None
        try:
            resp = client.chat.completions.create(model=model, messages=messages, **params)
            output = resp.choices[0].message.content if resp.choices else None
            response_model = getattr(resp, "model", None)
            if resp.usage is not None:
                usage = {"input": resp.usage.prompt_tokens, "output": resp.usage.completion_tokens,
                         "total": resp.usage.total_tokens}
        except Exception as exc:  # noqa: BLE001 - a failed call is recorded on its item, the rest go on
            error = f"{type(exc).__name__}: {exc}"
        end = datetime.now(UTC)
        accept_events(services, project_id=project_id, events=_events(
            trace_id=trace_id, gen_id=gen_id, prompt=prompt, item=item, run_name=run_name, model=model,
            params=params, messages=messages, start=start, end=end, output=output, usage=usage, error=error,
            response_model=response_model))
        with write_transaction(services.sessions) as session:
            run_row = ensure_run(session, project_id=project_id, dataset_id=dataset_id, name=run_name)
            run_item = record_run_item(session, run_row, item_key=item.id, dataset_item_id=item.id,
                                       trace_id=trace_id, observation_id=gen_id, dataset_item_version=started,
                                       created_at=start)
            run_item_id = run_item.id
        try:
            evaluate_run_item(services, project_id=project_id, run_item_id=run_item_id, trace_id=trace_id,
                              observation_id=gen_id, evaluator_ids=list(evaluator_ids))
        except Exception:  # noqa: BLE001 - scheduling an evaluation must not stop the experiment
            log.exception("cannot schedule the evaluation of run item %s", item.id)
        with lock:
            progress["done"] += 1
            if error:
                progress["failed"] += 1
                if len(progress["errors"]) < 5:
                    progress["errors"].append(f"item {item.id}: {error}")
            snapshot = dict(progress, errors=list(progress["errors"]))
        if on_progress is not None:
            on_progress(snapshot)

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, 32))) as pool:
        for f in [pool.submit(one, it) for it in todo]:
            f.result()
    return progress


# ---- as a queue job ----------------------------------------------------------------------------------

def _status_key(project_id: str, job_id: str) -> str:
    return f"datasets/prompt-experiments/{project_id}/{job_id}.json"


def _write_status(services: Services, project_id: str, job_id: str, status: dict[str, Any]) -> None:
    services.blobs.put(_status_key(project_id, job_id), orjson.dumps(status))


def prompt_experiment_status(services: Services, *, project_id: str, job_id: str) -> dict[str, Any]:
    """The job's status: {id, status (queued|running|completed|failed), total, done, failed, errors,
    error, runId, runName, datasetName, params, createdAt, finishedAt}."""
    try:
        return orjson.loads(services.blobs.get(_status_key(project_id, job_id)))
    except FileNotFoundError as exc:
        raise NotFound(f"prompt experiment {job_id!r} not found") from exc


def evaluate_run_item(
    services: Services, *, project_id: str, run_item_id: str, trace_id: str, observation_id: str | None,
    evaluator_ids: Sequence[str],
) -> None:
    """Evaluators judge the item's output after their usual delay: the project's active experiment
    evaluators whose filter matches, and those chosen for this experiment (an experiment evaluator
    judges the run item, with the dataset item's expected output; a trace or observation evaluator
    the trace, or the generation)."""
    schedule_run_items(services, project_id, [run_item_id])
    if not evaluator_ids:
        return
    schedule_run_items(services, project_id, [run_item_id], evaluator_ids=list(evaluator_ids), origin="experiment")
    with services.sessions() as session:
        evaluators = list(session.scalars(select(Evaluator).where(
            Evaluator.project_id == project_id, Evaluator.id.in_(list(evaluator_ids)),
            Evaluator.target != "experiment")))
    for ev in evaluators:
        target = (trace_id, observation_id or "") if ev.target == "observation" else (trace_id, "")
        schedule(services, ev, [target], origin="experiment")


def start_prompt_experiment(
    services: Services, *, project_id: str, prompt_name: str, prompt_version: int | None, connection_id: str | None,
    model: str, dataset_name: str, run_name: str, evaluator_ids: list[str] | tuple[str, ...] = (),
    concurrency: int = 4, base_url: str | None = None, api_key: str | None = None,
    model_params: dict[str, Any] | None = None, description: str | None = None,
) -> str:
    """Check everything, then queue the experiment; returns the job id for `prompt_experiment_status`.
    (A base_url/api_key given directly travels in the queued job; prefer an LLM connection.)"""
    _prepare(services, project_id=project_id, prompt_name=prompt_name, prompt_version=prompt_version,
             dataset_name=dataset_name, run_name=run_name, allow_existing_run=False)
    llm_client(services, project_id=project_id, connection_id=connection_id, base_url=base_url, api_key=api_key)
    job_id = uuid.uuid4().hex
    params = {"project_id": project_id, "prompt_name": prompt_name, "prompt_version": prompt_version,
              "connection_id": connection_id, "model": model, "dataset_name": dataset_name, "run_name": run_name,
              "evaluator_ids": list(evaluator_ids), "concurrency": concurrency, "base_url": base_url,
              "model_params": model_params, "description": description}
    _write_status(services, project_id, job_id, {
        "id": job_id, "status": "queued", "params": params, "runName": run_name, "datasetName": dataset_name,
        "total": None, "done": 0, "failed": 0, "errors": [], "error": None, "createdAt": iso(datetime.now(UTC)),
        "finishedAt": None})
    services.queue.enqueue(PROMPT_EXPERIMENT_TASK, project_id, job_id, api_key, check_full=False)
    return job_id


def run_prompt_experiment_job(services: Services, project_id: str, job_id: str, api_key: str | None = None) -> None:
    """The queued job: runs (or resumes) the experiment and keeps its status up to date."""
    status = prompt_experiment_status(services, project_id=project_id, job_id=job_id)
    if status["status"] == "completed":
        return
    params = status["params"]
    last = [0.0]

    def progress(p: dict[str, Any]) -> None:
        status.update(p)
        if time.monotonic() - last[0] > 0.5 or p["done"] == p["total"]:
            last[0] = time.monotonic()
            _write_status(services, project_id, job_id, status)

    status["status"] = "running"
    _write_status(services, project_id, job_id, status)
    try:
        result = run_prompt_experiment(
            services, project_id=project_id, prompt_name=params["prompt_name"],
            prompt_version=params["prompt_version"], connection_id=params["connection_id"], model=params["model"],
            dataset_name=params["dataset_name"], run_name=params["run_name"], evaluator_ids=params["evaluator_ids"],
            concurrency=params["concurrency"], on_progress=progress, base_url=params["base_url"], api_key=api_key,
            model_params=params["model_params"], description=params["description"], resume=True,
        )
        status.update(result, status="completed", finishedAt=iso(datetime.now(UTC)))
    except Exception as exc:  # noqa: BLE001 - recorded for the UI; the log has the trace
        log.exception("prompt experiment %s failed", job_id)
        message = exc.message if isinstance(exc, InvalidRequest | NotFound) else f"{type(exc).__name__}: {exc}"
        status.update(status="failed", error=message, finishedAt=iso(datetime.now(UTC)))
    _write_status(services, project_id, job_id, status)
