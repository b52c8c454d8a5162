"""Worker response streams as the frontend reads them: chunk data out of runtime items, runtime errors
mapped once to the serving layer's typed errors, n streams merged in arrival order, closing that cancels
(one stream's loop is migration.MigratingStream.pairs)."""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Protocol

from pyimpl.llm.errors import EngineError, EngineRequestError, NoWorkerError


def chunk_data(item: Any) -> Any:
    """A runtime item's data (a worker's typed error chunk raised as EngineError)."""
    if isinstance(item, dict):
        return item
    if item.is_error():
        raise EngineError(str(item.data()))
    return item.data()


def runtime_error(exc: Exception) -> Exception:
    """A runtime failure as the serving layer's typed error (no instances: 503; the worker's engine refusing the
    request's parameters, which cross the wire as "EngineRequestError: ...": 400; other runtime errors: 500)."""
    from pyimpl.runtime.errors import DynamoError, NoInstancesError, RemoteHandlerError
    if isinstance(exc, NoInstancesError):
        return NoWorkerError(str(exc))
    refused = f"{EngineRequestError.__name__}: "
    if isinstance(exc, RemoteHandlerError) and str(exc).startswith(refused):
        return EngineRequestError(str(exc).removeprefix(refused))
    if isinstance(exc, DynamoError):
        return EngineError(f"{type(exc).__name__}: {exc}")
    return exc


def instance_lost(exc: BaseException) -> bool:
    """Whether a worker stream ended with `exc` because its instance was lost (the runtime's DisconnectedError:
    connection reset, keepalive timeout, stream cut short), raised as is or mapped by runtime_error."""
    from pyimpl.runtime.errors import DisconnectedError
    return isinstance(exc, DisconnectedError) or isinstance(exc.__cause__, DisconnectedError)


class ChoiceStream(Protocol):
    """One choice's worker stream as the frontend reads it (migration.MigratingStream)."""

    def pairs(self, index: int = 0) -> AsyncIterator[tuple[int, dict]]:
        """(index, chunk data) pairs, runtime errors mapped by runtime_error; closing it cancels the request."""

    async def aclose(self) -> None:
        """Close the worker stream (cancelling it on the worker if still running). Idempotent."""


async def close_stream(stream: Any) -> None:
    """Close a runtime response stream; a stream still running is cancelled on the worker. Idempotent."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


async def merge_streams(streams: list[ChoiceStream]) -> AsyncIterator[tuple[int, dict]]:
    """Several worker streams interleaved as (index, data) pairs, in arrival order."""
    queue: asyncio.Queue = asyncio.Queue()
    done = object()

    async def pump(index: int, stream: ChoiceStream) -> None:
        try:
            async for pair in stream.pairs(index):
                await queue.put(pair)
            await queue.put((index, done))
        except BaseException as exc:
            await queue.put((index, exc))
            raise

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    remaining = len(tasks)
    try:
        while remaining:
            index, item = await queue.get()
            if item is done:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
