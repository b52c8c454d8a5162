"""Typed serving errors, each knowing its HTTP status and OpenAI error envelope."""
from __future__ import annotations


class ServingError(Exception):
    """Base of serving-layer errors; `status` and `error_type` map it onto OpenAI's envelope."""

    status = 500
    error_type = "internal_error"
    code: str | None = None
    retry_after_s: int | None = None   # HTTP answers carry `Retry-After` when set (a passing unavailability)

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param

    def envelope(self) -> dict:
        """OpenAI's `{"error": {...}}` body for this error."""
        return {"error": {"message": self.message, "type": self.error_type,
                          "param": self.param, "code": self.code}}


class InvalidRequestError(ServingError):
    """The request is malformed; `param` names the offending field (HTTP 400)."""

    status = 400
    error_type = "invalid_request_error"


class EngineRequestError(InvalidRequestError, ValueError):
    """An engine refused a request's parameters (an unknown sampling field, a value out of range) (HTTP 400).

    A ValueError too, so callers of the engine that catch ValueError keep working."""


class AuthenticationError(ServingError):
    """Missing or wrong API key (HTTP 401)."""

    status = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class ModelNotFoundError(ServingError):
    """No served model or alias has this name (HTTP 404)."""

    status = 404
    error_type = "invalid_request_error"
    code = "model_not_found"

    def __init__(self, message: str, param: str | None = "model"):
        super().__init__(message, param)


class PayloadTooLargeError(ServingError):
    """The request body exceeds the frontend's limit (HTTP 413)."""

    status = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class NoWorkerError(ServingError):
    """The model is known but no worker is available to serve it (HTTP 503, `Retry-After`)."""

    status = 503
    error_type = "service_unavailable"
    code = "no_worker"
    retry_after_s = 1


class EngineError(ServingError):
    """The worker or engine failed while generating (HTTP 500)."""

    status = 500
    error_type = "internal_error"
