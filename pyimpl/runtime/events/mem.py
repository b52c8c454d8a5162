"""In-process event plane: subscribers of the same scope in this process (as the mem discovery: the
default scope "" for every runtime naming none; the C ABI gives each runtime its own)."""
from __future__ import annotations

import asyncio
import weakref

from .base import EventCallback, Unsubscribe, check_subject, deliver, matches


class _Subscription:
    __slots__ = ("pattern", "callback", "loop", "active")

    def __init__(self, pattern: str, callback: EventCallback, loop: asyncio.AbstractEventLoop):
        self.pattern, self.callback, self.loop, self.active = pattern, callback, loop, True

    def deliver(self, subject: str, data: bytes) -> None:
        if self.active:             # nothing reaches a callback after its unsubscribe
            deliver(self.callback, subject, data)


class _Bus:
    """The subscriptions of one scope."""

    def __init__(self) -> None:
        self.subscriptions: list[_Subscription] = []


_BUSES: "weakref.WeakValueDictionary[str, _Bus]" = weakref.WeakValueDictionary()


def _bus(scope: str) -> _Bus:
    bus = _BUSES.get(scope)
    if bus is None:
        bus = _BUSES[scope] = _Bus()
    return bus


class MemEventPlane:
    """Messages go to every matching subscription of the scope, scheduled on the subscriber's loop
    (never run inside publish, so a publisher is never re-entered; order per publisher is kept)."""

    def __init__(self, scope: str = "") -> None:
        self._bus = _bus(scope)
        self._mine: list[_Subscription] = []
        self._closed = False

    async def publish(self, subject: str, data: bytes) -> None:
        check_subject(subject)
        if self._closed:
            raise RuntimeError("event plane is closed")
        payload = bytes(data)
        running = asyncio.get_running_loop()
        for sub in list(self._bus.subscriptions):
            if matches(sub.pattern, subject):
                if sub.loop is running:
                    sub.loop.call_soon(sub.deliver, subject, payload)
                elif not sub.loop.is_closed():
                    sub.loop.call_soon_threadsafe(sub.deliver, subject, payload)

    async def subscribe(self, subject: str, callback: EventCallback) -> Unsubscribe:
        check_subject(subject, pattern=True)
        if self._closed:
            raise RuntimeError("event plane is closed")
        sub = _Subscription(subject, callback, asyncio.get_running_loop())
        self._bus.subscriptions.append(sub)
        self._mine.append(sub)

        async def unsubscribe() -> None:
            self._drop(sub)
        return unsubscribe

    def _drop(self, sub: _Subscription) -> None:
        sub.active = False
        if sub in self._bus.subscriptions:
            self._bus.subscriptions.remove(sub)
        if sub in self._mine:
            self._mine.remove(sub)

    async def close(self) -> None:
        self._closed = True
        for sub in list(self._mine):
            self._drop(sub)
