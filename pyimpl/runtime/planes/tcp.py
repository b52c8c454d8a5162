"""TCP plane: length-prefixed msgpack frames over asyncio streams; one connection per
(client runtime, instance address) multiplexes many streams; writes are coalesced per loop turn.
Each stream has a credit window (the handler waits when its consumer falls a window behind). Either
end pings a peer gone quiet while it waits on it ([PING, 0], answered [PING, -1]): a client fails
its streams, a worker ends a handler held for credit, when the peer stays silent."""
from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, Optional

import msgspec

from ..context import Context
from ..dispatcher import Dispatcher
from ..errors import DisconnectedError, StreamIncompleteError
from .base import (CANCEL, CREDIT, DATA, DEFAULT_WINDOW, END, ERROR, PING, REQUEST, Credits,
                   QueuedResponseStream, StreamSink, error_from_wire, error_to_wire, incomplete)

log = logging.getLogger("pyimpl.runtime.tcp")
HEADER = 4                      # little-endian uint32 body length
FLUSH_NOW_BYTES = 256 * 1024    # buffered bytes that force an immediate write
HIGH_WATER = 4 * 1024 * 1024    # transport backlog that makes producers wait
READ_SIZE = 1024 * 1024
KEEPALIVE_TIMEOUT = 5.0         # s of silence from a worker with open streams before they fail


class FramedConnection:
    """Both ends: encodes frames into one buffer flushed once per loop iteration, and parses
    incoming frames from a byte buffer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.loop = asyncio.get_running_loop()
        self._out = bytearray()
        self._flush_scheduled = False
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder()
        self.closed = False
        self.received = 0           # frame batches read so far; keepalives watch it move

    def send(self, message: Any) -> None:
        out = self._out
        start = len(out)
        out += b"\0\0\0\0"
        try:
            self._encoder.encode_into(message, out, start + HEADER)
        except BaseException:
            del out[start:]          # never leave a half-written frame behind
            raise
        out[start:start + HEADER] = (len(out) - start - HEADER).to_bytes(4, "little")
        if len(out) >= FLUSH_NOW_BYTES:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._out and not self.closed:
            self.writer.write(self._out)
            self._out = bytearray()

    async def backpressure(self) -> None:
        """Wait while the socket is far behind (slow reader)."""
        if self.writer.transport.get_write_buffer_size() > HIGH_WATER:
            await self.writer.drain()

    async def frames(self):
        """Yield batches of decoded frames until EOF."""
        buf = bytearray()
        decode = self._decoder.decode
        reader = self.reader
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                return
            buf += data
            batch = []
            pos = 0
            size = len(buf)
            with memoryview(buf) as view:
                while size - pos >= HEADER:
                    length = int.from_bytes(view[pos:pos + HEADER], "little")
                    end = pos + HEADER + length
                    if end > size:
                        break
                    batch.append(decode(view[pos + HEADER:end]))
                    pos = end
            if pos:
                del buf[:pos]
            if batch:
                self.received += 1
                yield batch

    def close(self) -> None:
        if not self.closed:
            self.flush()
            self.closed = True
            self.writer.close()


class TcpServer:
    """Accepts connections and serves REQUEST frames from the dispatcher, one task per stream."""

    def __init__(self, dispatcher: Dispatcher, host: str, keepalive: float = KEEPALIVE_TIMEOUT):
        self.dispatcher = dispatcher
        self.host = host
        self.keepalive = keepalive
        self.server: Optional[asyncio.base_events.Server] = None
        self.address = ""
        self._connections: set[FramedConnection] = set()
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> dict:
        self.server = await asyncio.start_server(self._serve_connection, self.host, 0, limit=READ_SIZE)
        port = self.server.sockets[0].getsockname()[1]
        self.address = f"{self.host}:{port}"
        return {"type": "tcp", "address": self.address}

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self._connections):
            conn.close()
        self._connections.clear()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)

    async def _serve_connection(self, reader, writer) -> None:
        conn = FramedConnection(reader, writer)
        self._connections.add(conn)
        connection_task = asyncio.current_task()
        self._tasks.add(connection_task)
        streams: dict[int, tuple[asyncio.Task, Context, Credits]] = {}
        try:
            async for batch in conn.frames():
                for frame in batch:
                    kind = frame[0]
                    if kind == CREDIT:
                        entry = streams.get(frame[1])
                        if entry is not None:
                            entry[2].grant(frame[2])
                    elif kind == REQUEST:
                        sid, path, ctx_id, payload = frame[1:5]
                        context = Context(ctx_id)
                        credits = Credits(frame[5] if len(frame) > 5 else 0)
                        stream_task = conn.loop.create_task(
                            self._run_stream(conn, streams, sid, path, payload, context, credits))
                        streams[sid] = (stream_task, context, credits)
                    elif kind == CANCEL:
                        entry = streams.pop(frame[1], None)
                        if entry is not None:
                            entry[1].stop_generating()
                            entry[0].cancel()
                    elif kind == PING and frame[1] == 0:
                        conn.send([PING, -1])
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass   # a connection handler ends quietly (3.11 streams log cancelled handlers)
        finally:
            for stream_task, context, _ in streams.values():    # the client is gone: stop its handlers
                context.stop_generating()
                stream_task.cancel()
            self._tasks.discard(connection_task)
            self._connections.discard(conn)
            conn.closed = True
            writer.close()

    async def _run_stream(self, conn: FramedConnection, streams: dict, sid: int, path: str,
                          payload: Any, context: Context, credits: Credits) -> None:
        dispatcher = self.dispatcher
        try:
            served = dispatcher.lookup(path)
        except Exception as exc:
            streams.pop(sid, None)
            conn.send([ERROR, sid, *error_to_wire(exc)])
            return
        started = dispatcher.begin(served)
        send = conn.send
        generator = None
        try:
            generator = served.open(payload, context)
            async for chunk in generator:
                send([DATA, sid, chunk])
                if conn.closed:
                    return
                credits.left -= 1
                if credits.left <= 0 and not await self._credit_or_client_gone(conn, credits):
                    context.stop_generating()
                    await _close_quietly(generator)
                    if not conn.closed:
                        send([ERROR, sid, "incomplete", "the worker ended the stream: its client stopped answering"])
                    return
                if len(conn._out) >= FLUSH_NOW_BYTES or conn.writer.transport.get_write_buffer_size() > HIGH_WATER:
                    await conn.backpressure()
            send([END, sid])
        except asyncio.CancelledError:
            context.stop_generating()
            if generator is not None:
                await _close_quietly(generator)
            raise
        except Exception as exc:
            if not conn.closed:
                try:
                    send([ERROR, sid, *error_to_wire(exc)])
                except Exception:          # e.g. an unencodable chunk: still report something
                    send([ERROR, sid, "handler", f"{type(exc).__name__}: {exc}"])
        finally:
            streams.pop(sid, None)
            dispatcher.end(served, started)

    async def _credit_or_client_gone(self, conn: FramedConnection, credits: Credits) -> bool:
        """Wait for the consumer's credit; True once granted, False if the client sent nothing
        (pings unanswered) for `keepalive` s (e.g. a stopped client process)."""
        interval = self.keepalive / 4
        seen, silent = conn.received, 0.0
        while credits.left <= 0:
            try:
                await asyncio.wait_for(credits.wait(), interval)
                continue
            except asyncio.TimeoutError:
                pass
            if conn.closed:
                return False
            if conn.received != seen:
                seen, silent = conn.received, 0.0
            else:
                silent += interval
                if silent >= self.keepalive:
                    return False
            conn.send([PING, 0])
        return True


async def _close_quietly(generator) -> None:
    try:
        await generator.aclose()
    except BaseException:
        pass


class TcpClientConnection:
    """Client end of one connection to an instance address; routes frames to streams by id and
    keeps watch: with streams open and nothing received for `keepalive` s (pings unanswered,
    e.g. a stopped or wedged worker), it fails them with StreamIncompleteError and closes."""

    def __init__(self, address: str, conn: FramedConnection, window: int = DEFAULT_WINDOW,
                 keepalive: float = KEEPALIVE_TIMEOUT):
        self.address = address
        self.conn = conn
        self.window = window
        self.keepalive = keepalive
        self.streams: dict[int, StreamSink] = {}
        self._ids = itertools.count(1)
        self.alive = True
        self.reader_task = conn.loop.create_task(self._read_loop())
        self.keepalive_task = conn.loop.create_task(self._keep_alive())

    def open(self, path: str, request: Any, context: Context) -> QueuedResponseStream:
        sid = next(self._ids)
        conn = self.conn
        streams = self.streams

        def cancel_remote() -> None:
            streams.pop(sid, None)
            if not conn.closed:
                conn.send([CANCEL, sid])

        def grant(n: int) -> None:
            if not conn.closed:
                conn.send([CREDIT, sid, n])

        conn.send([REQUEST, sid, path, context.id(), request, self.window])   # raises if unencodable
        sink = streams[sid] = StreamSink(self.window, grant)
        return QueuedResponseStream(sink, context, cancel_remote)

    async def _read_loop(self) -> None:
        streams = self.streams
        try:
            async for batch in self.conn.frames():
                for frame in batch:
                    stream = streams.get(frame[1])
                    if stream is None:
                        if frame[0] == PING and frame[1] == 0:     # a worker waiting on us for credit
                            self.conn.send([PING, -1])
                        continue
                    kind = frame[0]
                    if kind == DATA:
                        stream.push(frame[2])
                    elif kind == END:
                        del streams[frame[1]]
                        stream.finish()
                    elif kind == ERROR:
                        del streams[frame[1]]
                        stream.finish(error_from_wire(frame[2], frame[3]))
        except (ConnectionError, OSError) as exc:
            log.debug("connection to %s lost: %s", self.address, exc)
        finally:
            self.alive = False
            self.conn.closed = True
            for stream in list(streams.values()):
                stream.finish(incomplete(self.address))
            streams.clear()

    async def _keep_alive(self) -> None:
        """Ping a worker that went quiet while streams wait on it; fail them if it stays silent."""
        interval = self.keepalive / 4
        conn = self.conn
        seen, silent = conn.received, 0.0
        while self.alive:
            await asyncio.sleep(interval)
            if not self.streams or conn.received != seen:
                seen, silent = conn.received, 0.0
                continue
            silent += interval
            if silent >= self.keepalive:
                self._fail(f"worker at {self.address} stopped answering for {self.keepalive:g} s (hung or unreachable)")
                return
            conn.send([PING, 0])

    def _fail(self, why: str) -> None:
        for stream in list(self.streams.values()):
            stream.finish(StreamIncompleteError(why))
        self.streams.clear()
        self.close()

    def close(self) -> None:
        self.alive = False
        self.reader_task.cancel()
        if self.keepalive_task is not asyncio.current_task():
            self.keepalive_task.cancel()
        self.conn.close()


class TcpClient:
    """Pool of connections keyed by instance address; `window` is each stream's credit window."""

    def __init__(self, window: int = DEFAULT_WINDOW, keepalive: float = KEEPALIVE_TIMEOUT) -> None:
        self.window = window
        self.keepalive = keepalive
        self._connections: dict[str, TcpClientConnection] = {}
        self._connecting: dict[str, asyncio.Future] = {}

    async def _connection(self, address: str) -> TcpClientConnection:
        conn = self._connections.get(address)
        if conn is not None and conn.alive:
            return conn
        pending = self._connecting.get(address)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._connecting[address] = future
        try:
            host, port = address.rsplit(":", 1)
            try:
                reader, writer = await asyncio.open_connection(host, int(port), limit=READ_SIZE)
            except OSError as exc:
                raise DisconnectedError(f"cannot connect to instance at {address}: {exc}") from exc
            conn = TcpClientConnection(address, FramedConnection(reader, writer), self.window, self.keepalive)
            self._connections[address] = conn
            future.set_result(conn)
            return conn
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()   # mark retrieved
            raise
        finally:
            del self._connecting[address]

    async def open(self, transport: dict, instance_id: int, path: str, request: Any,
                   context: Context) -> QueuedResponseStream:
        conn = await self._connection(transport["address"])
        return conn.open(path, request, context)

    async def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()
