"""The evaluation jobs' names on the queue, how executions are enqueued, and the judge pool.

Kept apart from `jobs` (which runs them) so that `evaluators` and `runner` can enqueue work
without importing the module that imports them.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sqlalchemy import select

from owlscope.storage.oltp.base import utcnow
from owlscope.storage.oltp.eval_models import JobExecution

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.evals")
EXECUTE_TASK = "eval_execute"
BACKFILL_TASK = "eval_backfill"
SWEEP_TASK = "eval_sweep"
JUDGE_THREADS = 4  # concurrent judge calls per worker process


class JudgePool:
    """The threads that make judge calls, so slow LLM calls never hold the queue's consumer threads;
    `inflight` holds the executions handed over and not finished."""

    def __init__(self, threads: int = JUDGE_THREADS) -> None:
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="owlscope-judge")
        self.lock = threading.Lock()
        self.inflight: set[str] = set()

    def shutdown(self) -> None:
        """Drop what has not started (the records stay pending: the sweeper runs them again) and
        wait for the calls under way."""
        self.executor.shutdown(wait=True, cancel_futures=True)


def enqueue_execution(services: Services, execution_id: str, *, delay: float = 0.0) -> None:
    try:
        services.queue.enqueue(EXECUTE_TASK, execution_id, delay=delay if delay > 0 else None, check_full=False)
    except Exception:  # noqa: BLE001 - the record is durable; the sweeper enqueues it later
        log.warning("could not enqueue evaluation %s; the sweeper will", execution_id, exc_info=True)


def requeue_pending(services: Services, project_id: str, evaluator_id: str) -> int:
    """Enqueue an evaluator's pending executions (after a resume or re-enable)."""
    now = utcnow()
    with services.sessions() as s:
        rows = list(s.execute(select(JobExecution.id, JobExecution.scheduled_at).where(
            JobExecution.project_id == project_id, JobExecution.evaluator_id == evaluator_id,
            JobExecution.status == "pending")))
    for eid, at in rows:
        enqueue_execution(services, eid, delay=max(0.0, (at - now).total_seconds()))
    return len(rows)
