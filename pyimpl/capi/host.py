"""The embedded host: one asyncio loop in a library-owned thread that drains C's submission
queue (woken through an eventfd) and fills C stream queues through a sink."""
from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from pyimpl.capi.chunks import ChunkBatch, chat_batch, endpoint_array, fields_batch, response_chunks
from pyimpl.capi.config import parse_config
from pyimpl.capi.heap import HeapReclaimer
from pyimpl.capi.loop_threads import LoopThreads
from pyimpl.capi.session import RuntimeSession
from pyimpl.capi.status import (ERR_CANCELLED, ERR_INVALID_ARGUMENT, ERR_INVALID_HANDLE, ERR_SHUTDOWN, OK,
                                CapiError, describe, status_of)

EV_CHAT, EV_GENERATE, EV_CANCEL, EV_COMPLETION, EV_RESPONSES = 1, 2, 3, 4, 5
CALL_TIMEOUT_S = 600.0
MAX_BATCH = 256  # chunks handed to C in one call at most


@dataclass
class Event:
    """A submission or cancellation queued by C."""

    kind: int
    runtime: int
    stream: int
    endpoint: str | None = None
    request: bytes | None = None


class Sink(Protocol):
    """What the host needs from C (or from a test double)."""

    def wake_fd(self) -> int: ...
    def clear_wake(self) -> None: ...
    def next_event(self) -> Event | None: ...
    def push_batch(self, stream: int, batch: ChunkBatch) -> bool: ...
    def push_json_array(self, stream: int, array: bytes) -> bool: ...
    def finish(self, stream: int, status: int, message: str) -> None: ...


class EmbeddedHost:
    """Owns the loop thread, the runtime sessions by C handle and one task per live C stream."""

    def __init__(self, sink: Sink):
        self.sink = sink
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sessions: dict[int, RuntimeSession] = {}
        self.streams: dict[int, asyncio.Task] = {}
        self.streams_of: dict[int, set[int]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.heap = HeapReclaimer()
        self.threads = LoopThreads()

    # ---- loop thread ----
    def ensure_loop(self) -> asyncio.AbstractEventLoop:
        """Start the loop thread once; it lives for the life of the process."""
        with self._lock:
            if self.loop is None:
                ready = threading.Event()
                loop = asyncio.new_event_loop()
                self.threads.install(loop)

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.add_reader(self.sink.wake_fd(), self._drain)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=run, name="dynamo-llm-capi-loop", daemon=True)
                self._thread.start()
                ready.wait()
                self.loop = loop
        return self.loop

    def stop_loop(self) -> None:
        """Stop and close the loop thread (tests; the embedded library keeps it for the process's life)."""
        with self._lock:
            loop, self.loop = self.loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join()
            loop.remove_reader(self.sink.wake_fd())
            loop.close()

    def call(self, coro: Any) -> Any:
        """Run a coroutine on the loop from a C caller's thread and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.ensure_loop()).result(CALL_TIMEOUT_S)

    # ---- runtimes (called from C threads holding the GIL) ----
    def create_runtime(self, handle: int, config_json: str) -> None:
        """Parse the config and start a session for a new C runtime handle."""
        config = parse_config(config_json)
        try:
            self.sessions[handle] = self.call(RuntimeSession.start(config))
        except BaseException:
            self.heap.runtime_destroyed(idle=not self.streams)  # what a failed start had loaded
            raise
        self.streams_of.setdefault(handle, set())

    def destroy_runtime(self, handle: int) -> None:
        """Cancel the runtime's streams and shut it down (C already ended them with SHUTDOWN)."""
        session = self.sessions.pop(handle, None)
        if session is None:
            raise CapiError(ERR_INVALID_HANDLE, "unknown runtime")
        self.call(self._close(handle, session))
        self.heap.runtime_destroyed(idle=not self.streams)  # its engine and model, frozen at load, go then

    async def _close(self, handle: int, session: RuntimeSession) -> None:
        tasks = [self.streams[s] for s in self.streams_of.pop(handle, ()) if s in self.streams]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
        if not self.sessions:  # the last runtime: its helper threads go too
            await self.threads.release()

    def stats(self, handle: int) -> dict:
        """Figures of one runtime, computed on the loop thread."""
        session = self.sessions.get(handle)
        if session is None:
            raise CapiError(ERR_INVALID_HANDLE, "unknown runtime")

        async def collect() -> dict:
            figures = session.stats()
            figures["live_streams"] = len(self.streams_of.get(handle, ()))
            return figures
        return self.call(collect())

    # ---- streams (loop thread) ----
    def _drain(self) -> None:
        self.sink.clear_wake()
        while (event := self.sink.next_event()) is not None:
            if event.kind == EV_CANCEL:
                task = self.streams.get(event.stream)
                if task is not None:
                    task.cancel()
                continue
            session = self.sessions.get(event.runtime)
            if session is None:
                self.sink.finish(event.stream, ERR_SHUTDOWN, "the runtime was destroyed")
                continue
            task = self.loop.create_task(self._run(session, event))
            self.streams[event.stream] = task
            self.streams_of[event.runtime].add(event.stream)
            task.add_done_callback(lambda t, e=event: self._forget(t, e))

    def _forget(self, task: asyncio.Task, event: Event) -> None:
        self.streams.pop(event.stream, None)
        self.streams_of.get(event.runtime, set()).discard(event.stream)
        if task.cancelled():  # cancelled before it started: _run never reported
            self.sink.finish(event.stream, ERR_CANCELLED, "the stream was cancelled")
        self.heap.maybe_collect(idle=not self.streams)

    async def _run(self, session: RuntimeSession, event: Event) -> None:
        status, message, source = OK, "", None
        sink, stream = self.sink, event.stream
        if event.kind in (EV_CHAT, EV_COMPLETION):  # completion chunks' text is their choice's "text"
            pump = _Pump(self.loop, lambda items: sink.push_batch(stream, chat_batch(items)))
        elif event.kind == EV_RESPONSES:
            pump = _Pump(self.loop, lambda items: sink.push_batch(stream, fields_batch(items)))
        else:
            pump = _Pump(self.loop, lambda items: sink.push_json_array(stream, endpoint_array(items)))
        try:
            try:
                request = json.loads(event.request)
            except ValueError as exc:
                raise CapiError(ERR_INVALID_ARGUMENT, f"The request is not valid JSON: {exc}.") from None
            if event.kind == EV_CHAT:
                source = session.chat(request)
            elif event.kind == EV_COMPLETION:
                source = session.completion(request)
            elif event.kind == EV_RESPONSES:
                source = response_chunks(session.responses(request))
            else:
                source = await session.generate(event.endpoint, request)
            items, added = pump.items, pump.added
            async for item in source:
                items.append(item)
                if 1 < len(items) < MAX_BATCH:
                    continue  # the loop iteration's flush is already scheduled (see _Pump.added)
                if not added():
                    break  # cancelled or freed by the host
        except asyncio.CancelledError:
            status, message = ERR_CANCELLED, "the stream was cancelled"
        except BaseException as exc:  # every failure becomes a sticky status of the stream
            status, message = status_of(exc), describe(exc)
        finally:
            pump.flush()
            if pump.error is not None and status == OK:
                status, message = status_of(pump.error), describe(pump.error)
            if source is not None and hasattr(source, "aclose"):
                try:
                    await source.aclose()  # propagates the cancellation to the runtime and engine
                except BaseException:
                    pass
            self.sink.finish(event.stream, status, message)


class _Pump:
    """Hands one stream's items to C once per loop iteration (one encode, one C call, one wake-up
    of the poller for many chunks). A stream that yielded at most one item in the last iteration
    (an LLM stream: one token per engine step) has its first item handed over at once instead,
    for latency; a bulk stream would only wake the poller twice per iteration that way."""

    __slots__ = ("loop", "push", "items", "scheduled", "bulk", "refused", "error")

    def __init__(self, loop: asyncio.AbstractEventLoop, push: Callable[[list], bool]):
        self.loop, self.push = loop, push   # push(items) -> False once C no longer wants chunks
        self.items: list = []
        self.scheduled = self.bulk = self.refused = False
        self.error: Exception | None = None  # a batch that could not be encoded ends the stream

    def added(self) -> bool:
        """After an item was appended to `items`: schedule the iteration's flush, hand over at once
        if due; False once C no longer wants chunks. Between the first and the MAX_BATCH-th item
        of a batch there is nothing to do (items is never left non-empty without a flush due), so
        the stream's loop may skip this call."""
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)
            if not self.bulk:
                self._push()
        elif len(self.items) >= MAX_BATCH:
            self._push()
        return not self.refused

    def flush(self) -> None:
        """End of a loop iteration (or of the stream): hand over what is left."""
        left = len(self.items)   # the iteration's items after the first (or all of them, if bulk)
        self.scheduled, self.bulk = False, left > 1 if self.bulk else left > 0
        self._push()

    def _push(self) -> None:
        items = self.items
        if items and not self.refused:
            try:
                self.refused = not self.push(items)
            except Exception as exc:  # e.g. an unencodable item: reported as the stream's status
                self.error, self.refused = exc, True
        items.clear()  # the same list object throughout (the stream's loop holds it)
