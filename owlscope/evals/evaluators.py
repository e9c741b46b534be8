"""Evaluators (job configurations): a template family bound to a target, a filter, a sampling rate,
a delay, a score name, a variable mapping and a time scope (NEW traces, EXISTING ones, or both).

Targets: `trace`, `observation` (the score carries the observation id) and `experiment` (dataset run
items: `owlscope.evals.experiment_targets`). Editing an evaluator never re-scores what it already
scored; a backfill asked for on save (`update_evaluator(..., rescore=True)`) does.

Every function here is a plain domain function (services or sessions in, records or dicts out) that
the public API and the server-rendered UI both call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from owlscope.errors import InvalidRequest
from owlscope.evals import experiment_targets, matching, templates
from owlscope.evals.connections import resolve_model
from owlscope.evals.errors import EvalConflict, EvalInvalid, EvalNotFound, PreflightFailed
from owlscope.evals.queueing import BACKFILL_TASK, requeue_pending
from owlscope.evals.variables import extract_variables, fill_prompt, resolve_values, validate_mapping
from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.eval_models import EvalTemplate, Evaluator, JobExecution
from owlscope.tracing_config.common import parse_input
from owlscope.wire import Page, PageRequest, iso

if TYPE_CHECKING:
    from owlscope.services import Services

NOT_FOUND = "Evaluation rule not found within authorized project"
MAX_DELAY_SECONDS = 7 * 24 * 3600


class EvaluatorSpec(BaseModel):
    """What the UI's evaluator form (and the API layer) submits."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    template: str  # template name or id
    target: Literal["trace", "observation", "experiment"] = "trace"
    filter: list[dict[str, Any]] = []
    mapping: list[dict[str, Any]] | None = None  # None: the template's default mapping
    sampling: float = 1.0
    delay_seconds: int = 10
    score_name: str | None = None
    time_scope: list[Literal["NEW", "EXISTING"]] = ["NEW"]
    enabled: bool = True


def sampled(evaluator_id: str, key: str, rate: float) -> bool:
    """Deterministic sampling: the same target always gets the same answer (replays, retries,
    sweeps and backfills agree), and different evaluators sample independently."""
    if rate >= 1:
        return True
    digest = hashlib.sha256(f"{evaluator_id}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def check_filter(raw: Any, target: str, field: str = "filter") -> list[dict[str, Any]]:
    """A filter list valid for the target (400 `invalid_filter_value` naming the column otherwise)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise EvalInvalid(f"{field} must be a list of conditions", code="invalid_filter_value")
    if target == "experiment":
        try:
            experiment_targets.parse_filter(raw, field)
        except InvalidRequest as exc:
            raise EvalInvalid(exc.message, code="invalid_filter_value", details={
                "field": field, "column": experiment_targets.DATASET_COLUMN,
                "allowedValues": [experiment_targets.DATASET_COLUMN]}) from None
        return [dict(item) for item in raw]
    columns = matching.TRACE_COLUMNS if target == "trace" else matching.OBSERVATION_COLUMNS
    for i, item in enumerate(raw):
        try:
            matching.parse_conditions([item], target, f"{field}[{i}]")
        except InvalidRequest as exc:
            column = item.get("column") if isinstance(item, Mapping) else None
            raise EvalInvalid(exc.message, code="invalid_filter_value", details={
                "field": f"{field}[{i}]", "column": column if isinstance(column, str) else None,
                "allowedValues": sorted(columns)}) from None
    return [dict(item) for item in raw]


def default_mapping(template: EvalTemplate, target: str) -> list[dict[str, Any]]:
    """A template's default mapping for a target. On experiments, a variable named `expected_output`
    reads the dataset item's expected output (the built-in defaults read trace metadata)."""
    raw = list(template.default_mapping or [])
    if target == "experiment":
        raw = [{**m, "object": None, "objectName": None, "source": "expected_output", "jsonPath": None}
               if m.get("variable") == "expected_output" else m for m in raw]
    return raw


def effective_mapping(ev: Evaluator, template: EvalTemplate) -> list[dict[str, Any]]:
    """The mapping an evaluator runs with: its own, else its template's default (validated)."""
    raw = ev.mapping if ev.mapping is not None else default_mapping(template, ev.target)
    return validate_mapping(raw, template.variables, ev.target)


def _template(session: Session, project_id: str, ref: str) -> EvalTemplate:
    templates.ensure_builtin_templates(session, project_id)
    row = templates.latest_by_name(session, project_id, ref) or templates.latest_by_family(session, project_id, ref)
    if row is None:
        raise EvalInvalid(f"no evaluator template named {ref!r} in this project", code="invalid_request")
    return row


def _validate(session: Session, services: Services, project_id: str, spec: EvaluatorSpec,
              *, check_model: bool) -> tuple[EvalTemplate, list[dict[str, Any]] | None, list[dict[str, Any]]]:
    template = _template(session, project_id, spec.template)
    flt = check_filter(spec.filter, spec.target)
    if spec.target == "experiment":
        experiment_targets.check_datasets(session, project_id, flt)
    raw = spec.mapping if spec.mapping is not None else default_mapping(template, spec.target)
    validate_mapping(raw, template.variables, spec.target)
    if not 0 < spec.sampling <= 1:
        raise EvalInvalid("sampling must be greater than 0 and at most 1")
    if not 0 <= spec.delay_seconds <= MAX_DELAY_SECONDS:
        raise EvalInvalid(f"delay must be between 0 and {MAX_DELAY_SECONDS} seconds")
    if not spec.time_scope:
        raise EvalInvalid("time scope must include NEW, EXISTING or both")
    if spec.score_name is not None and not 1 <= len(spec.score_name.strip()) <= 255:
        raise EvalInvalid("score name must be 1 to 255 characters")
    if check_model and spec.enabled:
        resolved = resolve_model(session, services.settings, project_id, template)
        if resolved.model is None:
            raise PreflightFailed(f"evaluator {template.name!r} cannot run: {resolved.problem}. Add an LLM "
                                  "connection and set a model on the template or a default evaluation model.",
                                  details={"evaluatorName": template.name, "provider": template.provider,
                                           "model": template.model})
    return template, spec.mapping, flt


def create_evaluator(services: Services, project_id: str, spec: EvaluatorSpec | dict[str, Any], *,
                     created_by_api: bool = False) -> Evaluator:
    """Save an evaluator; with EXISTING in its time scope (and enabled) a backfill starts."""
    spec = parse_input(EvaluatorSpec, spec)
    name = spec.name.strip()
    if not 1 <= len(name) <= 255:
        raise EvalInvalid("name must be 1 to 255 characters")
    try:
        with write_transaction(services.sessions) as s:
            if s.scalar(select(Evaluator.id).where(Evaluator.project_id == project_id, Evaluator.name == name)):
                raise EvalConflict(f"an evaluation rule named {name!r} already exists in this project")
            template, mapping, flt = _validate(s, services, project_id, spec, check_model=True)
            row = Evaluator(
                project_id=project_id, name=name, template_family_id=template.family_id, target=spec.target,
                filter=flt, mapping=validate_mapping(mapping, template.variables, spec.target) if mapping is not None
                else None, sampling=spec.sampling, delay_seconds=spec.delay_seconds,
                score_name=(spec.score_name or template.name).strip(), time_scope=list(dict.fromkeys(spec.time_scope)),
                enabled=spec.enabled, created_by_api=created_by_api, failure_streak=0, backfill_total=0,
            )
            s.add(row)
    except IntegrityError:
        raise EvalConflict(f"an evaluation rule named {name!r} already exists in this project") from None
    if row.enabled and "EXISTING" in row.time_scope:
        start_backfill(services, project_id, row.id)
    return row


def update_evaluator(services: Services, project_id: str, evaluator_id: str, changes: dict[str, Any], *,
                     rescore: bool = False) -> Evaluator:
    """Change some fields (EvaluatorSpec names). Enabling an evaluator with EXISTING in its scope
    (or adding EXISTING) starts a backfill of the targets it has not judged yet; re-running it is
    harmless (executions are unique). What it already scored keeps its score, unless `rescore`:
    then EXISTING joins the scope and a backfill judges every stored match again with the new
    configuration (each score is rewritten in place, same id)."""
    with write_transaction(services.sessions) as s:
        row = _get(s, project_id, evaluator_id)
        template = templates.latest_by_family(s, project_id, row.template_family_id)
        current = {
            "name": row.name, "template": template.name if template else row.template_family_id,
            "target": row.target, "filter": row.filter, "mapping": row.mapping, "sampling": row.sampling,
            "delay_seconds": row.delay_seconds, "score_name": row.score_name, "time_scope": row.time_scope,
            "enabled": row.enabled,
        }
        unknown = set(changes) - set(current)
        if unknown:
            raise EvalInvalid(f"unknown field(s): {', '.join(sorted(unknown))}")
        spec = parse_input(EvaluatorSpec, {**current, **changes})
        name = spec.name.strip()
        if not 1 <= len(name) <= 255:
            raise EvalInvalid("name must be 1 to 255 characters")
        if name != row.name and s.scalar(select(Evaluator.id).where(
                Evaluator.project_id == project_id, Evaluator.name == name)):
            raise EvalConflict(f"an evaluation rule named {name!r} already exists in this project")
        check_model = spec.enabled and (not row.enabled or "template" in changes)
        template, mapping, flt = _validate(s, services, project_id, spec, check_model=check_model)
        was_backfilling = row.enabled and "EXISTING" in row.time_scope
        row.name, row.template_family_id, row.target, row.filter = name, template.family_id, spec.target, flt
        row.mapping = validate_mapping(mapping, template.variables, spec.target) if mapping is not None else None
        row.sampling, row.delay_seconds, row.enabled = spec.sampling, spec.delay_seconds, spec.enabled
        row.score_name = (spec.score_name or template.name).strip()
        row.time_scope = list(dict.fromkeys(spec.time_scope))
        if "enabled" in changes and spec.enabled:
            row.paused_reason, row.paused_message, row.failure_streak = None, None, 0
        if not spec.enabled:  # what waited is dropped, not run on a later re-enable
            now = utcnow()
            s.execute(update(JobExecution).where(
                JobExecution.evaluator_id == row.id, JobExecution.status == "pending",
            ).values(status="cancelled", error="the evaluator was disabled", finished_at=now, updated_at=now))
        if rescore:
            if not row.enabled:
                raise EvalInvalid("enable the evaluator to run it on existing data")
            row.time_scope = list(dict.fromkeys([*row.time_scope, "EXISTING"]))
        backfill = row.enabled and "EXISTING" in row.time_scope and (rescore or not was_backfilling)
    if backfill:
        start_backfill(services, project_id, row.id, rescore=rescore)
    if row.enabled and "enabled" in changes:
        requeue_pending(services, project_id, row.id)
    return row


def keep_default_mapping(services: Services, project_id: str, evaluator_id: str,
                         spec: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The mapping to save from an edit form that always submits one: None (keep following the
    template's default) when the evaluator followed it and the submitted mapping is that default."""
    submitted = spec.get("mapping")
    with write_transaction(services.sessions) as s:
        row = _get(s, project_id, evaluator_id)
        if row.mapping is not None or submitted is None:
            return submitted
        template = _template(s, project_id, str(spec.get("template") or row.template_family_id))
    target = str(spec.get("target") or row.target)
    try:
        same = (validate_mapping(submitted, template.variables, target)
                == validate_mapping(default_mapping(template, target), template.variables, target))
    except EvalInvalid:
        return submitted  # the update reports what is wrong with it
    return None if same else submitted


def _get(session: Session, project_id: str, evaluator_id: str) -> Evaluator:
    row = session.scalars(select(Evaluator).where(
        Evaluator.project_id == project_id, Evaluator.id == evaluator_id)).first()
    if row is None:
        raise EvalNotFound(NOT_FOUND)
    return row


def get_evaluator(sessions: sessionmaker[Session], project_id: str, evaluator_id: str) -> Evaluator:
    with sessions() as s:
        return _get(s, project_id, evaluator_id)


def list_evaluators(sessions: sessionmaker[Session], project_id: str, *, offset: int = 0,
                    limit: int = 50) -> tuple[list[Evaluator], int]:
    with sessions() as s:
        total = s.scalar(select(func.count()).select_from(Evaluator).where(Evaluator.project_id == project_id)) or 0
        rows = list(s.scalars(select(Evaluator).where(Evaluator.project_id == project_id)
                              .order_by(Evaluator.created_at.desc(), Evaluator.id).offset(offset).limit(limit)))
    return rows, total


def delete_evaluator(sessions: sessionmaker[Session], project_id: str, evaluator_id: str) -> None:
    """Delete an evaluator and its execution records; the scores it wrote stay."""
    with write_transaction(sessions) as s:
        s.delete(_get(s, project_id, evaluator_id))


def set_enabled(services: Services, project_id: str, evaluator_id: str, enabled: bool) -> Evaluator:
    return update_evaluator(services, project_id, evaluator_id, {"enabled": enabled})


def resume_evaluator(services: Services, project_id: str, evaluator_id: str) -> Evaluator:
    """Clear a pause (after fixing the connection) and run the executions that waited."""
    with write_transaction(services.sessions) as s:
        row = _get(s, project_id, evaluator_id)
        row.paused_reason, row.paused_message, row.failure_streak = None, None, 0
    requeue_pending(services, project_id, evaluator_id)
    return row


def start_backfill(services: Services, project_id: str, evaluator_id: str, *, rescore: bool = False) -> None:
    """Evaluate the targets already stored that match the filter (a queue job; progress on the
    evaluator). With `rescore`, the executions finished before now run again (new scores replace
    theirs); without, only targets never judged are."""
    now = utcnow()
    with write_transaction(services.sessions) as s:
        s.execute(update(Evaluator).where(Evaluator.project_id == project_id, Evaluator.id == evaluator_id).values(
            backfill_status="queued", backfill_cursor=None, backfill_total=0, backfill_error=None,
            backfill_updated_at=now, backfill_rescore_before=now if rescore else None))
    services.queue.enqueue(BACKFILL_TASK, evaluator_id, check_full=False)


def evaluator_shape(ev: Evaluator, template: EvalTemplate | None = None) -> dict[str, Any]:
    """A dict for views: the configuration, its effective status and why it is paused."""
    return {
        "id": ev.id, "name": ev.name, "templateId": ev.template_family_id,
        "templateName": template.name if template else None, "templateVersion": template.version if template else None,
        "target": ev.target, "filter": ev.filter, "mapping": ev.mapping, "sampling": ev.sampling,
        "delaySeconds": ev.delay_seconds, "scoreName": ev.score_name, "timeScope": ev.time_scope,
        "enabled": ev.enabled, "status": ev.status, "pausedReason": ev.paused_reason,
        "pausedMessage": ev.paused_message, "backfillStatus": ev.backfill_status,
        "createdAt": iso(ev.created_at), "updatedAt": iso(ev.updated_at),
    }


# ---- executions ---------------------------------------------------------------------------------------
def execution_shape(row: JobExecution) -> dict[str, Any]:
    return {
        "id": row.id, "evaluatorId": row.evaluator_id, "traceId": row.trace_id,
        "observationId": row.observation_id or None, "datasetRunItemId": row.dataset_run_item_id,
        "status": row.status, "origin": row.origin,
        "attempts": row.attempts, "error": row.error, "scoreId": row.score_id, "judgeTraceId": row.judge_trace_id,
        "scheduledAt": iso(row.scheduled_at), "startedAt": iso(row.started_at), "finishedAt": iso(row.finished_at),
        "createdAt": iso(row.created_at), "updatedAt": iso(row.updated_at),
    }


def list_executions(sessions: sessionmaker[Session], project_id: str, evaluator_id: str, *,
                    status: str | None = None, page: PageRequest | None = None) -> Page:
    """An evaluator's execution records, newest first (optionally one status)."""
    page = page or PageRequest()
    with sessions() as s:
        _get(s, project_id, evaluator_id)
        q = select(JobExecution).where(JobExecution.project_id == project_id,
                                       JobExecution.evaluator_id == evaluator_id)
        if status is not None:
            q = q.where(JobExecution.status == status)
        total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
        rows = s.scalars(q.order_by(JobExecution.created_at.desc(), JobExecution.id.desc())
                         .offset(page.offset).limit(page.limit))
        return Page([execution_shape(r) for r in rows], page.page, page.limit, total)


def execution_counts(sessions: sessionmaker[Session], project_id: str, evaluator_id: str,
                     *, origin: str | None = None) -> dict[str, int]:
    """Executions per status (every status present, 0 when none)."""
    with sessions() as s:
        q = select(JobExecution.status, func.count()).where(
            JobExecution.project_id == project_id, JobExecution.evaluator_id == evaluator_id)
        if origin is not None:
            q = q.where(JobExecution.origin == origin)
        found = dict(s.execute(q.group_by(JobExecution.status)).all())
    return {st: int(found.get(st, 0)) for st in ("pending", "running", "completed", "error", "cancelled")}


def backfill_progress(sessions: sessionmaker[Session], project_id: str, evaluator_id: str) -> dict[str, Any]:
    """`{status, scheduled, done, counts, error}`: status queued/running while targets are being
    found, done when all are scheduled; `done` counts finished executions (completed, error, cancelled)."""
    ev = get_evaluator(sessions, project_id, evaluator_id)
    counts = execution_counts(sessions, project_id, evaluator_id, origin="backfill")
    finished = counts["completed"] + counts["error"] + counts["cancelled"]
    return {"status": ev.backfill_status, "scheduled": ev.backfill_total, "done": finished, "counts": counts,
            "error": ev.backfill_error}


# ---- preview ------------------------------------------------------------------------------------------
def render_prompt(services: Services, project_id: str, template: EvalTemplate, mapping: list[dict[str, Any]],
                  trace_id: str, observation_id: str | None, run_item_id: str | None = None,
                  ) -> tuple[str, dict[str, str], dict[str, Any] | None]:
    """(filled prompt, variable values, the trace) for one target (a dataset run item when
    `run_item_id` is given); the trace is None when missing. EvalNotFound when the run item is gone."""
    olap = services.olap
    if run_item_id is not None:
        with services.sessions() as s:
            found = experiment_targets.load_experiment_item(s, olap, project_id, run_item_id)
        if found is None:
            raise EvalNotFound(f"dataset run item {run_item_id!r} not found in this project")
        item, trace = found
        values = resolve_values(mapping, trace=trace, experiment=item)
        return fill_prompt(template.prompt, values), values, trace
    trace = matching.load_trace(olap, project_id, trace_id)
    observation = matching.load_observation(olap, project_id, trace_id, observation_id) if observation_id else None
    values = resolve_values(
        mapping, trace=trace, observation=observation,
        named=lambda kind, name: matching.find_named_observation(olap, project_id, trace_id, kind, name),
    )
    return fill_prompt(template.prompt, values), values, trace


def preview_evaluator(services: Services, project_id: str, spec: EvaluatorSpec | dict[str, Any], *,
                      trace_id: str | None = None, observation_id: str | None = None) -> dict[str, Any]:
    """The filled prompt for a real target before saving: the given trace/observation, else the
    latest one matching the filter (for experiments: the latest run item, or the run item of the
    given trace). `{traceId, observationId, runItemId, prompt, variables, template, model}`."""
    spec = parse_input(EvaluatorSpec, spec)
    run_item_id = None
    with write_transaction(services.sessions) as s:
        template = _template(s, project_id, spec.template)
        flt = check_filter(spec.filter, spec.target)
        raw = spec.mapping if spec.mapping is not None else default_mapping(template, spec.target)
        mapping = validate_mapping(raw, template.variables, spec.target)
        resolved = resolve_model(s, services.settings, project_id, template)
        if spec.target == "experiment":
            found = experiment_targets.match_run_items(
                s, project_id, experiment_targets.parse_filter(flt), trace_ids=[trace_id] if trace_id else None,
                latest_first=True, limit=1)
            if not found:
                raise EvalNotFound("no experiment run item matches this filter yet; run an experiment first")
            run_item_id, trace_id, observation_id = found[0].run_item_id, found[0].trace_id, found[0].observation_id
    conds = matching.parse_conditions(flt, spec.target) if spec.target != "experiment" else []
    if trace_id is None:
        if spec.target == "trace":
            found = matching.match_traces(services.olap, project_id, conds, limit=1, latest_first=True)
            trace_id = found[0] if found else None
        else:
            pairs = matching.match_observations(services.olap, project_id, conds, limit=1, latest_first=True)
            trace_id, observation_id = pairs[0] if pairs else (None, None)
    if trace_id is None:
        raise EvalNotFound(f"no {spec.target} matches this filter yet; send some data or widen the filter")
    prompt, values, trace = render_prompt(services, project_id, template, mapping, trace_id, observation_id,
                                          run_item_id)
    if trace is None:
        raise EvalNotFound(f"trace {trace_id!r} not found in this project")
    return {
        "traceId": trace_id, "observationId": observation_id or None, "runItemId": run_item_id, "prompt": prompt,
        "variables": values,
        "template": {"id": template.family_id, "name": template.name, "version": template.version,
                     "variables": extract_variables(template.prompt)},
        "model": {"provider": resolved.model.provider, "model": resolved.model.model} if resolved.model else None,
        "modelProblem": resolved.problem,
    }
