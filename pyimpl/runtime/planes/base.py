"""What every plane shares: the served-endpoint table it dispatches into, wire message kinds,
and the client-side response stream fed by a connection's reader."""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable, Optional

from ..annotated import Annotated
from ..context import Context
from ..errors import (DynamoError, EndpointNotFoundError, PayloadTooLargeError, RemoteHandlerError,
                      StreamIncompleteError)

# Wire message kinds (first element of every msgpack array on tcp and nats).
REQUEST, CANCEL, DATA, END, ERROR, PING, PART = range(7)

# Error kinds carried by ERROR messages, mapped back to typed errors on the client.
ERROR_TYPES: dict[str, type[DynamoError]] = {
    "handler": RemoteHandlerError,
    "not_found": EndpointNotFoundError,
    "too_large": PayloadTooLargeError,
}


def error_from_wire(kind: str, message: str) -> DynamoError:
    return ERROR_TYPES.get(kind, DynamoError)(message)


def error_to_wire(exc: BaseException) -> tuple[str, str]:
    """(kind, message) for an exception raised while serving a stream."""
    if isinstance(exc, EndpointNotFoundError):
        return "not_found", str(exc)
    if isinstance(exc, PayloadTooLargeError):
        return "too_large", str(exc)
    return "handler", f"{type(exc).__name__}: {exc}"


class QueuedResponseStream:
    """Client side of one remote stream: the connection's reader pushes payloads, the consumer
    iterates Annotated chunks. Dropping, closing or cancelling it cancels the remote handler."""

    __slots__ = ("_items", "_waiter", "_done", "_error", "_context", "_cancel_remote",
                 "_remove_link", "__weakref__")

    def __init__(self, context: Context, cancel_remote: Callable[[], None]):
        self._items: deque = deque()
        self._waiter: Optional[asyncio.Future] = None
        self._done = False
        self._error: Optional[BaseException] = None
        self._context = context
        self._cancel_remote: Optional[Callable[[], None]] = cancel_remote
        self._remove_link = context.add_stop_callback(self._on_context_stopped)

    # --- fed by the connection reader -------------------------------------------------
    def push(self, payload: Any) -> None:
        self._items.append(payload)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def finish(self, error: Optional[BaseException] = None) -> None:
        """End marker (error None) or failure; the remote side is done, nothing to cancel."""
        if self._done:
            return
        self._done = True
        self._error = error
        self._cancel_remote = None
        self._remove_link()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- consumer API -----------------------------------------------------------------
    def context(self) -> Context:
        return self._context

    def __aiter__(self):
        return self

    async def __anext__(self) -> Annotated:
        items = self._items
        while True:
            if items:
                return Annotated(items.popleft())
            if self._done:
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            except BaseException:
                self._abandon()
                raise
            finally:
                self._waiter = None

    async def aclose(self) -> None:
        self._abandon()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        self._abandon()

    def _abandon(self) -> None:
        """The consumer went away: cancel the remote handler and stop the context."""
        if self._done:
            return
        self._done = True
        self._items.clear()
        cancel, self._cancel_remote = self._cancel_remote, None
        self._remove_link()
        if cancel is not None:
            cancel()
        self._context.stop_generating()

    def _on_context_stopped(self) -> None:
        # The caller stopped the context: the stream ends cleanly after a cancel goes out.
        if self._done:
            return
        self._done = True
        cancel, self._cancel_remote = self._cancel_remote, None
        if cancel is not None:
            cancel()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __del__(self):
        if not self._done and self._cancel_remote is not None:
            try:
                self._abandon()
            except Exception:
                pass


def incomplete(where: str) -> StreamIncompleteError:
    return StreamIncompleteError(f"stream from {where} ended before completion (instance lost)")
