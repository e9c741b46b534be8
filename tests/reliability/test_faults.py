"""Faults of the stores around the worker: a blob store that refuses to move processed blobs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from owlscope.pipeline import blobs
from reliability.helpers import pending_keys, project_api


def test_a_failed_move_is_retried_and_the_after_flush_hooks_still_run(server, monkeypatch) -> None:
    import owlscope.pipeline.process as process

    monkeypatch.setattr(process, "MOVE_RETRY_SECONDS", 0.0)
    srv = server(run_worker=False)
    api = project_api(srv)
    services = srv.services
    seen: list[str] = []
    monkeypatch.setattr(services, "after_flush", [*services.after_flush,
                                                  lambda _s, rows: seen.extend(t.id for t in rows.traces)])
    read_only = {"on": True}
    rename = services.blobs.rename

    def refusing_rename(src: str, dst: str) -> None:
        if read_only["on"]:
            raise PermissionError("read-only file system")
        rename(src, dst)

    monkeypatch.setattr(services.blobs, "rename", refusing_rename)
    trace_id = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    api.ingest([{"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": now,
                 "body": {"id": trace_id, "name": "ro"}}])
    [key] = pending_keys(services, api.project_id)
    services.processor.process_key(key)
    services.processor.flush()  # rows in, move refused
    assert seen == [trace_id]  # the hooks ran once the rows were in
    assert api.trace(trace_id)["name"] == "ro"
    assert pending_keys(services, api.project_id) == [key]
    services.processor.process_key(key)  # a replay while the move is pending is skipped
    services.processor.flush()
    assert seen == [trace_id]
    read_only["on"] = False
    services.processor.flush()  # the move is retried
    assert pending_keys(services, api.project_id) == []
    assert services.blobs.exists(blobs.moved(key, blobs.PROCESSED))
