"""Feedback: POST /api/public/feedback stores what a user approved to send about the API, the
docs or a tool (the project key's project; kept in the `feedback` table)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator

from owlscope.api.deps import AuthDep, ServicesDep
from owlscope.api.schemas import SubmitFeedbackResponse, typed
from owlscope.storage.oltp.admin_models import Feedback
from owlscope.storage.oltp.db import write_transaction

router = APIRouter(tags=["Feedback"])


def _text(limit: int) -> Any:
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=limit)]


class SubmitFeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    targetType: Literal["skill", "mcp-tool", "cli", "docs", "public-api", "other"]
    target: _text(200)  # type: ignore[valid-type]
    feedback: _text(3000)  # type: ignore[valid-type]
    goal: _text(1500) | None = None  # type: ignore[valid-type]
    referenceUrl: Annotated[str, StringConstraints(max_length=2048)] | None = None

    @field_validator("referenceUrl")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            u = urlparse(value)
            if u.scheme not in ("http", "https") or not u.netloc:
                raise ValueError("referenceUrl must be an http or https URL")
        return value


@router.post("/api/public/feedback", status_code=201, **typed(SubmitFeedbackResponse))
def feedback_submit(body: SubmitFeedbackRequest, auth: AuthDep, services: ServicesDep) -> dict[str, Any]:
    row = Feedback(id=str(uuid.uuid4()), project_id=auth.project_id, target_type=body.targetType, target=body.target,
                   feedback=body.feedback, goal=body.goal, reference_url=body.referenceUrl)
    with write_transaction(services.sessions) as session:
        session.add(row)
    return {"id": row.id}
