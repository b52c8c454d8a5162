"""The worker's half of a remote stream, written once for the tcp and nats planes: run the handler,
send its chunks within the consumer's credit window, end a handler whose client went away while it
waited for credit, and finish every stream with END or a typed ERROR. A plane supplies, per stream,
a `StreamTransport` (how frames reach that stream's client) and feeds incoming frames to `on_frame`."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Callable, Hashable, Optional, Protocol

from ..context import Context
from ..dispatcher import Dispatcher
from .base import CANCEL, CREDIT, INCOMPLETE, REQUEST, Credits, error_to_wire

CLIENT_GONE = "the worker ended the stream: its client stopped answering"
SHUT_DOWN = "the instance shut down before the stream completed"


class ClientWatch(Protocol):
    """Asked every `interval` s while a stream waits in vain for credit: is its client still there?"""

    interval: float

    async def alive(self) -> bool: ...


class StreamTransport(Protocol):
    """How one stream's frames reach its client (tcp: a connection and a stream id; nats: a reply subject)."""

    def data(self, chunk: Any) -> bool:
        """Queue one chunk (may raise for one the codec cannot encode); True asks the producer to
        pause before the next: the transport is far behind (await room()), or gone()."""

    def end(self) -> None: ...

    def error(self, kind: str, message: str) -> None: ...

    def gone(self) -> bool:
        """The way to the client is closed for good: nothing sent arrives any more."""

    async def room(self) -> None:
        """Wait until a transport that was far behind has caught up."""

    def watch_client(self) -> ClientWatch: ...


class _Entry:
    """One served stream: the task running its handler, the handler's context, its credit window (a plain
    slots class: a frozen dataclass's __init__ sets each field through object.__setattr__)."""

    __slots__ = ("task", "context", "credits")

    def __init__(self, task: asyncio.Task, context: Context, credits: Credits):
        self.task, self.context, self.credits = task, context, credits


class ServedStreams:
    """The streams a worker serves for one peer (a tcp connection) or one subscription (nats),
    keyed by stream id or reply subject: starts, grants credit to, cancels and stops them."""

    def __init__(self, dispatcher: Dispatcher, transport_for: Callable[[Hashable], StreamTransport]):
        self.dispatcher = dispatcher
        self.transport_for = transport_for
        self.shutting_down = False      # cancelled streams then tell their clients "incomplete"
        self._streams: dict[Hashable, _Entry] = {}

    def __len__(self) -> int:
        return len(self._streams)

    def on_frame(self, frame: list, reply: Optional[Hashable] = None) -> bool:
        """Act on a REQUEST, CREDIT or CANCEL frame; False for any other kind (the plane's own).
        A REQUEST's stream key is `reply` when given (nats), else its second field (tcp's stream id)."""
        kind = frame[0]
        if kind == CREDIT:
            entry = self._streams.get(frame[1])
            if entry is not None:
                entry.credits.grant(frame[2])
        elif kind == REQUEST:
            key, at = (frame[1], 2) if reply is None else (reply, 1)
            self.open(key, frame[at], frame[at + 1], frame[at + 2], frame[at + 3] if len(frame) > at + 3 else 0)
        elif kind == CANCEL:
            self.cancel(frame[1])
        else:
            return False
        return True

    def open(self, key: Hashable, path: str, ctx_id: str, payload: Any, window: int) -> None:
        """Start serving one request; `window` is the client's credit window (0: unbounded)."""
        context = Context(ctx_id)
        credits = Credits(window)
        task = asyncio.get_running_loop().create_task(
            self._run(key, self.transport_for(key), path, payload, context, credits))
        self._streams[key] = _Entry(task, context, credits)

    def cancel(self, key: Hashable) -> None:
        """The client cancelled (or the stream cannot go on): stop its handler."""
        entry = self._streams.pop(key, None)
        if entry is not None:
            entry.context.stop_generating()
            entry.task.cancel()

    def stop_all(self, shutting_down: bool = False) -> list[asyncio.Task]:
        """Stop every handler (its client is gone, or `shutting_down` this instance); their tasks."""
        self.shutting_down = self.shutting_down or shutting_down
        entries = list(self._streams.values())
        self._streams.clear()
        for entry in entries:
            entry.context.stop_generating()
            entry.task.cancel()
        return [entry.task for entry in entries]

    async def _run(self, key: Hashable, transport: StreamTransport, path: str, payload: Any,
                   context: Context, credits: Credits) -> None:
        dispatcher = self.dispatcher
        try:
            served = dispatcher.lookup(path)
        except Exception as exc:
            self._streams.pop(key, None)
            transport.error(*error_to_wire(exc))
            return
        started = dispatcher.begin(served)
        send = transport.data
        generator: Optional[AsyncIterator] = None
        try:
            generator = served.open(payload, context)
            async for chunk in generator:
                if send(chunk):
                    if transport.gone():
                        await _abandon(context, generator)
                        return
                    await transport.room()
                credits.left -= 1
                if credits.left <= 0 and not await _credit_or_client_gone(transport, credits):
                    await _abandon(context, generator)
                    if not transport.gone():
                        transport.error(INCOMPLETE, CLIENT_GONE)
                    return
            transport.end()
        except asyncio.CancelledError:
            if self.shutting_down and not transport.gone():
                transport.error(INCOMPLETE, SHUT_DOWN)
            await _abandon(context, generator)
            raise
        except Exception as exc:           # the handler's, or a chunk the codec rejects
            if not transport.gone():
                transport.error(*error_to_wire(exc))
        finally:
            self._streams.pop(key, None)
            dispatcher.end(served, started)


async def _credit_or_client_gone(transport: StreamTransport, credits: Credits) -> bool:
    """Wait for the consumer's credit; True once granted, False once the transport's watch judges
    the client gone (e.g. a killed or stopped client process)."""
    watch = transport.watch_client()
    while credits.left <= 0:
        try:
            await asyncio.wait_for(credits.wait(), watch.interval)
            continue
        except asyncio.TimeoutError:
            pass
        if not await watch.alive():
            return False
    return True


async def _abandon(context: Context, generator: Optional[AsyncIterator]) -> None:
    """Stop the handler: its context first (so engines notice), then close its generator quietly."""
    context.stop_generating()
    if generator is not None:
        try:
            await generator.aclose()
        except BaseException:
            pass
