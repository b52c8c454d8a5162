"""What every plane shares: wire message kinds, typed errors on the wire, per-stream flow
control (credits), and the client-side response stream fed by a connection's reader."""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Callable, Optional

import msgspec

from ..annotated import Annotated
from ..context import Context
from ..errors import (DisconnectedError, DynamoError, EndpointNotFoundError, NoInstancesError, PayloadTooLargeError,
                      RemoteHandlerError, StreamIncompleteError)
from . import ResponseStreamBase

# Wire message kinds (first element of every msgpack array on tcp and nats).
REQUEST, CANCEL, DATA, END, ERROR, PING, PART, BATCH, CREDIT = range(9)
DEFAULT_WINDOW = 1024   # chunks a handler may run ahead of its consumer (256 cuts a fast nats stream ~30%)
PING_FRAME: bytes = msgspec.msgpack.encode([PING])   # nats: a ping and its answer alike (the reply subject tells)

# Error kinds carried by ERROR messages, mapped back to typed errors on the client.
HANDLER_FAILED, NOT_FOUND, TOO_LARGE, INCOMPLETE = "handler", "not_found", "too_large", "incomplete"
ERROR_TYPES: dict[str, type[DynamoError]] = {
    HANDLER_FAILED: RemoteHandlerError,
    NOT_FOUND: EndpointNotFoundError,
    TOO_LARGE: PayloadTooLargeError,
    INCOMPLETE: StreamIncompleteError,
}


# Stream endings that mean the instance itself is gone (not that the request failed on it).
LOST_INSTANCE = (NoInstancesError, DisconnectedError)


def error_from_wire(kind: str, message: str) -> DynamoError:
    return ERROR_TYPES.get(kind, DynamoError)(message)


def error_to_wire(exc: BaseException) -> tuple[str, str]:
    """(kind, message) for an exception raised while serving a stream; characters UTF-8 cannot
    carry (lone surrogates) are escaped, so the error always reaches the client."""
    if isinstance(exc, EndpointNotFoundError):
        kind, message = NOT_FOUND, str(exc)
    elif isinstance(exc, PayloadTooLargeError):
        kind, message = TOO_LARGE, str(exc)
    else:
        kind, message = HANDLER_FAILED, f"{type(exc).__name__}: {exc}"
    return kind, message.encode("utf-8", "backslashreplace").decode("utf-8")


class Credits:
    """Sender side of a stream's window: each chunk sent spends a credit; with none left the
    handler waits until the consumer grants more (so it never runs more than a window ahead)."""

    __slots__ = ("left", "_waiter")

    def __init__(self, window: int):
        self.left = window if window > 0 else 1 << 62     # 0: an old client, no flow control
        self._waiter: Optional[asyncio.Future] = None

    def grant(self, n: int) -> None:
        self.left += n
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Called by the sender after `left -= 1` left nothing: wait for the consumer's grant."""
        while self.left <= 0:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class StreamSink:
    """Receiving end of one remote stream, held by the connection: the reader hands it each frame
    (`take`); the consumer's QueuedResponseStream drains it and, every half window consumed,
    calls `grant(n)` so the sender may go on."""

    __slots__ = ("items", "waiter", "done", "error", "grant", "grant_every", "consumed", "lost")

    def __init__(self, window: int = 0, grant: Optional[Callable[[int], None]] = None) -> None:
        self.items: deque = deque()
        self.waiter: Optional[asyncio.Future] = None
        self.done = False
        self.error: Optional[BaseException] = None
        self.grant = grant if window > 0 else None
        self.grant_every = max(1, window // 2)
        self.consumed = 0
        self.lost: Optional[Callable[[], None]] = None   # called when the stream ends with its instance gone

    def grant_consumed(self) -> None:
        """Hand the credits of the chunks consumed so far back to the sender (not after the end)."""
        if not self.done:
            self.grant(self.consumed)
        self.consumed = 0

    def take(self, frame: list, at: int) -> bool:
        """Apply a DATA, END or ERROR frame whose fields start at frame[at] (after tcp's stream id);
        True when it ended the stream. It is the readers' per-chunk path, so it stays one call."""
        kind = frame[0]
        if kind == DATA:
            self.items.append(frame[at])
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            return False
        if kind == END:
            self.finish()
            return True
        if kind == ERROR:
            self.finish(error_from_wire(frame[at], frame[at + 1]))
            return True
        return False

    def finish(self, error: Optional[BaseException] = None) -> None:
        """End marker (error None) or failure."""
        if self.done:
            return
        self.done = True
        self.error = error
        if self.lost is not None and isinstance(error, LOST_INSTANCE):
            self.lost()
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class QueuedResponseStream(ResponseStreamBase):
    """What the caller iterates: Annotated chunks, or the raw chunks when opened with annotated=False.
    Only the caller holds it, so dropping it, closing it, cancelling its consumer or stopping its
    context cancels the remote handler."""

    __slots__ = ("_sink", "_closed", "_cancel_remote", "_remove_link", "_annotated", "__weakref__")

    def __init__(self, sink: StreamSink, context: Context, cancel_remote: Callable[[], None],
                 annotated: bool = True):
        self._sink = sink
        self._annotated = annotated
        self._closed = False
        self._context = context
        self._cancel_remote: Optional[Callable[[], None]] = cancel_remote
        self._remove_link = context.add_weak_stop_callback(self, "_on_context_stopped")

    async def __anext__(self) -> Any:
        sink = self._sink
        items = sink.items
        while True:
            if items:
                if sink.grant is not None:          # flow control: count reads, grant every half window
                    sink.consumed += 1
                    if sink.consumed >= sink.grant_every:
                        sink.grant_consumed()
                item = items.popleft()
                return Annotated(item) if self._annotated else item
            if sink.done:
                self._settle()
                if sink.error is not None:
                    error, sink.error = sink.error, None
                    raise error
                raise StopAsyncIteration
            if self._closed:
                raise StopAsyncIteration
            sink.waiter = asyncio.get_running_loop().create_future()
            try:
                await sink.waiter
            except BaseException:
                self._abandon()
                raise
            finally:
                sink.waiter = None

    def _settle(self) -> None:
        """The remote side finished: nothing left to cancel."""
        if self._cancel_remote is not None:
            self._cancel_remote = None
            self._remove_link()
        self._closed = True

    async def aclose(self) -> None:
        self._abandon()

    def on_lost(self, callback: Callable[[], None]) -> None:
        sink = self._sink
        if sink.done:
            if isinstance(sink.error, LOST_INSTANCE):
                callback()
        else:
            sink.lost = callback

    def _cancel(self) -> bool:
        """Send the remote cancel once, if the stream is still running; True if sent."""
        self._closed = True
        cancel, self._cancel_remote = self._cancel_remote, None
        if cancel is None or self._sink.done:
            return False
        self._remove_link()
        cancel()
        return True

    def _abandon(self) -> None:
        """The consumer went away: cancel the remote handler and stop the context."""
        if self._cancel():
            self._context.stop_generating()

    def _on_context_stopped(self) -> None:
        # The caller stopped the context: a cancel goes out and the stream ends cleanly.
        self._cancel()
        self._sink.wake()

    def __del__(self):
        if self._cancel_remote is not None:
            try:
                self._abandon()
            except Exception:
                pass


def incomplete(where: str) -> StreamIncompleteError:
    return StreamIncompleteError(f"stream from {where} ended before completion (instance lost)")
