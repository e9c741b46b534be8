"""Queue and blob seams on both backends (SQLite queue / Redis; local files / S3)."""

from __future__ import annotations

import threading
import time

import pytest

from owlscope.storage.blob import BlobStore, BlobUnavailable
from owlscope.storage.queue import JobQueue, QueueFull


def test_blob_store_put_get_list_rename_delete(make_settings, stack) -> None:
    store = BlobStore(make_settings(stack))
    assert store.location.startswith("s3://" if stack == "scaleout" else "file://")
    store.put("events/pending/p/1.batch", b"one")
    store.put("events/pending/p/2.batch", b"two")
    assert store.get("events/pending/p/1.batch") == b"one"
    assert sorted(b.key for b in store.list("events/pending/")) == [
        "events/pending/p/1.batch", "events/pending/p/2.batch"]
    store.rename("events/pending/p/1.batch", "events/processed/p/1.batch")
    assert not store.exists("events/pending/p/1.batch")
    assert store.get("events/processed/p/1.batch") == b"one"
    store.delete("events/pending/p/2.batch")
    assert list(store.list("events/pending/")) == []
    with pytest.raises(FileNotFoundError):
        store.get("events/pending/p/2.batch")
    assert store.ping()


def test_unreachable_s3_is_reported_as_unavailable(make_settings) -> None:
    settings = make_settings("embedded", s3_bucket="nope", s3_endpoint="http://127.0.0.1:9",
                             s3_access_key_id="x", s3_secret_access_key="y", s3_force_path_style=True)
    store = BlobStore(settings)
    with pytest.raises(BlobUnavailable):
        store.put("k", b"v")
    assert store.ping() is False


def test_queue_runs_registered_jobs_in_consumer_threads(make_settings, stack) -> None:
    q = JobQueue(make_settings(stack), name=f"test-{time.time_ns()}")
    q.flush()
    seen: list[int] = []
    lock = threading.Lock()

    def job(n: int) -> None:
        with lock:
            seen.append(n)

    q.register("job", job)
    for i in range(50):
        q.enqueue("job", i)
    q.start_consumer(2)
    try:
        deadline = time.monotonic() + 20
        while len(seen) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        q.stop_consumer()
    assert sorted(seen) == list(range(50))
    assert q.backend == ("redis" if stack == "scaleout" else "sqlite")


def test_a_periodic_task_still_running_is_skipped_not_run_again_beside_it(make_settings, stack) -> None:
    """A minute's run that finds the previous one still going (a rollup refresh longer than a
    minute; on Redis also another worker process's run of the same minute, as every consumer
    schedules the task) returns at once; once it is over, the next run runs."""
    settings = make_settings(stack)
    name = f"periodic-{time.time_ns()}"
    q, other = JobQueue(settings, name=name), JobQueue(settings, name=name)
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def slow() -> None:
        runs.append("slow")
        started.set()
        release.wait(20)

    q.every_minute("tick", slow, what="tick")
    other.every_minute("tick", lambda: runs.append("other"), what="tick")
    first = threading.Thread(target=q._tasks["tick"].call_local)
    first.start()
    try:
        assert started.wait(10)
        q._tasks["tick"].call_local()  # the same process's next minute: skipped
        if stack == "scaleout":
            other._tasks["tick"].call_local()  # another process's run of the same minute: skipped
        assert runs == ["slow"]
    finally:
        release.set()
        first.join(20)
    q._tasks["tick"].call_local()
    other._tasks["tick"].call_local()
    assert runs == ["slow", "slow", "other"]


def test_queue_refuses_work_past_its_bound(make_settings, stack) -> None:
    q = JobQueue(make_settings(stack, queue_max_pending=3), name=f"bound-{time.time_ns()}")
    q.flush()
    q.register("noop", lambda: None)
    for _ in range(3):
        q.enqueue("noop")
    q._size_cache = (0.0, 0)  # read the real size now
    with pytest.raises(QueueFull):
        q.enqueue("noop")
    q.flush()
