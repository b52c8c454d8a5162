"""ZeroMQ event plane, for processes on one machine (or a LAN) without NATS: each publishing runtime binds
one PUB socket on DYN_TCP_HOST (any free port) and registers its address in discovery under
`v1/event_plane/zmq/{id}` (on the runtime's lease, so a dead publisher's key expires); each subscribing
runtime has one SUB socket that connects to every address registered there, as they come and go.

As core NATS, delivery is best effort: what is published before a subscriber has connected (discovery
watch latency, ~0.1 s with the file backend) is not seen by it, and a subscriber over the PUB socket's
high-water mark loses messages. A late subscriber recovers state by asking publishers for a snapshot."""
from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING, Optional

import zmq

from .base import EventCallback, Unsubscribe, check_subject, deliver, matches, pattern_prefix

if TYPE_CHECKING:
    from ..runtime import RuntimeDiscovery

log = logging.getLogger("pyimpl.runtime.events")
DISCOVERY_PREFIX = "v1/event_plane/zmq/"
HIGH_WATER_MARK = 1_000_000        # messages queued per peer before ZeroMQ drops


class ZmqEventPlane:
    """Frames are [subject, data]; ZeroMQ's subscription prefix filter narrows, `matches` decides.

    The sockets are plain (non-asyncio) ones used from the loop thread only: a PUB send never blocks (past the
    high-water mark ZeroMQ drops), and the SUB socket's descriptor is watched with the loop's add_reader and
    drained until empty on each wake (it signals edges), which is ~10x the message rate of zmq.asyncio."""

    def __init__(self, discovery: "RuntimeDiscovery", host: str) -> None:
        self._discovery = discovery
        self._host = host
        self._ctx: Optional[zmq.Context] = None
        self._pub: Optional[zmq.Socket] = None
        self._pub_key: Optional[str] = None
        self._pub_lock = asyncio.Lock()
        self._sub: Optional[zmq.Socket] = None
        self._reader_fd: Optional[int] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._sub_lock = asyncio.Lock()
        self._subscriptions: list[tuple[str, EventCallback]] = []
        self._peers: dict[str, str] = {}           # discovery key -> connected address
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        self.dropped = 0                            # messages a full subscriber queue refused

    def _context(self) -> zmq.Context:
        if self._ctx is None:
            self._ctx = zmq.Context()
        return self._ctx

    # --- publishing ----------------------------------------------------------------------
    async def publish(self, subject: str, data: bytes) -> None:
        check_subject(subject)
        if self._closed:
            raise RuntimeError("event plane is closed")
        if self._pub is None:
            await self._bind()
        try:
            self._pub.send_multipart((subject.encode(), bytes(data)), flags=zmq.NOBLOCK, copy=len(data) < 65536)
        except zmq.Again:       # a subscriber past the high-water mark: dropped, as NATS drops for slow consumers
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 10_000 == 0:
                log.warning("%d events dropped (last on %s): a subscriber is %d messages behind",
                            self.dropped, subject, HIGH_WATER_MARK)

    async def _bind(self) -> None:
        async with self._pub_lock:
            if self._pub is not None:
                return
            sock = self._context().socket(zmq.PUB)
            sock.setsockopt(zmq.SNDHWM, HIGH_WATER_MARK)
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind(f"tcp://{self._host}:0")
            address = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            key = f"{DISCOVERY_PREFIX}{secrets.token_hex(8)}"
            try:
                await self._discovery.put(key, {"address": address})
            except BaseException:
                sock.close(0)
                raise
            self._pub, self._pub_key = sock, key

    # --- subscribing ---------------------------------------------------------------------
    async def subscribe(self, subject: str, callback: EventCallback) -> Unsubscribe:
        check_subject(subject, pattern=True)
        if self._closed:
            raise RuntimeError("event plane is closed")
        await self._open_sub()
        entry = (subject, callback)
        self._subscriptions.append(entry)
        self._sub.setsockopt(zmq.SUBSCRIBE, pattern_prefix(subject).encode())
        self._loop.call_soon(self._drain)       # any socket call may consume the descriptor's edge

        async def unsubscribe() -> None:
            if entry in self._subscriptions:
                self._subscriptions.remove(entry)
                if self._sub is not None:
                    self._sub.setsockopt(zmq.UNSUBSCRIBE, pattern_prefix(subject).encode())
        return unsubscribe

    async def _open_sub(self) -> None:
        async with self._sub_lock:
            if self._sub is not None:
                return
            sock = self._context().socket(zmq.SUB)
            sock.setsockopt(zmq.RCVHWM, HIGH_WATER_MARK)
            sock.setsockopt(zmq.LINGER, 0)
            self._sub = sock
            loop = self._loop = asyncio.get_running_loop()
            self._reader_fd = sock.getsockopt(zmq.FD)
            loop.add_reader(self._reader_fd, self._drain)
            peers_known = loop.create_future()
            self._tasks = [loop.create_task(self._watch_publishers(peers_known))]
            await peers_known       # the publishers registered now are connected before subscribe returns

    async def _watch_publishers(self, peers_known: asyncio.Future) -> None:
        try:
            for key, value in (await self._discovery.list(DISCOVERY_PREFIX)).items():
                self._connect(key, value)
        finally:
            if not peers_known.done():
                peers_known.set_result(None)
        async for event in self._discovery.watch(DISCOVERY_PREFIX):
            if event.kind == "put" and event.value is not None:
                self._connect(event.key, event.value)
            elif event.kind == "delete":
                address = self._peers.pop(event.key, None)
                if address is not None:
                    try:
                        self._sub.disconnect(address)
                    except zmq.ZMQError:
                        pass

    def _connect(self, key: str, value: dict) -> None:
        address = value.get("address")
        if not isinstance(address, str) or self._peers.get(key) == address:
            return
        try:
            self._sub.connect(address)
            self._peers[key] = address
        except zmq.ZMQError as exc:
            log.warning("cannot connect to event publisher %s: %s", address, exc)
        self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        """Deliver everything the SUB socket holds (its descriptor only signals that something arrived)."""
        sock = self._sub
        if sock is None or sock.closed:
            return
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return
            if len(frames) != 2:
                continue
            try:
                subject = frames[0].decode()
            except UnicodeDecodeError:
                continue
            for pattern, callback in list(self._subscriptions):
                if matches(pattern, subject):
                    deliver(callback, subject, frames[1])

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except BaseException:
                pass
        self._subscriptions.clear()
        if self._reader_fd is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._reader_fd)
            self._reader_fd = None
        if self._pub_key is not None:
            try:
                await self._discovery.delete(self._pub_key)
            except Exception:
                pass
        for sock in (self._pub, self._sub):
            if sock is not None:
                sock.close(0)
        if self._ctx is not None:
            self._ctx.term()
