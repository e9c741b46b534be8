"""GET /metrics: Prometheus text format (unauthenticated, like every scrape target; keep it off
the public ingress, see docs/deploy.md)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from owlscope.api.deps import ServicesDep
from owlscope.ops.metrics import render
from owlscope.telemetry import CONTENT_TYPE

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics(services: ServicesDep) -> Response:
    return Response(render(services), media_type=CONTENT_TYPE)
