"""Endpoints for commands on the same machine as a running `owlscope serve` (backup), which may
not open its chDB directory themselves. They need the control token from `<data dir>/serve.json`
(readable only by the data directory's owner); without one, or in any other process, they do not
exist (404)."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import BaseModel

from owlscope.api.deps import ServicesDep
from owlscope.errors import NotFound, Unauthorized
from owlscope.ops.backup import export_olap
from owlscope.ops.runfile import own_token

router = APIRouter(include_in_schema=False)


class ExportRequest(BaseModel):
    dest: str


@router.post("/api/local/olap-export")
def olap_export(body: ExportRequest, services: ServicesDep,
                authorization: Annotated[str | None, Header()] = None) -> dict:
    token = own_token(services.settings)
    if token is None:
        raise NotFound("not found")
    if not authorization or not hmac.compare_digest(authorization, f"Bearer {token}"):
        raise Unauthorized("this endpoint needs the control token of the running server")
    dest = Path(body.dest)
    if services.processor is None:
        return {"tables": export_olap(services.olap, dest)}
    with services.processor.paused():
        return {"tables": export_olap(services.olap, dest)}
