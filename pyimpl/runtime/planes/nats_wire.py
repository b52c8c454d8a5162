"""What both ends of the nats plane share: instance subjects, the message codec (msgpack, split
into PART messages above the server's max_payload) and the ping that tells whether a peer is there."""
from __future__ import annotations

from typing import Any, Optional

import msgspec
import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription

from .base import PART, PING_FRAME

PART_OVERHEAD = 64
PENDING_LIMITS = dict(pending_msgs_limit=10_000_000, pending_bytes_limit=1024 * 1024 * 1024)
PING_INTERVAL = 0.5
PING_TIMEOUT = 1.0
PING_FAILURES = 2


def instance_subject(instance_id: int) -> str:
    return f"dynamo.instance.{instance_id:x}"


class NatsCodec:
    """msgpack encode/decode with splitting into PART messages above the server's max_payload."""

    def __init__(self, nc: NATS):
        self.nc = nc
        self.encode = msgspec.msgpack.Encoder().encode
        self.decode = msgspec.msgpack.Decoder().decode
        self._parts: dict[str, list[bytes]] = {}

    async def publish(self, subject: str, message: Any, reply: str = "") -> None:
        await self.publish_bytes(subject, self.encode(message), reply)

    async def publish_bytes(self, subject: str, data: bytes, reply: str = "") -> None:
        limit = self.nc.max_payload - PART_OVERHEAD
        if len(data) <= limit:
            await self.nc.publish(subject, data, reply)
            return
        view = memoryview(data)
        for start in range(0, len(data), limit):
            more = start + limit < len(data)
            await self.nc.publish(subject, self.encode([PART, more, view[start:start + limit]]), reply)

    def receive(self, key: str, data: bytes) -> Optional[list]:
        """Decode one message; None while a multi-part message is incomplete."""
        frame = self.decode(data)
        if frame[0] != PART:
            return frame
        parts = self._parts.setdefault(key, [])
        parts.append(frame[2])
        if frame[1]:
            return None
        del self._parts[key]
        return self.decode(b"".join(parts))

    def forget(self, key: str) -> None:
        self._parts.pop(key, None)


class PingWatch:
    """Pings one subject (an instance's, or a client's reply subject) when asked, every PING_INTERVAL s:
    gone at once on no responders, or after PING_FAILURES unanswered pings in a row."""

    interval = PING_INTERVAL

    def __init__(self, nc: NATS, subject: str):
        self.nc = nc
        self.subject = subject
        self.failures = 0

    async def alive(self) -> bool:
        try:
            await self.nc.request(self.subject, PING_FRAME, timeout=PING_TIMEOUT)
        except nats.errors.NoRespondersError:
            return False
        except Exception:           # timeout or reconnecting: give it PING_FAILURES chances
            self.failures += 1
            return self.failures < PING_FAILURES
        self.failures = 0
        return True


async def unsubscribe_quietly(sub: Optional[Subscription]) -> None:
    """End a subscription at shutdown; a connection already closed or reconnecting is no error."""
    if sub is not None:
        try:
            await sub.unsubscribe()
        except Exception:
            pass
