"""Domain errors of the evaluation package. They are the app's errors (so every edge maps them as
usual) plus a machine-readable `code` and `details`, which the unstable evaluation API returns in its
error envelope (`unstablePublicApiError`)."""

from __future__ import annotations

from typing import Any

from owlscope.errors import Conflict, InvalidRequest, NotFound, OwlscopeError


class EvalInvalid(InvalidRequest):
    def __init__(self, message: str, *, code: str = "invalid_body", details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.details = details


class EvalConflict(Conflict):
    def __init__(self, message: str, *, code: str = "name_conflict", details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.details = details


class EvalNotFound(NotFound):
    code = "resource_not_found"
    details = None


class PreflightFailed(OwlscopeError):
    """The evaluator cannot run with the model it resolves to (no connection, no default model)."""

    status = 422
    error = "UnprocessableEntityError"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = "evaluator_preflight_failed"
        self.details = details


class Unsupported(OwlscopeError):
    status = 422
    error = "UnprocessableEntityError"

    def __init__(self, message: str):
        super().__init__(message)
        self.code = "unprocessable_content"
        self.details = None
