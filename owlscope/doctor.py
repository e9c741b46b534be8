"""`owlscope doctor`: the configuration and every storage seam, checked without starting."""

from __future__ import annotations

from collections.abc import Callable

from owlscope.config import Settings, redact_url


def _line(ok: bool, name: str, detail: str) -> str:
    return f"  [{'ok' if ok else 'FAIL'}] {name:<6} {detail}"


def check_oltp(settings: Settings) -> tuple[bool, str]:
    from sqlalchemy import text

    from owlscope.storage.oltp.db import make_engine
    from owlscope.storage.oltp.migrate import current_revision, head_revision

    engine = make_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                version = "SQLite " + conn.execute(text("select sqlite_version()")).scalar_one()
            else:
                version = str(conn.execute(text("show server_version")).scalar_one())
                version = f"PostgreSQL {version}"
        cur, head = current_revision(engine), head_revision()
        state = "migrated" if cur == head else f"at {cur or 'empty'}, head is {head}: run `owlscope migrate`"
        return cur == head, f"{engine.dialect.name} {redact_url(settings.db_url)} reachable, {version}, {state}"
    finally:
        engine.dispose()


def check_olap(settings: Settings) -> tuple[bool, str]:
    from owlscope.storage.olap.client import Olap
    from owlscope.storage.olap.migrate import head_version, pending

    olap = Olap(settings)
    try:
        version = olap.version()
        todo = pending(olap)
        state = "migrated" if not todo else f"{len(todo)} migration(s) pending (head {head_version()}): run `owlscope migrate`"
        kind = "chDB (embedded)" if olap.embedded else "ClickHouse"
        return not todo, f"{kind} {redact_url(olap.url)} reachable, version {version}, {state}"
    finally:
        olap.close()


def check_queue(settings: Settings) -> tuple[bool, str]:
    from owlscope.storage.queue import JobQueue

    q = JobQueue(settings)
    ok = q.ping()
    where = redact_url(settings.redis_url) if settings.redis_url else str(settings.data_dir / "queue.db")
    if not ok:
        return False, f"{q.backend} {where} unreachable"
    version = ""
    if settings.redis_url:
        info = q.huey.storage.conn.info("server")
        version = f", Redis {info.get('redis_version')}"
    return True, f"{q.backend} {where} reachable{version}, {q.pending()} job(s) pending"


def check_blob(settings: Settings) -> tuple[bool, str]:
    from owlscope.storage.blob import BlobStore

    store = BlobStore(settings)
    ok = store.ping()
    return ok, f"{store.location} {'reachable (write/read ok)' if ok else 'unreachable or not writable'}"


def check_secrets(settings: Settings) -> tuple[bool, str]:
    from owlscope.evals.crypto import check_encryption
    from owlscope.storage.oltp.db import make_engine, make_session_factory

    engine = make_engine(settings.db_url)
    try:
        problems = check_encryption(settings, make_session_factory(engine))
    finally:
        engine.dispose()
    if problems:
        return False, "; ".join(f"{name} {problem} (fix: {fix})" for name, problem, fix in problems)
    return True, "ENCRYPTION_KEY " + ("set" if settings.encryption_key else "not set (no LLM connections stored)")


# A backlog older than this means nothing is working it off (no worker, or workers stuck).
STALE_BACKLOG_SECONDS = 300


def _server_metrics(url: str) -> dict[str, float]:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(f"{url}/metrics", timeout=10)
    r.raise_for_status()
    return {s.name: s.value for fam in text_string_to_metric_families(r.text) for s in fam.samples
            if s.name.startswith(("owlscope_queue", "owlscope_ingest_pending"))}


def check_server(url: str, *, pid: int | None = None) -> tuple[bool, str]:
    """A running server's health, and the backlog it reports (jobs queued, oldest unprocessed batch)."""
    import httpx

    try:
        health = httpx.get(f"{url}/api/public/health", timeout=10)
    except httpx.HTTPError as exc:
        return False, f"{url} not answering ({type(exc).__name__})"
    who = f"{url}" + (f" (owlscope serve, pid {pid})" if pid else "")
    if health.status_code != 200:
        return False, f"{who} unhealthy: {health.status_code} {health.text[:200]}"
    version = health.json().get("version")
    m = _server_metrics(url)
    depth, age = int(m.get("owlscope_queue_depth", 0)), m.get("owlscope_queue_oldest_job_age_seconds", 0.0)
    backlog = f"{depth} job(s) queued, {int(m.get('owlscope_ingest_pending_blobs', 0))} batch(es) pending"
    backlog += f", oldest {age:.0f}s" if age else ""
    if age > STALE_BACKLOG_SECONDS:
        return False, f"{who} healthy, version {version}, but the backlog is stale: {backlog}: are workers running?"
    return True, f"{who} healthy, version {version}, {backlog}"


def check_olap_via_server(url: str, pid: int) -> tuple[bool, str]:
    """chDB allows one process per directory: while `serve` holds it, ask the server instead."""
    import httpx

    r = httpx.get(f"{url}/api/public/health", timeout=10)
    ok = r.status_code == 200
    state = "reachable through it" if ok else f"not available ({r.json().get('status')})"
    return ok, f"chDB (embedded) held by owlscope serve (pid {pid}) at {url}: {state}, migrated at its start"


def run_doctor(settings: Settings, *, server_url: str | None = None) -> int:
    from owlscope.ops.runfile import running_server

    print("Configuration: ok" + (" (embedded mode)" if settings.is_embedded else " (scale-out mode)"))
    running = running_server(settings) if settings.uses_chdb else None
    olap_check: Callable[[Settings], tuple[bool, str]] = check_olap
    if running is not None:
        olap_check = lambda _s: check_olap_via_server(running.url, running.pid)  # noqa: E731
    checks: list[tuple[str, Callable[[Settings], tuple[bool, str]]]] = [
        ("oltp", check_oltp), ("olap", olap_check), ("queue", check_queue), ("blob", check_blob),
        ("keys", check_secrets),
    ]
    url = server_url or (running.url if running else None)
    if url:
        checks.append(("server", lambda _s: check_server(url, pid=running.pid if running and not server_url else None)))
    failed = 0
    for name, fn in checks:
        try:
            ok, detail = fn(settings)
        except Exception as exc:  # noqa: BLE001 - every failure is a finding, not a crash
            ok, detail = False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if "Cannot lock file" in detail or "already initialized" in detail:
                detail += " (a running `owlscope serve` holds the embedded store)"
        failed += not ok
        print(_line(ok, name, detail))
    return 1 if failed else 0
