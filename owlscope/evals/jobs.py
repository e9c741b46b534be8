"""Evaluation jobs: scheduling new traces after each ingest flush, backfills, running executions,
and the sweeper that recovers lost jobs from the durable OLTP state.

Wiring (`register(services)`, called by owlscope.worker.tasks when services are built):
- queue tasks `eval_execute` (one execution), `eval_backfill` (one evaluator's existing traces);
- a huey periodic task `eval_sweep`, which the consumer enqueues when it starts and every minute,
  so it runs only where a worker runs and stops with it;
- an after-flush hook: the trace ids touched by a batch of inserted rows are matched against the
  active evaluators (on the merged OLAP state) and the sampled matches get an execution record,
  scheduled after the evaluator's delay; experiment evaluators match the dataset run items of those
  traces (the hook runs after the experiment recorder), and `schedule_run_items` is called where
  run items are made otherwise (the run-item API, prompt experiments).

Execution records are the durable truth: a job lost with a crashed worker (huey's dequeue is
destructive) is found again by the sweeper, which re-enqueues pending executions whose time has
passed and running ones whose lease (SWEEPER_GRACE_SECONDS) expired. Judge calls run on a small
thread pool of their own, so slow LLM calls never hold the queue's consumer threads (ingestion).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update

from owlscope.evals import experiment_targets, matching
from owlscope.evals.evaluators import sampled
from owlscope.evals.matching import JUDGE_ENVIRONMENT
from owlscope.evals.queueing import BACKFILL_TASK, EXECUTE_TASK, SWEEP_TASK, enqueue_execution
from owlscope.evals.runner import lease_seconds, run_execution
from owlscope.evals.sqlutil import insert_ignore
from owlscope.ingestion.rows import Rows
from owlscope.storage.oltp.base import new_id, utcnow
from owlscope.storage.oltp.db import write_transaction
from owlscope.storage.oltp.eval_models import Evaluator, JobExecution

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from owlscope.services import Services

log = logging.getLogger("owlscope.evals")
MAX_INFLIGHT = 256  # executions handed to the pool and not finished; beyond that the job waits in the queue
BACKFILL_PAGE = 1000
SWEEP_LIMIT = 2000
_INSERT_CHUNK = 500


def register(services: Services) -> None:
    services.queue.register(EXECUTE_TASK, lambda execution_id: dispatch(services, execution_id))
    services.queue.register(BACKFILL_TASK, lambda evaluator_id: run_backfill(services, evaluator_id))
    services.queue.huey.periodic_task(lambda _ts: True, name=SWEEP_TASK)(lambda: _safe_sweep(services))


# ---- running -------------------------------------------------------------------------------------------
def dispatch(services: Services, execution_id: str) -> None:
    """The queue task: hand the execution to the judge pool, or wait in the queue when it is full."""
    pool = services.judges
    with pool.lock:
        if execution_id in pool.inflight:
            return
        if len(pool.inflight) >= MAX_INFLIGHT:
            full = True
        else:
            full = False
            pool.inflight.add(execution_id)
    if full:
        enqueue_execution(services, execution_id, delay=1.0)
        return

    def work() -> None:
        try:
            run_execution(services, execution_id)
        except Exception:  # noqa: BLE001 - the record stays pending/running; the sweeper retries it
            log.exception("evaluation %s crashed", execution_id)
        finally:
            with pool.lock:
                pool.inflight.discard(execution_id)

    try:
        pool.executor.submit(work)
    except RuntimeError:  # the pool was shut down with the process: the sweeper picks it up later
        with pool.lock:
            pool.inflight.discard(execution_id)


# ---- scheduling ----------------------------------------------------------------------------------------
def schedule(services: Services, ev: Evaluator, targets: list[tuple[str, ...]], *, origin: str,
             delay: float | None = None, rescore_before: datetime | None = None) -> int:
    """Create pending executions for (trace_id, observation_id[, dataset_run_item_id]) targets not
    seen before by this evaluator and enqueue them after the delay; return how many were new.

    With `rescore_before`, the targets' executions that finished before that time are run again too
    (their scores are rewritten in place: the ids derive from the execution)."""
    delay = float(ev.delay_seconds if delay is None else delay)
    now = utcnow()
    at = now + timedelta(seconds=delay)
    created: list[str] = []
    again: list[str] = []
    for i in range(0, len(targets), _INSERT_CHUNK):
        chunk = targets[i:i + _INSERT_CHUNK]
        rows = [{
            "id": new_id(), "project_id": ev.project_id, "evaluator_id": ev.id, "trace_id": t[0],
            "observation_id": t[1] or "", "dataset_run_item_id": t[2] if len(t) > 2 else None, "origin": origin,
            "status": "pending", "attempts": 0, "error": None, "score_id": None, "judge_trace_id": None,
            "scheduled_at": at, "started_at": None, "finished_at": None, "created_at": now, "updated_at": now,
        } for t in chunk]
        with write_transaction(services.sessions) as s:
            created += insert_ignore(s, JobExecution, rows, conflict=("evaluator_id", "trace_id", "observation_id"),
                                     returning=JobExecution.id)
            if rescore_before is not None:
                again += _rescore(s, ev, chunk, rescore_before, origin=origin, at=at)
    for eid in created + again:
        enqueue_execution(services, eid, delay=delay)
    return len(created) + len(again)


def _rescore(s: Session, ev: Evaluator, targets: list[tuple[str, ...]], before: datetime, *, origin: str,
             at: datetime) -> list[str]:
    """Back to pending: the executions of these targets that finished before `before`."""
    keys = {(t[0], t[1] or "") for t in targets}
    rows = s.execute(select(JobExecution.id, JobExecution.trace_id, JobExecution.observation_id).where(
        JobExecution.evaluator_id == ev.id, JobExecution.trace_id.in_(sorted({k[0] for k in keys})),
        JobExecution.status.in_(("completed", "error", "cancelled")), JobExecution.finished_at < before)).all()
    ids = [eid for eid, tid, oid in rows if (tid, oid) in keys]
    if ids:
        s.execute(update(JobExecution).where(JobExecution.id.in_(ids)).values(
            status="pending", origin=origin, attempts=0, error=None, scheduled_at=at, started_at=None,
            finished_at=None, updated_at=utcnow()))
    return ids


def schedule_new_targets(services: Services, rows: Rows) -> None:
    """After-flush hook: match the traces/observations in `rows` against active NEW-scope evaluators.

    Idempotent: a replayed batch matches the same targets, and executions are unique per target."""
    traces: dict[str, set[str]] = defaultdict(set)
    observations: dict[str, set[str]] = defaultdict(set)
    for t in rows.traces:
        if t.environment != JUDGE_ENVIRONMENT:
            traces[t.project_id].add(t.id)
    for o in rows.observations:
        if o.environment != JUDGE_ENVIRONMENT:
            traces[o.project_id].add(o.trace_id)
            observations[o.project_id].add(o.id)
    if not traces:
        return
    for ev in _active_new(services, list(traces)):
        try:
            if ev.target == "experiment":
                ids = sorted(traces[ev.project_id])
                flt = experiment_targets.parse_filter(ev.filter)
                for i in range(0, len(ids), _INSERT_CHUNK):  # bound the statement's parameters
                    with services.sessions() as s:
                        items = experiment_targets.match_run_items(s, ev.project_id, flt,
                                                                   trace_ids=ids[i:i + _INSERT_CHUNK])
                    _schedule_run_items(services, ev, items)
                continue
            conds = matching.parse_conditions(ev.filter, ev.target)
            if ev.target == "trace":
                found = [(tid, "") for tid in matching.match_traces(services.olap, ev.project_id, conds,
                                                                    ids=traces[ev.project_id])]
            else:
                if not observations[ev.project_id]:
                    continue
                found = matching.match_observations(services.olap, ev.project_id, conds,
                                                    ids=observations[ev.project_id])
            picked = [(t, o) for t, o in found if sampled(ev.id, o or t, ev.sampling)]
            if picked:
                schedule(services, ev, picked, origin="new")
        except Exception:  # noqa: BLE001 - one evaluator's failure must not stop the others
            log.exception("cannot schedule evaluator %s", ev.id)


def _active_new(services: Services, project_ids: list[str], *, target: str | None = None) -> list[Evaluator]:
    """The enabled, unpaused evaluators of these projects whose time scope includes NEW."""
    q = select(Evaluator).where(Evaluator.project_id.in_(project_ids), Evaluator.enabled.is_(True),
                                Evaluator.paused_reason.is_(None))
    if target is not None:
        q = q.where(Evaluator.target == target)
    with services.sessions() as s:
        return [ev for ev in s.scalars(q) if "NEW" in (ev.time_scope or [])]


def _schedule_run_items(services: Services, ev: Evaluator, items: list[experiment_targets.RunItemTarget], *,
                        origin: str = "new") -> int:
    picked = [(i.trace_id, i.observation_id, i.run_item_id) for i in items if sampled(ev.id, i.run_item_id, ev.sampling)]
    return schedule(services, ev, picked, origin=origin) if picked else 0


def schedule_run_items(services: Services, project_id: str, run_item_ids: list[str], *,
                       evaluator_ids: list[str] | None = None, origin: str = "new") -> int:
    """Match new dataset run items against the project's experiment evaluators (active, NEW in
    scope), or against the evaluators named (those with target `experiment`, whatever their scope).
    Idempotent: executions are unique per target. Returns how many were scheduled."""
    if not run_item_ids:
        return 0
    if evaluator_ids is None:
        evaluators = _active_new(services, [project_id], target="experiment")
    else:
        with services.sessions() as s:
            evaluators = list(s.scalars(select(Evaluator).where(
                Evaluator.project_id == project_id, Evaluator.id.in_(evaluator_ids),
                Evaluator.target == "experiment", Evaluator.enabled.is_(True))))
    total = 0
    for ev in evaluators:
        try:
            with services.sessions() as s:
                items = experiment_targets.match_run_items(s, project_id, experiment_targets.parse_filter(ev.filter),
                                                           run_item_ids=run_item_ids)
            total += _schedule_run_items(services, ev, items, origin=origin)
        except Exception:  # noqa: BLE001 - the run item is stored; one evaluator's failure must not undo it
            log.exception("cannot schedule evaluator %s on run items", ev.id)
    return total


# ---- backfill ------------------------------------------------------------------------------------------
def run_backfill(services: Services, evaluator_id: str) -> None:
    """Schedule the stored targets that match an evaluator's filter, page by page (resumable: the
    cursor and the running total are saved after each page)."""
    with write_transaction(services.sessions) as s:
        ev = s.get(Evaluator, evaluator_id)
        if ev is None:
            return
        if not ev.enabled or "EXISTING" not in (ev.time_scope or []):
            ev.backfill_status = "cancelled"
            return
        ev.backfill_status, ev.backfill_updated_at = "running", utcnow()
        s.flush()
        s.expunge(ev)
    try:
        conds = matching.parse_conditions(ev.filter, ev.target) if ev.target != "experiment" else []
        cursor, total = ev.backfill_cursor, ev.backfill_total
        rescore = ev.backfill_rescore_before
        while True:
            if ev.target == "experiment":
                with services.sessions() as s:
                    items = experiment_targets.match_run_items(
                        s, ev.project_id, experiment_targets.parse_filter(ev.filter), after_id=cursor,
                        limit=BACKFILL_PAGE)
                page = [(i.trace_id, i.observation_id, i.run_item_id) for i in items]
                last = items[-1].run_item_id if items else None
            elif ev.target == "trace":
                page = [(tid, "") for tid in matching.match_traces(
                    services.olap, ev.project_id, conds, after_id=cursor, limit=BACKFILL_PAGE)]
                last = page[-1][0] if page else None
            else:
                after = tuple(cursor.split("\x1f", 1)) if cursor else None
                page = matching.match_observations(services.olap, ev.project_id, conds, after=after,  # type: ignore[arg-type]
                                                   limit=BACKFILL_PAGE)
                last = "\x1f".join(page[-1]) if page else None
            if not page:
                break
            picked = [t for t in page if sampled(ev.id, t[2] if len(t) > 2 else (t[1] or t[0]), ev.sampling)]
            schedule(services, ev, picked, origin="backfill", delay=0, rescore_before=rescore)
            cursor, total = last, total + len(picked)
            with write_transaction(services.sessions) as s:
                s.execute(update(Evaluator).where(Evaluator.id == ev.id).values(
                    backfill_cursor=cursor, backfill_total=total, backfill_updated_at=utcnow()))
            if len(page) < BACKFILL_PAGE:
                break
        status, error = "done", None
    except Exception as exc:  # noqa: BLE001 - recorded on the evaluator for the UI
        log.exception("backfill of evaluator %s failed", evaluator_id)
        status, error = "error", f"{type(exc).__name__}: {exc}"
    with write_transaction(services.sessions) as s:
        s.execute(update(Evaluator).where(Evaluator.id == evaluator_id).values(
            backfill_status=status, backfill_error=error, backfill_updated_at=utcnow()))


# ---- recovery ------------------------------------------------------------------------------------------
def sweep(services: Services, *, lease: float | None = None) -> int:
    """Re-enqueue executions whose job was lost: pending past their time, or running past the lease;
    and backfills that stopped. Returns how many jobs were enqueued."""
    lease = lease_seconds(services) if lease is None else lease
    now = utcnow()
    cutoff = now - timedelta(seconds=lease)
    with services.sessions() as s:
        stale = list(s.execute(select(JobExecution.id).join(Evaluator, Evaluator.id == JobExecution.evaluator_id).where(
            or_((JobExecution.status == "pending") & (JobExecution.scheduled_at < cutoff),
                (JobExecution.status == "running") & (JobExecution.started_at < cutoff)),
            Evaluator.enabled.is_(True), Evaluator.paused_reason.is_(None),
        ).order_by(JobExecution.scheduled_at).limit(SWEEP_LIMIT)).scalars())
        backfills = list(s.scalars(select(Evaluator.id).where(
            Evaluator.backfill_status.in_(("queued", "running")),
            Evaluator.backfill_updated_at < now - timedelta(seconds=5 * lease))))
    for eid in stale:
        enqueue_execution(services, eid)
    for evid in backfills:
        services.queue.enqueue(BACKFILL_TASK, evid, check_full=False)
    if stale or backfills:
        log.info("evaluation sweeper re-enqueued %d executions and %d backfills", len(stale), len(backfills))
    return len(stale) + len(backfills)


def _safe_sweep(services: Services) -> None:
    try:
        sweep(services)
    except Exception:  # noqa: BLE001 - the next run tries again
        log.exception("evaluation sweep failed")


def retry_failed(services: Services, project_id: str, evaluator_id: str) -> int:
    """Run an evaluator's failed executions again (e.g. after fixing its connection)."""
    now = utcnow()
    with write_transaction(services.sessions) as s:
        ids = list(s.scalars(select(JobExecution.id).where(
            JobExecution.project_id == project_id, JobExecution.evaluator_id == evaluator_id,
            JobExecution.status == "error")))
        if ids:
            s.execute(update(JobExecution).where(JobExecution.id.in_(ids)).values(
                status="pending", attempts=0, scheduled_at=now, finished_at=None, updated_at=now))
    for eid in ids:
        enqueue_execution(services, eid)
    return len(ids)


