"""NATS event plane: core NATS subjects (no JetStream) on the runtime's one connection, under the
"dynamo.events." prefix so event subjects never meet the request plane's."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Awaitable, Callable

from ..planes.nats_wire import PENDING_LIMITS, unsubscribe_quietly
from .base import EventCallback, Unsubscribe, check_subject, deliver

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS
    from nats.aio.msg import Msg

PREFIX = "dynamo.events."


class NatsEventPlane:
    """publish = nc.publish; subscribe = one NATS subscription per call (NATS does the pattern matching;
    its '*' and '>' are the plane's). Messages larger than the server's max_payload are refused."""

    def __init__(self, connection: Callable[[], Awaitable["NATS"]]) -> None:
        self._connection = connection
        self._subs: set = set()
        self._closed = False

    async def publish(self, subject: str, data: bytes) -> None:
        check_subject(subject)
        if self._closed:
            raise RuntimeError("event plane is closed")
        nc = await self._connection()
        await nc.publish(PREFIX + subject, bytes(data))

    async def subscribe(self, subject: str, callback: EventCallback) -> Unsubscribe:
        check_subject(subject, pattern=True)
        if self._closed:
            raise RuntimeError("event plane is closed")
        nc = await self._connection()
        cut = len(PREFIX)

        async def on_message(msg: "Msg") -> None:
            deliver(callback, msg.subject[cut:], msg.data)

        sub = await nc.subscribe(PREFIX + subject, cb=on_message, **PENDING_LIMITS)
        await nc.flush()            # the server knows the interest before subscribe returns
        self._subs.add(sub)

        async def unsubscribe() -> None:
            if sub in self._subs:
                self._subs.discard(sub)
                await unsubscribe_quietly(sub)
        return unsubscribe

    async def close(self) -> None:
        self._closed = True
        subs, self._subs = list(self._subs), set()
        for sub in subs:
            await unsubscribe_quietly(sub)
        await asyncio.sleep(0)
