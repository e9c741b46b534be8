"""Reading back what an SDK sent, through the public API (shared by the v4 and v5 SDK tests)."""

from __future__ import annotations

import json

OBS_FIELDS = "core,basic,time,io,metadata,model,usage,prompt,metrics,trace_context"


def read_trace(sdk, trace_id: str, n_obs: int | None = None) -> dict:
    """GET /traces/{id}, waiting until it exists with at least `n_obs` observations."""

    def ready(r) -> bool:
        return r.status_code == 200 and (n_obs is None or len(r.json()["observations"]) >= n_obs)

    return sdk.wait_for(f"/api/public/traces/{trace_id}", ready).json()


def read_observations(sdk, trace_id: str) -> dict[str, dict]:
    """The trace's observations from /v2/observations with every field group, by name; input and
    output (the raw text the client sent, in v2) parsed when they are JSON."""
    r = sdk.get("/api/public/v2/observations", traceId=trace_id, fields=OBS_FIELDS, limit=100)
    assert r.status_code == 200, r.text
    out = {}
    for o in r.json()["data"]:
        for key in ("input", "output"):
            if isinstance(o.get(key), str):
                try:
                    o[key] = json.loads(o[key])
                except json.JSONDecodeError:
                    pass  # a plain string, returned as sent
        out[o["name"]] = o
    return out
