"""Python exceptions map onto the header's named status codes."""
import asyncio

import pytest

from pyimpl.capi import status
from pyimpl.llm import errors as llm
from pyimpl.runtime import errors as rt


@pytest.mark.parametrize("exc, code", [
    (status.CapiError(status.ERR_NOT_FOUND, "x"), status.ERR_NOT_FOUND),
    (asyncio.CancelledError(), status.ERR_CANCELLED),
    (rt.EndpointNotFoundError("x"), status.ERR_NOT_FOUND),
    (rt.NoInstancesError("x"), status.ERR_UNAVAILABLE),
    (rt.DisconnectedError("x"), status.ERR_UNAVAILABLE),
    (rt.ConnectError("cannot connect to NATS"), status.ERR_UNAVAILABLE),
    (rt.RemoteHandlerError("x"), status.ERR_ENGINE),
    (llm.ModelNotFoundError("x"), status.ERR_NOT_FOUND),
    (llm.InvalidRequestError("x"), status.ERR_INVALID_ARGUMENT),
    (FileNotFoundError("x"), status.ERR_NOT_FOUND),
    (ValueError("x"), status.ERR_INVALID_ARGUMENT),
    (RuntimeError("x"), status.ERR_INTERNAL),
])
def test_status_of(exc, code):
    assert status.status_of(exc) == code


def lost_worker_error() -> llm.EngineError:
    """What the frontend raises when a worker's stream breaks (migration.MigratingStream.pairs)."""
    try:
        try:
            raise rt.StreamIncompleteError("stream from 127.0.0.1:1 ended before completion (instance lost)")
        except rt.DisconnectedError as exc:
            raise llm.EngineError(f"StreamIncompleteError: {exc}") from exc
    except llm.EngineError as exc:
        return exc


def test_a_lost_worker_is_unavailable_and_an_engine_failure_is_not():
    assert status.status_of(lost_worker_error()) == status.ERR_UNAVAILABLE
    assert status.describe(lost_worker_error()).startswith("stream from 127.0.0.1:1 ended before completion")
    assert status.status_of(llm.EngineError("the engine failed")) == status.ERR_ENGINE


def test_status_values_match_the_header():
    header = open("include/dynamo_llm.h").read()
    for name in ("OK", "TIMEOUT", "END", "ERR_INVALID_ARGUMENT", "ERR_INVALID_HANDLE", "ERR_NOT_FOUND",
                 "ERR_UNAVAILABLE", "ERR_CANCELLED", "ERR_ENGINE", "ERR_SHUTDOWN", "ERR_FORKED",
                 "ERR_INTERNAL", "ERR_PYTHON_INIT"):
        assert f"DYNAMO_{name} " in header
        line = next(l for l in header.splitlines() if f"DYNAMO_{name} " in l and "=" in l)
        assert int(line.split("=")[1].split(",")[0].split("/")[0]) == getattr(status, name)


@pytest.mark.parametrize("exc, message", [
    (status.CapiError(status.ERR_INVALID_ARGUMENT, "config_json has unknown key \"x\"."),
     "config_json has unknown key \"x\"."),
    (llm.EngineError("RemoteHandlerError: AttributeError: 'M' object has no attribute 'w'"),
     "'M' object has no attribute 'w'"),
    (asyncio.CancelledError(), "The stream was cancelled."),
    (llm.InvalidRequestError("'x' must not look like ValueError: y"), "'x' must not look like ValueError: y"),
    (RuntimeError("boom"), "An internal error occurred (RuntimeError: boom); please report it."),
])
def test_messages_are_plain_sentences_without_class_names(exc, message):
    assert status.describe(exc) == message
