"""Running one execution: claim it, fill the prompt from the merged trace, call the judge, write the
score (source EVAL, reasoning as comment) and the judge's own trace, record the outcome.

Idempotent: the claim is a conditional UPDATE (pending, or running with an expired lease), and every
id written (judge trace, generation, scores) is derived from the execution id, so a second run of
the same execution rewrites the same records instead of adding new ones.

Failures: transient provider errors (429, 5xx, timeouts, unparsable answers) and a trace not yet
visible are retried with backoff (`RETRY_DELAYS`), then end as `error` with the message. Auth and
quota errors end the execution as `error`; `PAUSE_AFTER` of them in a row pause the evaluator with
the reason, and its remaining executions wait (pending) until it is resumed.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from owlscope.errors import ServiceUnavailable, TooManyRequests
from owlscope.evals import templates
from owlscope.evals.connections import resolve_model
from owlscope.evals.errors import EvalInvalid, EvalNotFound
from owlscope.evals.evaluators import effective_mapping, render_prompt
from owlscope.evals.judge import JudgeError, JudgeModel, JudgeResult, call_judge
from owlscope.evals.matching import JUDGE_ENVIRONMENT
from owlscope.evals.queueing import enqueue_execution
from owlscope.ingestion.batch import validate_batch
from owlscope.pipeline.accept import accept_events
from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.eval_models import EvalTemplate, Evaluator, JobExecution
from owlscope.telemetry import EVAL_EXECUTIONS
from owlscope.wire import iso

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.evals")
RETRY_DELAYS: tuple[float, ...] = (5.0, 30.0, 120.0)  # seconds before attempts 2, 3, 4
PAUSE_AFTER = 3  # consecutive auth/quota failures
FINAL = ("completed", "error", "cancelled")
_NS = uuid.UUID("3b1f0f0e-4c2a-4f7e-9a51-6d3c1c2e8b77")


def derived_id(kind: str, execution_id: str) -> str:
    return uuid.uuid5(_NS, f"{kind}:{execution_id}").hex


def lease_seconds(services: Services) -> float:
    return float(services.settings.sweeper_grace_seconds)


class _Fail(Exception):
    """A permanent failure of this execution (retrying cannot help)."""


def claim(services: Services, execution_id: str) -> tuple[JobExecution, Evaluator] | None:
    """Take the execution for this worker; None when there is nothing (more) to do now."""
    now = utcnow()
    with write_transaction(services.sessions) as s:
        ex = s.get(JobExecution, execution_id)
        if ex is None or ex.status in FINAL:
            return None
        ev = s.get(Evaluator, ex.evaluator_id)
        if ev is None:
            return None
        if not ev.enabled:
            ex.status, ex.error, ex.finished_at = "cancelled", "the evaluator was disabled", now
            EVAL_EXECUTIONS.labels("cancelled").inc()
            return None
        if ev.paused_reason:
            return None  # waits: resume_evaluator enqueues it again
        wait = (ex.scheduled_at - now).total_seconds()
        if wait > 0.5:
            enqueue_execution(services, ex.id, delay=wait)
            return None
        cutoff = now - timedelta(seconds=lease_seconds(services))
        taken = s.execute(update(JobExecution).where(
            JobExecution.id == ex.id,
            or_(JobExecution.status == "pending",
                (JobExecution.status == "running") & (JobExecution.started_at < cutoff)),
        ).values(status="running", started_at=now, attempts=JobExecution.attempts + 1, updated_at=now))
        if taken.rowcount != 1:
            return None  # another worker holds it
        s.refresh(ex)
        s.expunge(ex)
        s.expunge(ev)
        return ex, ev


def run_execution(services: Services, execution_id: str) -> None:
    """Run one execution to its next state (completed, error, retry later, or waiting)."""
    taken = claim(services, execution_id)
    if taken is None:
        return
    ex, ev = taken
    try:
        with services.sessions() as s:
            template = templates.latest_by_family(s, ev.project_id, ev.template_family_id)
            if template is None:
                raise _Fail("the evaluator's template was deleted")
            resolved = resolve_model(s, services.settings, ev.project_id, template)
        if resolved.model is None:
            _pause(services, ex, ev, "llm_connection_missing", f"Cannot run: {resolved.problem}.")
            return
        try:
            mapping = effective_mapping(ev, template)
        except EvalInvalid as exc:
            raise _Fail(f"the variable mapping does not fit template version {template.version}: {exc.message}") from None
        try:
            prompt, _values, trace = render_prompt(services, ev.project_id, template, mapping, ex.trace_id,
                                                   ex.observation_id or None, ex.dataset_run_item_id)
        except EvalNotFound as exc:
            raise _Fail(f"{exc.message} (deleted since it was scheduled)") from None
        if trace is None:
            raise JudgeError("transient", f"trace {ex.trace_id} is not (yet) stored")
        schema = templates.output_schema(template.output_definition)
        result = call_judge(resolved.model, prompt, schema)
        values, reasoning = templates.parse_judgement(template.output_definition, result.output)
        score_id = _write(services, ex, ev, template, resolved.model, prompt, result, values, reasoning,
                          trace.get("environment") or "default")
    except _Fail as exc:
        _finish(services, ex, "error", error=str(exc))
    except JudgeError as exc:
        _on_judge_error(services, ex, ev, exc)
    except (TooManyRequests, ServiceUnavailable) as exc:
        _retry_or_fail(services, ex, f"cannot store the result yet: {exc.message}")
    except Exception as exc:  # noqa: BLE001 - an unexpected failure must end in a record, not silence
        log.exception("evaluation %s failed", ex.id)
        _finish(services, ex, "error", error=f"internal error: {type(exc).__name__}: {exc}")
    else:
        _finish(services, ex, "completed", score_id=score_id, judge_trace_id=derived_id("trace", ex.id))
        if ev.failure_streak:
            with write_transaction(services.sessions) as s:
                s.execute(update(Evaluator).where(Evaluator.id == ev.id).values(failure_streak=0))


def _finish(services: Services, ex: JobExecution, status: str, *, error: str | None = None,
            score_id: str | None = None, judge_trace_id: str | None = None) -> None:
    now = utcnow()
    with write_transaction(services.sessions) as s:
        s.execute(update(JobExecution).where(JobExecution.id == ex.id).values(
            status=status, error=error[:4000] if error else None, score_id=score_id, judge_trace_id=judge_trace_id,
            finished_at=now, updated_at=now))
    EVAL_EXECUTIONS.labels(status).inc()


def _retry_or_fail(services: Services, ex: JobExecution, message: str) -> None:
    if ex.attempts > len(RETRY_DELAYS):
        _finish(services, ex, "error", error=f"{message} (gave up after {ex.attempts} attempts)")
        return
    delay = RETRY_DELAYS[ex.attempts - 1]
    now = utcnow()
    with write_transaction(services.sessions) as s:
        s.execute(update(JobExecution).where(JobExecution.id == ex.id).values(
            status="pending", error=message[:4000], scheduled_at=now + timedelta(seconds=delay), updated_at=now))
    enqueue_execution(services, ex.id, delay=delay)


def _on_judge_error(services: Services, ex: JobExecution, ev: Evaluator, exc: JudgeError) -> None:
    if exc.kind == "transient":
        _retry_or_fail(services, ex, str(exc))
        return
    _finish(services, ex, "error", error=str(exc))
    if exc.kind not in ("auth", "quota"):
        return
    with write_transaction(services.sessions) as s:
        s.execute(update(Evaluator).where(Evaluator.id == ev.id).values(failure_streak=Evaluator.failure_streak + 1))
        streak = s.scalar(select(Evaluator.failure_streak).where(Evaluator.id == ev.id)) or 0
        if streak >= PAUSE_AFTER:
            reason = "llm_authentication_failed" if exc.kind == "auth" else "llm_quota_exceeded"
            what = "authentication" if exc.kind == "auth" else "quota"
            s.execute(update(Evaluator).where(Evaluator.id == ev.id, Evaluator.paused_reason.is_(None)).values(
                paused_reason=reason,
                paused_message=(f"Paused after {streak} {what} errors in a row from the LLM provider: {exc}. "
                                "Fix the LLM connection, then resume the evaluator.")))
    if streak >= PAUSE_AFTER:
        log.warning("evaluator %s paused: %s", ev.id, exc)


def _pause(services: Services, ex: JobExecution, ev: Evaluator, reason: str, message: str) -> None:
    now = utcnow()
    with write_transaction(services.sessions) as s:
        s.execute(update(Evaluator).where(Evaluator.id == ev.id).values(paused_reason=reason, paused_message=message))
        # back to the queue of waiting executions; resume_evaluator runs it
        s.execute(update(JobExecution).where(JobExecution.id == ex.id).values(
            status="pending", error=message, attempts=JobExecution.attempts - 1, updated_at=now))


def _write(services: Services, ex: JobExecution, ev: Evaluator, template: EvalTemplate, model: JudgeModel,
           prompt: str, result: JudgeResult, values: list[Any], reasoning: str, environment: str) -> str:
    """Store the judge trace + generation and the score(s) as one batch; return the first score id."""
    now = utcnow()
    trace_id, gen_id = derived_id("trace", ex.id), derived_id("generation", ex.id)
    messages = [{"role": "user", "content": prompt}]
    meta = {"evaluator_id": ev.id, "execution_id": ex.id, "target_trace_id": ex.trace_id,
            "target_observation_id": ex.observation_id or None, "score_name": ev.score_name,
            "target_dataset_run_item_id": ex.dataset_run_item_id,
            "template": template.name, "template_version": template.version}
    events: list[dict[str, Any]] = [
        _event("trace-create", ex.id, now, {
            "id": trace_id, "timestamp": iso(datetime.fromtimestamp(result.started_at, UTC)),
            "name": f"Execute evaluator: {ev.name}", "environment": JUDGE_ENVIRONMENT, "input": messages,
            "output": result.output, "metadata": meta,
        }),
        _event("generation-create", ex.id, now, {
            "id": gen_id, "traceId": trace_id, "name": f"{template.name} judge", "environment": JUDGE_ENVIRONMENT,
            "startTime": iso(datetime.fromtimestamp(result.started_at, UTC)),
            "endTime": iso(datetime.fromtimestamp(result.ended_at, UTC)), "model": result.model,
            "modelParameters": {k: v for k, v in model.params.items() if isinstance(v, str | int | float | bool)},
            "input": messages, "output": result.output, "usageDetails": result.usage, "metadata": meta,
        }),
    ]
    data_type = template.output_definition["dataType"]
    score_ids = []
    for i, value in enumerate(values):
        sid = str(uuid.UUID(derived_id(f"score{i}", ex.id)))
        score_ids.append(sid)
        body: dict[str, Any] = {
            "id": sid, "traceId": ex.trace_id, "name": ev.score_name, "value": value, "dataType": data_type,
            "source": "EVAL", "comment": reasoning, "environment": environment, "timestamp": iso(now),
            "metadata": {"evaluator_id": ev.id, "execution_id": ex.id, "judge_trace_id": trace_id},
        }
        if ex.observation_id:
            body["observationId"] = ex.observation_id
        events.append(_event("score-create", f"{ex.id}:{i}", now, body))
    accepted, errors = validate_batch(events)
    if errors:
        raise _Fail(f"cannot store the evaluation: {errors[0]['message']}")
    accept_events(services, project_id=ev.project_id, events=accepted)
    return score_ids[0]


def _event(kind: str, key: str, now: datetime, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(uuid.uuid5(_NS, f"{kind}:{key}")), "type": kind, "timestamp": iso(now), "body": body}
