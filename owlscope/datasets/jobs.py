"""Queue jobs and after-flush hooks of the datasets domain (`register` is called by the worker
when services are built: see owlscope.worker.tasks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from owlscope.datasets.recording import record_experiments

if TYPE_CHECKING:
    from owlscope.services import Services

PROMPT_EXPERIMENT_TASK = "dataset_prompt_experiment"


def register(services: Services) -> None:
    hooks = services.extras.setdefault("after_flush_hooks", [])
    if record_experiments not in hooks:
        hooks.append(record_experiments)

    def prompt_experiment(project_id: str, job_id: str, api_key: str | None = None) -> None:
        from owlscope.datasets.prompt_experiment import run_prompt_experiment_job

        run_prompt_experiment_job(services, project_id, job_id, api_key)

    services.queue.register(PROMPT_EXPERIMENT_TASK, prompt_experiment)
