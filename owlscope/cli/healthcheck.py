"""`owlscope healthcheck`: the container health check. Asks the local process over loopback and
exits 0 when it answers: the web API's readiness on PORT, or, for a worker (no web server), its
metrics on METRICS_PORT. Reads only the environment, so it costs no settings, files or stores."""

from __future__ import annotations

import argparse
import os
import urllib.error
import urllib.request


def _ok(url: str, timeout: float) -> bool | None:
    """True when it answers 200, False on another answer, None when nothing listens."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except urllib.error.HTTPError:
        return False
    except (urllib.error.URLError, OSError):
        return None


def cmd_healthcheck(args: argparse.Namespace) -> int:
    port = args.port or int(os.environ.get("PORT", "3000"))
    web = _ok(f"http://127.0.0.1:{port}/api/public/health", args.timeout)
    if web is None and os.environ.get("METRICS_PORT"):
        web = _ok(f"http://127.0.0.1:{os.environ['METRICS_PORT']}/metrics", args.timeout)
    if not web:
        print("unhealthy: " + ("nothing listening" if web is None else "health check failed"))
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("healthcheck", help="exit 0 if the process on this machine answers (container health check)")
    sp.add_argument("--port", type=int, help="web port (default: PORT or 3000)")
    sp.add_argument("--timeout", type=float, default=4.0)
    sp.set_defaults(func=cmd_healthcheck)
