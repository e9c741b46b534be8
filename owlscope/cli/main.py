"""`owlscope` command line: serve, web, worker, migrate, doctor, init."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any

from owlscope import __version__
from owlscope.cli.common import settings_from_args as _settings
from owlscope.config import ConfigError, Settings, load_settings

log = logging.getLogger("owlscope")


def _logging(settings: Settings) -> None:
    from owlscope.ops.logs import configure_logging

    configure_logging(settings)


def _run_uvicorn(app: Any, settings: Settings, **kwargs: Any) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        # uvicorn re-raises SIGTERM after its graceful shutdown, so the process would end "killed by
        # signal". Ours has finished its work (jobs done, buffer flushed): exit 0 instead.
        def capture_signals(self):  # type: ignore[override]
            originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

    Server.capture_signals = contextmanager(Server.capture_signals)  # type: ignore[method-assign]
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=10,
        proxy_headers=True, log_config=None, **kwargs,
    )
    Server(config).run()


class _Missing:
    """An import finder that reports pandas and numpy missing (see `_leave_out_unused_libraries`)."""

    NAMES = ("pandas", "numpy")

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in self.NAMES:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


def _leave_out_unused_libraries(settings: Settings) -> None:
    """Keep libraries a server never calls out of its memory (bench/footprint.py). A module already
    imported is left as it is.

    - huey's storage module imports every queue client it supports that is installed (redis,
      psycopg) whichever storage is used: when the settings name neither Redis nor PostgreSQL they
      are marked absent before huey is first imported (about 20 MiB).
    - pyarrow imports numpy when it is imported, and looks for pandas on its first conversion of
      Python values and imports it, when they are installed (chDB requires both): 0.2 s on the first
      ingested request and ~40 MiB for pandas, ~14 MiB for numpy and its linear algebra library,
      for libraries nothing here uses. pyarrow is imported (unless it already was) and makes its
      first conversion here, with both reported missing; anything that imports them later still
      gets them (pyarrow itself then converts without them: the server never asks it for arrays of
      numpy or DataFrames)."""
    if not settings.redis_url:
        sys.modules.setdefault("redis", None)  # type: ignore[arg-type]
    if settings.is_embedded:
        sys.modules.setdefault("psycopg", None)  # type: ignore[arg-type]
    if "pandas" not in sys.modules:
        finder = _Missing()
        sys.meta_path.insert(0, finder)
        try:
            import pyarrow as pa

            pa.array([])
        finally:
            sys.meta_path.remove(finder)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _logging(settings)
    _leave_out_unused_libraries(settings)
    from owlscope.app import create_app

    services = _services(settings)
    what = "UI, API and worker in one process" if settings.run_worker else "UI and API; no worker (OWLSCOPE_RUN_WORKER=false)"
    log.info("listening on http://%s:%s (%s)", settings.host, settings.port, what, extra={"port": settings.port})
    if settings.otlp_grpc_port:
        log.info("OTLP gRPC on %s:%s", settings.host, settings.otlp_grpc_port)
    from owlscope.ops.runfile import recorded

    try:
        with recorded(settings):
            _run_uvicorn(create_app(settings, services=services, run_worker=settings.run_worker), settings)
    finally:
        services.close()
    return 0


def _services(settings: Settings) -> Any:
    """Connect and migrate before listening, so a bad setup is reported plainly, not as a
    failed ASGI startup."""
    from owlscope.ops.startup import build_and_report

    try:
        services = build_and_report(settings)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(1) from None
    _tune_gc()
    return services


def _tune_gc() -> None:
    """A long-running server: what startup built (modules, app, caches) lives as long as the
    process, so the cyclic collector stops scanning it (freeze), and it runs less often. Ingestion
    allocates many short-lived objects per span; with the default thresholds the full collections
    over the whole heap cost a good share of the mapping and Arrow-build time (see docs/performance.md)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def cmd_web(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _logging(settings)
    _leave_out_unused_libraries(settings)
    if settings.uses_chdb:
        print(
            "owlscope web runs without a worker and so needs a ClickHouse server (CLICKHOUSE_URL): embedded "
            "chDB allows only one process. Use `owlscope serve` for the single-process mode.",
            file=sys.stderr,
        )
        return 1
    from owlscope.app import create_app

    services = _services(settings)
    try:
        _run_uvicorn(create_app(settings, services=services, run_worker=False), settings)
    finally:
        services.close()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _logging(settings)
    _leave_out_unused_libraries(settings)
    if settings.uses_chdb:
        print("owlscope worker needs a ClickHouse server (CLICKHOUSE_URL); use `owlscope serve` for embedded mode.",
              file=sys.stderr)
        return 1
    from owlscope.data_retention import start_retention_loop
    from owlscope.worker.tasks import start_worker, stop_worker

    services = _services(settings)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    start_worker(services)
    retention = start_retention_loop(services)
    if settings.metrics_port:
        from owlscope.ops.metrics import serve_worker_metrics

        serve_worker_metrics(services, settings.metrics_port)
    log.info("worker: %d threads on the %s queue%s", settings.worker_threads, services.queue.backend,
             f", metrics on :{settings.metrics_port}/metrics" if settings.metrics_port else "")
    done.wait()
    retention.set()
    stop_worker(services)
    services.close()
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from owlscope.storage.olap.client import Olap
    from owlscope.storage.olap.migrate import migrate, pending
    from owlscope.storage.oltp.db import make_engine
    from owlscope.storage.oltp.migrate import current_revision, head_revision, upgrade

    engine = make_engine(settings.db_url)
    before = current_revision(engine)
    print(f"OLTP {settings.db_url.split('@')[-1]}: at {before or 'empty'}, head {head_revision()}")
    upgrade(engine)
    print(f"OLTP: now at {current_revision(engine)}")
    try:
        olap = Olap(settings)
        todo = pending(olap)
    except Exception as exc:  # noqa: BLE001 - reported plainly, not as a traceback
        engine.dispose()
        if settings.uses_chdb:
            print(f"OLAP: the embedded store {settings.olap_url.split('@')[-1]} is in use by a running server "
                  "(only one process may open it); `owlscope serve` applies pending migrations when it "
                  "starts", file=sys.stderr)
        else:
            print(f"OLAP: cannot connect: {exc}", file=sys.stderr)
        return 1
    print(f"OLAP {olap.url.split('@')[-1]} database {olap.database}: {len(todo)} migration(s) pending")

    def progress(m: Any, i: int, n: int) -> None:
        bar = "#" * int(20 * i / n)
        print(f"\r  {m.version:04d}_{m.name} [{bar:<20}] {i}/{n}", end="", flush=True)
        if i == n:
            print()

    migrate(olap, on_statement=progress)
    print("OLAP: up to date")
    olap.close()
    engine.dispose()
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from owlscope.doctor import run_doctor

    try:
        settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    except ConfigError as exc:
        print(str(exc))
        return 1
    return run_doctor(settings, server_url=args.url)


def cmd_init(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from owlscope.accounts.bootstrap import create_org_project_user
    from owlscope.errors import OwlscopeError
    from owlscope.storage.oltp.db import make_engine, make_session_factory
    from owlscope.storage.oltp.migrate import upgrade

    engine = make_engine(settings.db_url)
    upgrade(engine)
    try:
        result = create_org_project_user(
            make_session_factory(engine), settings, org_name=args.org_name, project_name=args.project_name,
            email=args.email, password=args.password, user_name=args.name,
        )
    except OwlscopeError as exc:  # the same refusal the sign-up form shows
        print(f"error: {exc.message}", file=sys.stderr)
        engine.dispose()
        return 1
    print(f"Organization: {result['org_id']}  ({args.org_name})")
    print(f"Project:      {result['project_id']}  ({args.project_name})")
    if args.email:
        print(f"User:         {args.email} (OWNER)")
    print("API keys (the secret key is shown only now):")
    print(f"  LANGFUSE_PUBLIC_KEY={result['public_key']}")
    print(f"  LANGFUSE_SECRET_KEY={result['secret_key']}")
    print(f"  LANGFUSE_HOST={settings.base_url}")
    engine.dispose()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="owlscope", description="Owlscope: LLM tracing, evaluation, prompts, datasets.")
    p.add_argument("--version", action="version", version=f"owlscope {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, server: bool = False) -> None:
        sp.add_argument("--data-dir", help="data directory (OWLSCOPE_DATA_DIR)")
        if server:
            sp.add_argument("--host", help="interface to listen on (HOST, default 127.0.0.1)")
            sp.add_argument("--port", type=int, help="port to listen on (PORT, default 3000)")
            sp.add_argument("--otlp-grpc-port", type=int,
                            help="also receive OTLP traces over gRPC on this port (OTLP_GRPC_PORT, e.g. 4317)")

    sp = sub.add_parser("serve", help="web UI, API and worker in one process on embedded storage")
    common(sp, server=True)
    sp.set_defaults(func=cmd_serve)
    sp = sub.add_parser("web", help="web UI and API only (scale-out; needs CLICKHOUSE_URL)")
    common(sp, server=True)
    sp.set_defaults(func=cmd_web)
    sp = sub.add_parser("worker", help="background worker only (scale-out; needs CLICKHOUSE_URL)")
    common(sp)
    sp.set_defaults(func=cmd_worker)
    sp = sub.add_parser("migrate", help="apply database migrations and exit")
    common(sp)
    sp.set_defaults(func=cmd_migrate)
    sp = sub.add_parser("doctor", help="check configuration, every storage seam and a running server")
    common(sp)
    sp.add_argument("--url", help="also check this running server's health and queue backlog "
                    "(found by itself for `serve` on the same data directory)")
    sp.set_defaults(func=cmd_doctor)
    sp = sub.add_parser("init", help="create an organization, project, user and API key pair")
    common(sp, server=True)  # --host/--port: the address printed as LANGFUSE_HOST
    sp.add_argument("--org-name", default="My Organization")
    sp.add_argument("--project-name", default="My Project")
    sp.add_argument("--email", help="create (or reuse) this user as the organization's OWNER")
    sp.add_argument("--password", help="password for a new user")
    sp.add_argument("--name", help="display name for a new user")
    sp.set_defaults(func=cmd_init)
    from owlscope.cli import backup, healthcheck, transfer

    for module in (healthcheck, backup, transfer):
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    code = args.func(args)
    if args.command in ("migrate", "init"):
        print(f"done in {time.monotonic() - started:.1f}s")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
