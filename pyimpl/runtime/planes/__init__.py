"""Request planes: how a request reaches an instance and its response stream comes back. The
runtime sees every plane (inproc, tcp, nats) through these three protocols."""
from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Protocol, TypedDict

from ..context import Context


class Transport(TypedDict, total=False):
    """How an instance is reached, as its discovery record advertises it."""

    type: str          # "inproc" | "tcp" | "nats": which PlaneClient opens its streams
    address: str       # tcp: "host:port"
    subject: str       # nats: the instance's subject


class ResponseStream(Protocol):
    """What `client.generate` returns: iterate it for Annotated items (or the handler's raw items
    when opened with annotated=False); closing it, or stopping its context, cancels the handler."""

    def context(self) -> Context: ...

    def __aiter__(self) -> AsyncIterator[Any]: ...

    async def __anext__(self) -> Any: ...

    async def aclose(self) -> None: ...

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call `callback` once if the stream ends because its instance is gone (no responders, connection lost,
        the instance shutting down), so the client takes that instance out of rotation at once."""


class ResponseStreamBase:
    """What every plane's response stream shares: its context, `async for` and `async with`
    (leaving the block closes the stream, so the handler is cancelled if still running)."""

    __slots__ = ("_context",)

    def context(self) -> Context:
        return self._context

    def __aiter__(self) -> "ResponseStreamBase":
        return self

    async def aclose(self) -> None:
        raise NotImplementedError

    def on_lost(self, callback: Callable[[], None]) -> None:
        """See ResponseStream.on_lost; a plane that raises at open when the instance is gone needs nothing here."""

    async def __aenter__(self) -> "ResponseStreamBase":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class PlaneServer(Protocol):
    """Serves this runtime's dispatcher on one plane."""

    async def start(self) -> Transport:
        """Start serving; returns the transport this instance advertises in discovery."""

    async def close(self) -> None: ...


class PlaneClient(Protocol):
    """Opens response streams to instances that advertise this plane's transport; one per runtime."""

    async def open(self, transport: Transport, instance_id: int, path: str, request: Any, context: Context,
                   annotated: bool = True) -> ResponseStream: ...

    def watch_lost(self, transport: Transport, callback: Callable[[], None]) -> None:
        """Call `callback` once when the plane sees the instance at `transport` go away with no request running
        (a tcp connection closed by the peer); planes that cannot see it do nothing."""

    async def close(self) -> None: ...
