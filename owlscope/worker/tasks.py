"""Jobs, registered by name on the queue when services are built."""

from __future__ import annotations

from typing import TYPE_CHECKING

from owlscope import project_deletion
from owlscope.datasets import jobs as dataset_jobs
from owlscope.evals import jobs as eval_jobs
from owlscope.integrations import exports, webhooks
from owlscope.pipeline import retention
from owlscope.pipeline.accept import INGEST_TASK
from owlscope.tracing import rollups

if TYPE_CHECKING:
    from owlscope.services import Services


def register_tasks(services: Services) -> None:
    """The ingest job, then each domain's own jobs (`register(services)` calls
    `services.queue.register(name, fn)`); their after-flush hooks are listed in owlscope.services."""
    services.queue.register(INGEST_TASK, services.processor.process_key)
    eval_jobs.register(services)
    dataset_jobs.register(services)
    retention.register(services)
    webhooks.register(services)
    exports.register(services)
    project_deletion.register(services)
    rollups.register(services)


def start_worker(services: Services) -> None:
    """Consume jobs in this process: consumer threads plus the flush and sweeper loops."""
    services.processor.start()
    services.queue.start_consumer(services.settings.worker_threads)
    project_deletion.resume_project_deletions(services)


def stop_worker(services: Services) -> None:
    """Finish running jobs, then insert what they buffered: nothing accepted is lost."""
    services.queue.stop_consumer()
    services.processor.stop()
