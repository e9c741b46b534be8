"""The domain's errors, mapped to HTTP once at the edge (JSON for the API, a page for the UI)."""

from __future__ import annotations


class OwlscopeError(Exception):
    status = 500
    error = "InternalServerError"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidRequest(OwlscopeError):
    status = 400
    error = "InvalidRequestError"


class Unauthorized(OwlscopeError):
    status = 401
    error = "UnauthorizedError"


class Forbidden(OwlscopeError):
    status = 403
    error = "AccessDeniedError"


class NotFound(OwlscopeError):
    status = 404
    error = "LangfuseNotFoundError"


class Conflict(OwlscopeError):
    status = 409
    error = "ConflictError"


class PayloadTooLarge(OwlscopeError):
    status = 413
    error = "PayloadTooLargeError"


class TooManyRequests(OwlscopeError):
    status = 429
    error = "TooManyRequestsError"

    def __init__(self, message: str, *, retry_after: int = 1):
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(OwlscopeError):
    status = 503
    error = "ServiceUnavailableError"

    def __init__(self, message: str, *, retry_after: int = 5):
        super().__init__(message, headers={"Retry-After": str(retry_after)})
