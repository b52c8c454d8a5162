"""Test endpoints, served in-process or by worker_process.py: counting, slow, failing, echo,
a probe that reports whether a given request's handler saw its cancellation, and an endless
stream whose progress (chunks produced so far) another endpoint reports."""
from __future__ import annotations

import asyncio

from pyimpl.runtime import Context


class StreamHandlers:
    """Handlers plus the record of cancelled request ids."""

    def __init__(self) -> None:
        self.cancelled: dict[str, asyncio.Event] = {}
        self.produced: dict[str, int] = {}

    def ended_event(self, request_id: str) -> asyncio.Event:
        """Set once the handler of request `request_id` ended (slow, endless)."""
        return self.cancelled.setdefault(request_id, asyncio.Event())

    async def count(self, request, context: Context):
        for i in range(request["n"]):
            yield {"i": i}

    async def slow(self, request, context: Context):
        """Yields every `interval` s (forever, or `limit` chunks); records the context id when it ends."""
        i = 0
        limit = request.get("limit")
        try:
            while limit is None or i < limit:
                yield {"i": i}
                i += 1
                await asyncio.sleep(request.get("interval", 0.01))
        finally:
            self.ended_event(context.id()).set()

    async def fail(self, request, context: Context):
        """One chunk, then ValueError("boom: <why>"), its message ending in a lone surrogate (which
        UTF-8 cannot carry) when the request asks for `surrogate`."""
        yield {"i": 0}
        raise ValueError(f"boom: {request['why']}" + ("\ud800" if request.get("surrogate") else ""))

    async def unencodable(self, request, context: Context):
        """A chunk no wire format can carry (inproc passes it through untouched)."""
        yield {"i": 0}
        yield {"bad": object()}

    async def echo(self, request, context: Context):
        yield {"size": len(request["blob"]), "blob": request["blob"]}

    async def endless(self, request, context: Context):
        """Yields as fast as it is let, forever; records how many chunks it produced per request
        and, like `slow`, when it ended."""
        request_id = context.id()
        i = 0
        try:
            while True:
                self.produced[request_id] = i + 1
                yield {"i": i}
                i += 1
        finally:
            self.ended_event(request_id).set()

    async def progress(self, request, context: Context):
        """How many chunks the endless stream of request `id` has produced."""
        yield {"produced": self.produced.get(request["id"], 0)}

    async def was_cancelled(self, request, context: Context):
        """Waits (up to `timeout`) until the handler of request `id` ended; yields whether it did."""
        try:
            await asyncio.wait_for(self.ended_event(request["id"]).wait(), request.get("timeout", 5))
            yield {"cancelled": True}
        except asyncio.TimeoutError:
            yield {"cancelled": False}


async def register_all(runtime, namespace: str) -> StreamHandlers:
    service = StreamHandlers()
    for name in ("count", "slow", "fail", "echo", "was_cancelled", "unencodable", "endless", "progress"):
        await runtime.endpoint(f"{namespace}.worker.{name}").register(getattr(service, name))
    return service
