"""Jobs, registered by name on the queue when services are built."""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING

from owlscope.pipeline import retention
from owlscope.pipeline.accept import INGEST_TASK

if TYPE_CHECKING:
    from owlscope.services import Services


def register_tasks(services: Services) -> None:
    def ingest_blob(key: str) -> None:
        assert services.processor is not None
        services.processor.process_key(key)

    services.queue.register(INGEST_TASK, ingest_blob)
    retention.register(services)
    for module in _DOMAIN_TASK_MODULES:
        if find_spec(module.rsplit(".", 1)[0]) is None or find_spec(module) is None:
            continue  # that domain is not part of this build
        import_module(module).register(services)


# Domain packages that register their own jobs and after-flush hooks: each has
# `register(services)`, which calls `services.queue.register(name, fn)` and/or appends to
# `services.after_flush`.
_DOMAIN_TASK_MODULES = ("owlscope.evals.jobs", "owlscope.datasets.jobs")


def start_worker(services: Services) -> None:
    """Consume jobs in this process: consumer threads plus the flush and sweeper loops."""
    assert services.processor is not None
    services.processor.start()
    services.queue.start_consumer(services.settings.worker_threads)


def stop_worker(services: Services) -> None:
    """Finish running jobs, then insert what they buffered: nothing accepted is lost."""
    services.queue.stop_consumer()
    if services.processor is not None:
        services.processor.stop()
