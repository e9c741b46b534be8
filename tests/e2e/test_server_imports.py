"""What a server process loads: the clients of stores its settings do not name, and the libraries of
features not yet used, stay out of its memory (idle footprint, bench/footprint.py), and come in when
they are needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Builds the server as `owlscope serve` does (settings, the clients left out, services, app), queues
# one job through huey, then renders markdown and checks a JSON Schema: prints which of the
# watched modules were loaded before and after those two features were used; then builds and
# inserts rows as ingestion does, and prints whether pandas or numpy was loaded by then.
_PROBE = """
import json, sys
from owlscope.cli.main import _leave_out_unused_libraries
from owlscope.config import load_settings

settings = load_settings()
_leave_out_unused_libraries(settings)
from owlscope.app import create_app
from owlscope.services import build_services

services = build_services(settings)
create_app(settings, services=services, run_worker=False)
services.queue.register("probe", lambda n: None)
services.queue.enqueue("probe", 1)
pending = services.queue.huey.pending_count()
watched = ("redis", "psycopg", "jsonschema", "nh3", "markdown_it")
before = sorted(m for m in watched if sys.modules.get(m) is not None)
from owlscope.datasets.common import check_schema, schema_errors
from owlscope.web.markdown import render_markdown

html = str(render_markdown("**bold** <script>x</script>"))
problems = schema_errors(check_schema({"type": "object", "required": ["q"]}, "inputSchema"), {}, "input")
after = sorted(m for m in watched if sys.modules.get(m) is not None)
from datetime import UTC, datetime

from owlscope.ingestion.rows import ObservationEvent, observations_table

now = datetime.now(UTC)
services.olap.insert_arrow("observation_events", observations_table([ObservationEvent(
    project_id="probe", id="o1", trace_id="t1", event_ts=now, start_time=now, input='"q"')]))
inserted = services.olap.query("SELECT count() FROM {db}.observations WHERE project_id = 'probe'")[0][0]
pandas = "pandas" in sys.modules and sys.modules["pandas"] is not None
numpy = "numpy" in sys.modules and sys.modules["numpy"] is not None
services.close()
import numpy as np  # still there for whoever asks

print(json.dumps({"before": before, "after": after, "html": html, "problems": problems, "pending": pending,
                  "inserted": inserted, "pandas": pandas, "numpy": numpy, "numpy_later": np.__name__}))
"""


def _probe(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE], env={**os.environ, **env}, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_embedded_server_leaves_out_unused_clients_and_loads_features_when_used(tmp_path: Path) -> None:
    env = {k: "" for k in ("DATABASE_URL", "CLICKHOUSE_URL", "REDIS_URL", "S3_BUCKET", "BLOB_URL")}
    got = _probe({**env, "OWLSCOPE_DATA_DIR": str(tmp_path / "data")})
    assert got["pending"] == 1  # huey's queue works without the clients it could not import
    assert got["before"] == []  # no Redis or PostgreSQL client, no schema checker or markdown renderer
    assert set(got["after"]) == {"jsonschema", "nh3", "markdown_it"}  # loaded on first use, and working:
    assert "<strong>bold</strong>" in got["html"] and "<script>" not in got["html"]
    assert got["problems"] == ["input: 'q' is a required property"]
    assert got["inserted"] == 1 and got["pandas"] is False  # rows built and inserted without pandas
    assert got["numpy"] is False and got["numpy_later"] == "numpy"  # nor numpy, which a later import gets


def test_a_server_on_redis_and_postgresql_keeps_their_clients(tmp_path: Path, pg_url: str, redis_url: str) -> None:
    got = _probe({"OWLSCOPE_DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": pg_url, "REDIS_URL": redis_url,
                  "SALT": "s", "SESSION_SECRET": "t"})
    assert got["pending"] >= 1
    assert {"redis", "psycopg"} <= set(got["before"])
