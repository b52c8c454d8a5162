"""dynamo_status_t values (include/dynamo_llm.h) and the mapping from Python exceptions onto them."""
from __future__ import annotations

import asyncio

OK, TIMEOUT, END = 0, 1, 2
ERR_INVALID_ARGUMENT = -1
ERR_INVALID_HANDLE = -2
ERR_NOT_FOUND = -3
ERR_UNAVAILABLE = -4
ERR_CANCELLED = -5
ERR_ENGINE = -6
ERR_SHUTDOWN = -7
ERR_FORKED = -8
ERR_INTERNAL = -9
ERR_PYTHON_INIT = -10

FINISH_NONE, FINISH_STOP, FINISH_LENGTH, FINISH_TOOL_CALLS, FINISH_CANCELLED, FINISH_ERROR = range(6)

FINISH_REASONS = {None: FINISH_NONE, "stop": FINISH_STOP, "eos": FINISH_STOP, "length": FINISH_LENGTH,
                  "tool_calls": FINISH_TOOL_CALLS, "abort": FINISH_CANCELLED, "cancelled": FINISH_CANCELLED,
                  "error": FINISH_ERROR}


class CapiError(Exception):
    """An error that already knows its status code."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def finish_code(reason: object) -> int:
    """DYNAMO_FINISH_* for an OpenAI/wire finish_reason string."""
    return FINISH_REASONS.get(reason, FINISH_ERROR if reason else FINISH_NONE)  # type: ignore[arg-type]


def status_of(exc: BaseException) -> int:
    """The dynamo_status_t that reports exc to a C host."""
    if isinstance(exc, CapiError):
        return exc.status
    if isinstance(exc, asyncio.CancelledError):
        return ERR_CANCELLED
    from pyimpl.runtime import errors as rt
    if isinstance(exc, rt.EndpointNotFoundError):
        return ERR_NOT_FOUND
    if isinstance(exc, (rt.NoInstancesError, rt.DisconnectedError)):
        return ERR_UNAVAILABLE
    if isinstance(exc, rt.CancelledError):
        return ERR_CANCELLED
    if isinstance(exc, (rt.ConfigurationError, rt.PayloadTooLargeError)):
        return ERR_INVALID_ARGUMENT
    if isinstance(exc, rt.RemoteHandlerError):
        return ERR_ENGINE
    try:
        from pyimpl.llm import errors as llm
    except ImportError:
        return ERR_INTERNAL
    if isinstance(exc, llm.ModelNotFoundError):
        return ERR_NOT_FOUND
    if isinstance(exc, (llm.InvalidRequestError, llm.PayloadTooLargeError)):
        return ERR_INVALID_ARGUMENT
    if isinstance(exc, llm.NoWorkerError):
        return ERR_UNAVAILABLE
    if isinstance(exc, llm.ServingError):
        return ERR_ENGINE
    if isinstance(exc, FileNotFoundError):
        return ERR_NOT_FOUND
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return ERR_INVALID_ARGUMENT
    return ERR_INTERNAL
