"""dynamo_status_t values (include/dynamo_llm.h) and the mapping from Python exceptions onto them."""
from __future__ import annotations

import asyncio
import re

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


def verify_codes(lib: object) -> None:
    """Fail at library start if these values drifted from include/dynamo_llm.h (cffi reads them from it)."""
    names = {name: value for name, value in globals().items() if name.isupper() and isinstance(value, int)}
    drift = [n for n, v in names.items() if getattr(lib, f"DYNAMO_{n}") != v]
    if drift:
        raise RuntimeError(f"pyimpl.capi.status disagrees with dynamo_llm.h on {drift}")


def finish_code(reason: object) -> int:
    """DYNAMO_FINISH_* for an OpenAI/wire finish_reason string."""
    return FINISH_REASONS.get(reason, FINISH_ERROR if reason else FINISH_NONE)  # type: ignore[arg-type]


def _status_table() -> list[tuple[tuple[type, ...], int]]:
    """(exception types, status) pairs, first match wins; built on first use (the layers above load lazily)."""
    from pyimpl.llm import errors as llm
    from pyimpl.llm.responses.store import ResponseNotFoundError
    from pyimpl.runtime import errors as rt
    return [
        ((asyncio.CancelledError, rt.CancelledError), ERR_CANCELLED),
        ((rt.EndpointNotFoundError, llm.ModelNotFoundError, ResponseNotFoundError), ERR_NOT_FOUND),
        ((rt.NoInstancesError, rt.DisconnectedError, llm.NoWorkerError), ERR_UNAVAILABLE),
        ((rt.ConfigurationError, rt.PayloadTooLargeError, llm.InvalidRequestError, llm.PayloadTooLargeError),
         ERR_INVALID_ARGUMENT),
        ((rt.RemoteHandlerError, llm.ServingError), ERR_ENGINE),
        ((FileNotFoundError,), ERR_NOT_FOUND),
        ((ValueError, TypeError, KeyError), ERR_INVALID_ARGUMENT),
    ]


_TABLE: list[tuple[tuple[type, ...], int]] = []


def status_of(exc: BaseException) -> int:
    """The dynamo_status_t that reports exc to a C host. A serving error raised because the worker's instance
    was lost (the frontend wraps the runtime's DisconnectedError) is DYNAMO_ERR_UNAVAILABLE, as the header says
    of a stream whose worker goes away, not an engine failure."""
    if isinstance(exc, CapiError):
        return exc.status
    if not _TABLE:
        _TABLE.extend(_status_table())
    for types, status in _TABLE:
        if isinstance(exc, types):
            if status == ERR_ENGINE:
                from pyimpl.llm.frontend.worker_streams import instance_lost
                if instance_lost(exc):
                    return ERR_UNAVAILABLE
            return status
    return ERR_INTERNAL


# "RemoteHandlerError: AttributeError: ..." - class names the layers below prefix to a remote error's text
_CLASS_PREFIX = re.compile(r"^(?:[A-Z][A-Za-z0-9_]*(?:Error|Exception|Interrupt|Exit): )+")
_PLAIN = {ERR_CANCELLED: "The stream was cancelled.", ERR_NOT_FOUND: "Not found.",
          ERR_UNAVAILABLE: "The service is unavailable.", ERR_ENGINE: "The engine failed.",
          ERR_INVALID_ARGUMENT: "Invalid argument.", ERR_SHUTDOWN: "The runtime was shut down."}


def describe(exc: BaseException) -> str:
    """The message of dynamo_last_error for exc: a plain sentence without Python class names, except
    for an unexpected exception (a bug), whose type is kept for the report."""
    status = status_of(exc)
    text = _CLASS_PREFIX.sub("", str(getattr(exc, "message", None) or exc)).strip()
    if status == ERR_INTERNAL:
        detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return f"An internal error occurred ({detail}); please report it."
    return text or _PLAIN.get(status, "The call failed.")
