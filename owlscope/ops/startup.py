"""What a starting process says: version, mode, each store (credentials hidden) and what
migrations did. One line each, instead of the libraries' own narration."""

from __future__ import annotations

import logging
import time

from owlscope import __version__
from owlscope.config import Settings, redact_url
from owlscope.services import Services, build_services

log = logging.getLogger("owlscope")


def build_and_report(settings: Settings) -> Services:
    from owlscope.storage.oltp.db import make_engine
    from owlscope.storage.oltp.migrate import current_revision

    started = time.monotonic()
    engine = make_engine(settings.db_url)
    try:
        before = current_revision(engine)
    finally:
        engine.dispose()
    services = build_services(settings)
    after = current_revision(services.db)
    mode = "embedded" if settings.is_embedded else "scale-out"
    log.info("owlscope %s (%s mode), data directory %s", __version__, mode, settings.data_dir,
             extra={"version": __version__, "mode": mode})
    oltp = f"migrated {before or 'empty'} -> {after}" if before != after else f"at {after}"
    log.info("oltp: %s %s", redact_url(settings.db_url), oltp)
    log.info("olap: %s database %s", redact_url(services.olap.url), services.olap.database)
    log.info("queue: %s, blobs: %s", services.queue.backend, redact_url(services.blobs.location))
    log.info("ready in %.1fs", time.monotonic() - started)
    return services
