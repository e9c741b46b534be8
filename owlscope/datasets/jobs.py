"""Queue jobs of the datasets domain (`register` is called by owlscope.worker.tasks when services
are built; its after-flush hook, `recording.record_experiments`, is listed in owlscope.services)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from owlscope.datasets.prompt_experiment import PROMPT_EXPERIMENT_TASK, run_prompt_experiment_job

if TYPE_CHECKING:
    from owlscope.services import Services


def register(services: Services) -> None:
    def prompt_experiment(project_id: str, job_id: str, api_key: str | None = None) -> None:
        run_prompt_experiment_job(services, project_id, job_id, api_key)

    services.queue.register(PROMPT_EXPERIMENT_TASK, prompt_experiment)
