"""In-process plane: the client iterates the handler's generator directly (no copy, no
serialization, no queue, no task). Instances are found in a process-wide table."""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional

from ..annotated import Annotated
from ..context import Context, uncancel
from ..dispatcher import Dispatcher, ServedEndpoint
from ..errors import NoInstancesError, RemoteHandlerError
from . import ResponseStreamBase, Transport

INSTANCES: dict[int, Dispatcher] = {}


class InprocServer:
    """Registers this runtime's dispatcher under its instance id."""

    def __init__(self, dispatcher: Dispatcher, instance_id: int):
        self.dispatcher = dispatcher
        self.instance_id = instance_id

    async def start(self) -> Transport:
        INSTANCES[self.instance_id] = self.dispatcher
        return {"type": "inproc"}

    async def close(self) -> None:
        INSTANCES.pop(self.instance_id, None)


class InprocResponseStream(ResponseStreamBase):
    """Runs the handler generator inside the consumer's task; closing it closes the generator.
    Yields Annotated items, or the handler's raw items when opened with annotated=False."""

    __slots__ = ("_gen", "_served", "_dispatcher", "_started", "_handler_context",
                 "_done", "_task", "_stopped_by_context", "_remove_link", "_annotated", "__weakref__")

    def __init__(self, dispatcher: Dispatcher, served: ServedEndpoint, request: Any, context: Context,
                 annotated: bool = True):
        self._annotated = annotated
        self._dispatcher = dispatcher
        self._served = served
        self._context = context
        self._handler_context = Context(context.id())
        self._gen = served.open(request, self._handler_context)
        self._started = dispatcher.begin(served)
        self._done = False
        self._task: Optional[asyncio.Task] = None
        self._stopped_by_context = False
        self._remove_link = context.add_weak_stop_callback(self, "_on_context_stopped")

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration
        self._task = asyncio.current_task()
        try:
            item = await self._gen.__anext__()
            return Annotated(item) if self._annotated else item
        except StopAsyncIteration:
            self._finish()
            raise
        except asyncio.CancelledError:
            if self._stopped_by_context:
                uncancel(self._task)
                self._finish()
                await self._close_generator()
                raise StopAsyncIteration from None
            self._abandon()
            raise
        except Exception as exc:
            self._finish()
            raise RemoteHandlerError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._task = None

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._remove_link()
            self._dispatcher.end(self._served, self._started)

    async def _close_generator(self) -> None:
        try:
            await self._gen.aclose()
        except (Exception, asyncio.CancelledError):
            pass

    def _abandon(self) -> None:
        if self._done:
            return
        self._finish()
        self._handler_context.stop_generating()
        self._context.stop_generating()

    async def aclose(self) -> None:
        if not self._done:
            self._abandon()
            await self._close_generator()

    def _on_context_stopped(self) -> None:
        self._handler_context.stop_generating()
        if self._task is not None:       # consumer blocked inside the handler: interrupt it
            self._stopped_by_context = True
            self._task.cancel()
        else:
            self._finish()               # next __anext__ ends; close the idle generator now
            asyncio.get_running_loop().create_task(self._close_generator())

    def __del__(self):
        if not self._done:
            self._done = True
            self._handler_context.stop_generating()
            self._dispatcher.end(self._served, self._started)
            # the generator itself is finalized (aclose) by the loop's async-generator hooks


class InprocClient:
    """Opens streams against dispatchers registered in this process."""

    async def open(self, transport: Transport, instance_id: int, path: str, request: Any,
                   context: Context, annotated: bool = True) -> InprocResponseStream:
        dispatcher = INSTANCES.get(instance_id)
        if dispatcher is None:
            raise NoInstancesError(f"instance {instance_id:x} is gone")
        served = dispatcher.lookup(path)
        return InprocResponseStream(dispatcher, served, request, context, annotated)

    def watch_lost(self, transport: Transport, callback: Callable[[], None]) -> None:
        """Nothing to watch: an instance in this process that is gone raises at open."""

    async def close(self) -> None:
        pass
