"""NATS plane: a request goes to the instance's subject with a reply subject; the handler's
chunks stream back in order on that subject. Chunks ready in the same loop turn travel as one
BATCH message; messages above max_payload travel in parts. A per-instance ping notices a dead
worker (no responders) while streams are open. Each stream has a credit window: the consumer
sends CREDIT on the instance subject as it reads, and the handler waits when it has none left;
a worker waiting that way pings the client's reply subject and ends the stream if the client is gone."""
from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections import deque
from typing import Any, Callable, Optional

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription

from ..context import Context
from ..dispatcher import Dispatcher
from ..errors import DisconnectedError, NoInstancesError, StreamIncompleteError, StreamInterruptedError
from . import Transport
from .base import (BATCH, CANCEL, CREDIT, DATA, DEFAULT_WINDOW, END, ERROR, HANDLER_FAILED, PING, PING_FRAME,
                   REQUEST, QueuedResponseStream, StreamSink)
from .nats_wire import PENDING_LIMITS, PING_INTERVAL, NatsCodec, PingWatch, instance_subject, unsubscribe_quietly
from .stream_server import ServedStreams

RECONNECT_GRACE_S = 3.0    # after a reconnect, "no responders" may mean "not re-subscribed yet", not "gone"
log = logging.getLogger("pyimpl.runtime.nats_plane")
OUTBOX_HIGH_WATER = 4096      # queued outgoing chunks that make producers wait for the sender


class NatsStream:
    """One served stream's way back to its client: frames for its reply subject, queued in the
    server's outbox (the sender task batches them per subject)."""

    __slots__ = ("server", "reply", "outbox", "wakeup")

    def __init__(self, server: "NatsServer", reply: str):
        self.server = server
        self.reply = reply
        self.outbox = server.outbox
        self.wakeup = server.wakeup

    def data(self, chunk: Any) -> bool:
        outbox = self.outbox
        outbox.append((self.reply, [DATA, chunk]))      # the per-chunk path: _queue inlined
        if not self.wakeup.is_set():
            self.wakeup.set()
        return len(outbox) > OUTBOX_HIGH_WATER

    def _queue(self, frame: list) -> None:
        self.outbox.append((self.reply, frame))
        if not self.wakeup.is_set():
            self.wakeup.set()

    def end(self) -> None:
        self._queue([END])

    def error(self, kind: str, message: str) -> None:
        self._queue([ERROR, kind, message])

    def gone(self) -> bool:
        return False                 # no connection of its own: the client watch tells

    async def room(self) -> None:
        space = self.server.space
        space.clear()
        await space.wait()

    def watch_client(self) -> PingWatch:
        return PingWatch(self.server.nc, self.reply)


class NatsServer:
    """Subscribes to this instance's subject and feeds its frames to the ServedStreams (keyed by
    reply subject); one sender task publishes everything the streams queued, grouped per subject."""

    def __init__(self, dispatcher: Dispatcher, nc: NATS, instance_id: int):
        self.nc = nc
        self.subject = instance_subject(instance_id)
        self.codec = NatsCodec(nc)
        self.streams = ServedStreams(dispatcher, lambda reply: NatsStream(self, reply))
        self.outbox: deque[tuple[str, list]] = deque()
        self.wakeup = asyncio.Event()
        self.space = asyncio.Event()         # set whenever the sender emptied the outbox
        self._sub: Optional[Subscription] = None
        self._sender: Optional[asyncio.Task] = None

    async def start(self) -> Transport:
        self._sender = asyncio.get_running_loop().create_task(self._send_forever())
        self._sub = await self.nc.subscribe(self.subject, cb=self._on_message, **PENDING_LIMITS)
        await self.nc.flush()
        return {"type": "nats", "subject": self.subject}

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        await unsubscribe_quietly(sub)
        tasks = self.streams.stop_all(shutting_down=True)
        if tasks:                     # they queue an "incomplete" error for their clients
            await asyncio.wait(tasks, timeout=1.0)
        if self._sender is not None:
            if self.outbox:           # let already-queued chunks and end markers go out
                self.space.clear()
                try:
                    await asyncio.wait_for(self.space.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
            self._sender.cancel()

    async def _send_forever(self) -> None:
        outbox = self.outbox
        publish = self.codec.publish_bytes
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while outbox:
                groups: dict[str, list] = {}
                for _ in range(len(outbox)):
                    reply, frame = outbox.popleft()
                    frames = groups.get(reply)
                    if frames is None:
                        groups[reply] = [frame]
                    else:
                        frames.append(frame)
                for reply, frames in groups.items():
                    try:
                        await publish(reply, self._encode_group(reply, frames))
                    except Exception as exc:
                        log.warning("cannot publish to %s: %s", reply, exc)
            self.space.set()

    def _encode_group(self, reply: str, frames: list) -> bytes:
        """One message for a stream's queued frames; an unencodable chunk becomes an ERROR
        frame that ends the stream (and its handler) instead of a silent gap."""
        encode = self.codec.encode
        try:
            return encode(frames[0] if len(frames) == 1 else [BATCH, frames])
        except Exception:
            pass
        good = []
        for frame in frames:
            try:
                encode(frame)
            except Exception as exc:
                good.append([ERROR, HANDLER_FAILED, f"unencodable chunk: {type(exc).__name__}: {exc}"])
                self.streams.cancel(reply)
                break
            good.append(frame)
        return encode(good[0] if len(good) == 1 else [BATCH, good])

    async def _on_message(self, msg) -> None:
        try:
            frame = self.codec.receive(msg.reply, msg.data)
        except msgspec.DecodeError:
            return
        if frame is not None and not self.streams.on_frame(frame, msg.reply) and frame[0] == PING and msg.reply:
            await self.nc.publish(msg.reply, PING_FRAME)


class NatsClient:
    """One reply subscription per runtime; streams are keyed by their reply subject."""

    def __init__(self, nc: NATS, window: int = DEFAULT_WINDOW):
        self.nc = nc
        self.window = window
        self.codec = NatsCodec(nc)
        self.prefix = f"dynamo.reply.{uuid.uuid4().hex}"
        self._ids = itertools.count(1)
        self._streams: dict[str, tuple[StreamSink, str]] = {}
        self._sub: Optional[Subscription] = None
        self._watchdog: Optional[asyncio.Task] = None
        self._starting: Optional[asyncio.Task] = None
        self._watches: dict[str, PingWatch] = {}     # instance subject -> its ping state
        self._reconnects = nc.stats["reconnects"]    # a change: messages may have been lost (see _watch_instances)
        self._reconnected_at = float("-inf")         # loop time this client last noticed a reconnect

    async def _ensure_started(self) -> None:
        if self._sub is None:
            if self._starting is None:      # concurrent first requests subscribe once
                self._starting = asyncio.get_running_loop().create_task(self._subscribe())
            await asyncio.shield(self._starting)

    async def _subscribe(self) -> None:
        self._sub = await self.nc.subscribe(f"{self.prefix}.*", cb=self._on_reply, **PENDING_LIMITS)
        self._watchdog = asyncio.get_running_loop().create_task(self._watch_instances())

    async def open(self, transport: Transport, instance_id: int, path: str, request: Any,
                   context: Context, annotated: bool = True) -> QueuedResponseStream:
        await self._ensure_started()
        subject = transport["subject"]
        reply = f"{self.prefix}.{next(self._ids)}"
        streams = self._streams
        codec = self.codec

        def cancel_remote() -> None:
            streams.pop(reply, None)
            codec.forget(reply)
            asyncio.get_running_loop().create_task(self._send_control(subject, [CANCEL, reply]))

        def grant(n: int) -> None:
            if reply in streams:
                asyncio.get_running_loop().create_task(self._send_control(subject, [CREDIT, reply, n]))

        sink = StreamSink(self.window, grant)
        streams[reply] = (sink, subject)
        try:
            await codec.publish(subject, [REQUEST, path, context.id(), request, self.window], reply)
        except BaseException:
            streams.pop(reply, None)
            raise
        return QueuedResponseStream(sink, context, cancel_remote, annotated)

    async def _send_control(self, subject: str, frame: list) -> None:
        """CANCEL or CREDIT for a stream, sent to its instance."""
        try:
            await self.codec.publish(subject, frame)
        except Exception as exc:
            log.debug("control frame %s for %s failed: %s", frame[0], frame[1], exc)

    async def _on_reply(self, msg) -> None:
        if msg.reply:        # a worker whose stream waits for credit checks that this client still exists
            await self.nc.publish(msg.reply, PING_FRAME)
            return
        reply = msg.subject
        entry = self._streams.get(reply)
        if entry is None:
            return
        stream = entry[0]
        if msg.headers and msg.headers.get("Status") == "503":
            del self._streams[reply]
            if self._just_reconnected():    # the server came back before the instance re-subscribed: not gone
                stream.finish(StreamInterruptedError(f"no responders on {entry[1]} just after the NATS server "
                                                     f"came back (the instance may not have reconnected yet)"))
            else:
                stream.finish(NoInstancesError(f"no responders on {entry[1]} (instance gone)"))
            return
        frame = self.codec.receive(reply, msg.data)
        if frame is None:
            return
        for frame in (frame[1] if frame[0] == BATCH else (frame,)):
            if stream.take(frame, 1):
                self._streams.pop(reply, None)

    async def _watch_instances(self) -> None:
        """While streams are open, ping each instance they wait on; fail streams of dead ones."""
        watches = self._watches
        while True:
            await asyncio.sleep(PING_INTERVAL)
            if self.nc.stats["reconnects"] != self._reconnects:
                self._reconnects = self.nc.stats["reconnects"]
                self._reconnected_at = asyncio.get_running_loop().time()
                self.fail_all("the connection to the NATS server was lost and re-established: messages of this "
                              "stream may be lost")
                continue
            subjects = {subject for _, subject in self._streams.values()}
            for subject in [s for s in watches if s not in subjects]:   # no stream waits on it now
                del watches[subject]
            if not subjects:
                continue
            pinged = [watches.setdefault(s, PingWatch(self.nc, s)) for s in subjects]
            results = await asyncio.gather(*(watch.alive() for watch in pinged))
            for watch, alive in zip(pinged, results):
                if not alive and not self._just_reconnected():
                    self.fail_instance(watch.subject, f"instance on {watch.subject} stopped responding")

    def fail_instance(self, subject: str, why: str) -> None:
        for reply, (stream, stream_subject) in list(self._streams.items()):
            if stream_subject == subject:
                del self._streams[reply]
                self.codec.forget(reply)
                stream.finish(StreamIncompleteError(why))

    def _just_reconnected(self) -> bool:
        """Within RECONNECT_GRACE_S of a reconnect (or one the watchdog has not handled yet)."""
        return (self.nc.stats["reconnects"] != self._reconnects
                or asyncio.get_running_loop().time() - self._reconnected_at < RECONNECT_GRACE_S)

    def fail_all(self, why: str) -> None:
        """Fail every open stream (StreamInterruptedError) and cancel it on its instance: after a reconnect a
        request, a chunk or the end may have been lost, and a stream waiting for it would wait forever."""
        loop = asyncio.get_running_loop()
        for reply, (stream, subject) in list(self._streams.items()):
            del self._streams[reply]
            self.codec.forget(reply)
            stream.finish(StreamInterruptedError(why))
            loop.create_task(self._send_control(subject, [CANCEL, reply]))

    def watch_lost(self, transport: Transport, callback: Callable[[], None]) -> None:
        """Nothing to watch without traffic: a request to a dead instance gets 'no responders' at once."""

    async def close(self) -> None:
        for sink, _ in self._streams.values():
            sink.finish(DisconnectedError("the runtime shut down while the stream was open"))
        self._streams.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
        await unsubscribe_quietly(self._sub)
