from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from owlscope import __version__
from owlscope.api.deps import ServicesDep
from owlscope.api.schemas import HealthResponse, typed

router = APIRouter()


@router.get("/api/public/health", **typed(HealthResponse))
def health(services: ServicesDep) -> JSONResponse:
    """Liveness plus a cheap check of the OLAP store (the one the read API needs)."""
    if not services.olap.ping():
        return JSONResponse({"status": "Database not available", "version": __version__}, status_code=503)
    return JSONResponse({"status": "OK", "version": __version__})


@router.get("/api/public/ready", **typed(HealthResponse))
def ready(services: ServicesDep) -> dict:
    return {"status": "OK", "version": __version__}
