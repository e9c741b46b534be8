"""What every command shares: settings from the command line and the environment."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from owlscope.config import ConfigError, Settings, load_settings


def settings_from_args(args: argparse.Namespace, **extra: Any) -> Settings:
    """Settings with the command's --host/--port/--data-dir/--otlp-grpc-port applied; exits 1 with every
    problem at once when they are invalid."""
    os.umask(0o077)  # files this process creates (databases, raw event blobs) are private
    overrides: dict[str, Any] = dict(extra)
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "otlp_grpc_port", None):
        overrides["otlp_grpc_port"] = args.otlp_grpc_port
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(1) from None
