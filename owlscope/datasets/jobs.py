"""Queue jobs and after-flush hooks of the datasets domain (`register` is called by the worker
when services are built: see owlscope.worker.tasks)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from owlscope.datasets.recording import record_experiments

if TYPE_CHECKING:
    from owlscope.services import Services

log = logging.getLogger("owlscope.datasets")
PROMPT_EXPERIMENT_TASK = "dataset_prompt_experiment"


def evaluate_run_item(
    services: Services, *, project_id: str, run_id: str, dataset_item_id: str, trace_id: str,
    observation_id: str | None, evaluator_ids: Sequence[str],
) -> None:
    """Prompt-experiment hook: the evaluators chosen for the experiment judge the item's output
    (the trace, or the generation for observation evaluators), after their usual delay."""
    if not evaluator_ids:
        return
    from sqlalchemy import select

    from owlscope.evals.jobs import schedule
    from owlscope.storage.oltp.eval_models import Evaluator

    with services.sessions() as session:
        evaluators = list(session.scalars(select(Evaluator).where(
            Evaluator.project_id == project_id, Evaluator.id.in_(list(evaluator_ids)))))
    for ev in evaluators:
        target = (trace_id, observation_id or "") if ev.target == "observation" else (trace_id, "")
        schedule(services, ev, [target], origin="experiment")


def register(services: Services) -> None:
    hooks = services.after_flush
    if record_experiments not in hooks:
        hooks.append(record_experiments)
    item_hooks = services.extras.setdefault("dataset_run_item_hooks", [])
    if evaluate_run_item not in item_hooks:
        item_hooks.append(evaluate_run_item)

    def prompt_experiment(project_id: str, job_id: str, api_key: str | None = None) -> None:
        from owlscope.datasets.prompt_experiment import run_prompt_experiment_job

        run_prompt_experiment_job(services, project_id, job_id, api_key)

    services.queue.register(PROMPT_EXPERIMENT_TASK, prompt_experiment)
