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
from typing import Any, Optional

import msgspec
import nats.errors
from nats.aio.client import Client as NATS

from ..context import Context
from ..dispatcher import Dispatcher
from ..errors import DisconnectedError, NoInstancesError, StreamIncompleteError
from .base import (BATCH, CANCEL, CREDIT, DATA, DEFAULT_WINDOW, END, ERROR, PART, PING, REQUEST, Credits,
                   QueuedResponseStream, StreamSink, error_from_wire, error_to_wire)

log = logging.getLogger("pyimpl.runtime.nats_plane")
PART_OVERHEAD = 64
PENDING_LIMITS = dict(pending_msgs_limit=10_000_000, pending_bytes_limit=1024 * 1024 * 1024)
PING_INTERVAL = 0.5
PING_TIMEOUT = 1.0
PING_FAILURES = 2
OUTBOX_HIGH_WATER = 4096      # queued outgoing chunks that make producers wait for the sender


def instance_subject(instance_id: int) -> str:
    return f"dynamo.instance.{instance_id:x}"


class _Codec:
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


class NatsServer:
    """Subscribes to this instance's subject and serves requests, one task per stream; one sender
    task publishes everything the streams queued, grouped per reply subject."""

    def __init__(self, dispatcher: Dispatcher, nc: NATS, instance_id: int):
        self.dispatcher = dispatcher
        self.nc = nc
        self.subject = instance_subject(instance_id)
        self.codec = _Codec(nc)
        self._streams: dict[str, tuple[asyncio.Task, Context, Credits]] = {}
        self._sub = None
        self._outbox: deque = deque()
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._sender: Optional[asyncio.Task] = None
        self._closing = False

    async def start(self) -> dict:
        self._sender = asyncio.get_running_loop().create_task(self._send_forever())
        self._sub = await self.nc.subscribe(self.subject, cb=self._on_message, **PENDING_LIMITS)
        await self.nc.flush()
        return {"type": "nats", "subject": self.subject}

    async def close(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                pass
            self._sub = None
        tasks = []
        for task, context, _ in list(self._streams.values()):
            context.stop_generating()
            task.cancel()
            tasks.append(task)
        self._closing = True
        if tasks:                     # they queue an "incomplete" error for their clients
            await asyncio.wait(tasks, timeout=1.0)
        if self._sender is not None:
            if self._outbox:          # let already-queued chunks and end markers go out
                self._space.clear()
                try:
                    await asyncio.wait_for(self._space.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
            self._sender.cancel()

    def _emit(self, reply: str, frame: list) -> None:
        self._outbox.append((reply, frame))
        wakeup = self._wakeup
        if not wakeup.is_set():
            wakeup.set()

    async def _send_forever(self) -> None:
        outbox = self._outbox
        publish = self.codec.publish_bytes
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
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
            self._space.set()

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
                good.append([ERROR, "handler", f"unencodable chunk: {type(exc).__name__}: {exc}"])
                entry = self._streams.pop(reply, None)
                if entry is not None:
                    entry[0].cancel()
                break
            good.append(frame)
        return encode(good[0] if len(good) == 1 else [BATCH, good])

    async def _on_message(self, msg) -> None:
        try:
            frame = self.codec.receive(msg.reply, msg.data)
        except msgspec.DecodeError:
            return
        if frame is None:
            return
        kind = frame[0]
        if kind == CREDIT:
            entry = self._streams.get(frame[1])
            if entry is not None:
                entry[2].grant(frame[2])
        elif kind == REQUEST:
            path, ctx_id, payload = frame[1:4]
            context = Context(ctx_id)
            credits = Credits(frame[4] if len(frame) > 4 else 0)
            task = asyncio.get_running_loop().create_task(
                self._run_stream(msg.reply, path, payload, context, credits))
            self._streams[msg.reply] = (task, context, credits)
        elif kind == CANCEL:
            entry = self._streams.pop(frame[1], None)
            if entry is not None:
                entry[1].stop_generating()
                entry[0].cancel()
        elif kind == PING and msg.reply:
            await self.nc.publish(msg.reply, b"\x91\x05")

    async def _run_stream(self, reply: str, path: str, payload: Any, context: Context,
                          credits: Credits) -> None:
        dispatcher = self.dispatcher
        emit = self._emit
        outbox = self._outbox
        try:
            served = dispatcher.lookup(path)
        except Exception as exc:
            self._streams.pop(reply, None)
            emit(reply, [ERROR, *error_to_wire(exc)])
            return
        started = dispatcher.begin(served)
        generator = None
        try:
            generator = served.open(payload, context)
            async for chunk in generator:
                emit(reply, [DATA, chunk])
                credits.left -= 1
                if credits.left <= 0 and not await self._credit_or_client_gone(reply, credits):
                    context.stop_generating()
                    try:
                        await generator.aclose()
                    except Exception:
                        pass
                    emit(reply, [ERROR, "incomplete", "the worker ended the stream: its client stopped answering"])
                    return
                if len(outbox) > OUTBOX_HIGH_WATER:
                    self._space.clear()
                    await self._space.wait()
            emit(reply, [END])
        except asyncio.CancelledError:
            context.stop_generating()
            if self._closing:
                emit(reply, [ERROR, "incomplete", "the instance shut down before the stream completed"])
            if generator is not None:
                try:
                    await generator.aclose()
                except BaseException:
                    pass
            raise
        except Exception as exc:
            emit(reply, [ERROR, *error_to_wire(exc)])
        finally:
            self._streams.pop(reply, None)
            dispatcher.end(served, started)


    async def _credit_or_client_gone(self, reply: str, credits: Credits) -> bool:
        """Wait for the consumer's credit; True once granted, False if its client stopped answering pings."""
        failures = 0
        while credits.left <= 0:
            try:
                await asyncio.wait_for(credits.wait(), PING_INTERVAL)
                continue
            except asyncio.TimeoutError:
                pass
            try:
                await self.nc.request(reply, b"\x91\x05", timeout=PING_TIMEOUT)
                failures = 0
            except nats.errors.NoRespondersError:
                return False
            except Exception:       # timeout or reconnecting: give it PING_FAILURES chances
                failures += 1
                if failures >= PING_FAILURES:
                    return False
        return True


class NatsClient:
    """One reply subscription per runtime; streams are keyed by their reply subject."""

    def __init__(self, nc: NATS, window: int = DEFAULT_WINDOW):
        self.nc = nc
        self.window = window
        self.codec = _Codec(nc)
        self.prefix = f"dynamo.reply.{uuid.uuid4().hex}"
        self._ids = itertools.count(1)
        self._streams: dict[str, tuple[StreamSink, str]] = {}
        self._sub = None
        self._watchdog: Optional[asyncio.Task] = None
        self._starting: Optional[asyncio.Task] = None
        self._ping_failures: dict[str, int] = {}

    async def _ensure_started(self) -> None:
        if self._sub is None:
            if self._starting is None:      # concurrent first requests subscribe once
                self._starting = asyncio.get_running_loop().create_task(self._subscribe())
            await asyncio.shield(self._starting)

    async def _subscribe(self) -> None:
        self._sub = await self.nc.subscribe(f"{self.prefix}.*", cb=self._on_reply, **PENDING_LIMITS)
        self._watchdog = asyncio.get_running_loop().create_task(self._watch_instances())

    async def open(self, transport: dict, instance_id: int, path: str, request: Any,
                   context: Context) -> QueuedResponseStream:
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
        return QueuedResponseStream(sink, context, cancel_remote)

    async def _send_control(self, subject: str, frame: list) -> None:
        """CANCEL or CREDIT for a stream, sent to its instance."""
        try:
            await self.codec.publish(subject, frame)
        except Exception as exc:
            log.debug("control frame %s for %s failed: %s", frame[0], frame[1], exc)

    async def _on_reply(self, msg) -> None:
        if msg.reply:        # a worker whose stream waits for credit checks that this client still exists
            await self.nc.publish(msg.reply, b"\x91\x05")
            return
        reply = msg.subject
        entry = self._streams.get(reply)
        if entry is None:
            return
        stream = entry[0]
        if msg.headers and msg.headers.get("Status") == "503":
            del self._streams[reply]
            stream.finish(NoInstancesError(f"no responders on {entry[1]} (instance gone)"))
            return
        frame = self.codec.receive(reply, msg.data)
        if frame is None:
            return
        for frame in (frame[1] if frame[0] == BATCH else (frame,)):
            kind = frame[0]
            if kind == DATA:
                stream.push(frame[1])
            elif kind == END:
                self._streams.pop(reply, None)
                stream.finish()
            elif kind == ERROR:
                self._streams.pop(reply, None)
                stream.finish(error_from_wire(frame[1], frame[2]))

    async def _watch_instances(self) -> None:
        """While streams are open, ping each instance they wait on; fail streams of dead ones."""
        while True:
            await asyncio.sleep(PING_INTERVAL)
            subjects = {subject for _, subject in self._streams.values()}
            if not subjects:
                continue
            results = await asyncio.gather(*(self._ping(s) for s in subjects))
            for subject, alive in zip(subjects, results):
                if not alive:
                    self.fail_instance(subject, f"instance on {subject} stopped responding")

    async def _ping(self, subject: str) -> bool:
        try:
            await self.nc.request(subject, b"\x91\x05", timeout=PING_TIMEOUT)
            self._ping_failures.pop(subject, None)
            return True
        except nats.errors.NoRespondersError:
            return False
        except Exception:   # timeout or reconnecting: give it PING_FAILURES chances
            failures = self._ping_failures.get(subject, 0) + 1
            self._ping_failures[subject] = failures
            return failures < PING_FAILURES

    def fail_instance(self, subject: str, why: str) -> None:
        for reply, (stream, stream_subject) in list(self._streams.items()):
            if stream_subject == subject:
                del self._streams[reply]
                self.codec.forget(reply)
                stream.finish(StreamIncompleteError(why))

    async def close(self) -> None:
        for sink, _ in self._streams.values():
            sink.finish(DisconnectedError("the runtime shut down while the stream was open"))
        self._streams.clear()
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                pass
