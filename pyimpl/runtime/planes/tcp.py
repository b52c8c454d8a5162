"""TCP plane: length-prefixed msgpack frames over asyncio streams; one connection per
(client runtime, instance address) multiplexes many streams; writes are coalesced per loop turn.
Each stream has a credit window (the handler waits when its consumer falls a window behind). Either
end pings a peer gone quiet while it waits on it ([PING, 0], answered [PING, -1]): a client fails
its streams, a worker ends a handler held for credit, when the peer stays silent."""
from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any, Callable, Optional

from ..context import Context
from ..dispatcher import Dispatcher
from ..errors import DisconnectedError, StreamIncompleteError
from . import Transport
from .base import (CANCEL, CREDIT, DATA, DEFAULT_WINDOW, END, ERROR, PING, REQUEST, QueuedResponseStream,
                   StreamSink, incomplete)
from .stream_server import ServedStreams
from .tcp_connection import KEEPALIVE_TIMEOUT, PING_ANSWER, READ_SIZE, FramedConnection, SilenceWatch

log = logging.getLogger("pyimpl.runtime.tcp")


class TcpStream:
    """One served stream's way back to its client: frames tagged with its id on the shared connection."""

    __slots__ = ("conn", "sid", "keepalive")

    def __init__(self, conn: FramedConnection, sid: int, keepalive: float):
        self.conn = conn
        self.sid = sid
        self.keepalive = keepalive

    def data(self, chunk: Any) -> bool:
        conn = self.conn
        conn.send([DATA, self.sid, chunk])
        return conn.behind or conn.closed

    async def room(self) -> None:
        await self.conn.backpressure()

    def end(self) -> None:
        self.conn.send([END, self.sid])

    def error(self, kind: str, message: str) -> None:
        self.conn.send([ERROR, self.sid, kind, message])

    def gone(self) -> bool:
        return self.conn.closed

    def watch_client(self) -> SilenceWatch:
        return SilenceWatch(self.conn, self.keepalive)


class TcpServer:
    """Accepts connections; each one's REQUEST/CREDIT/CANCEL frames drive its ServedStreams."""

    def __init__(self, dispatcher: Dispatcher, host: str, keepalive: float = KEEPALIVE_TIMEOUT):
        self.dispatcher = dispatcher
        self.host = host
        self.keepalive = keepalive
        self.server: Optional[asyncio.base_events.Server] = None
        self.address = ""
        self._connections: set[FramedConnection] = set()
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> Transport:
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

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = FramedConnection(reader, writer)
        self._connections.add(conn)
        connection_task = asyncio.current_task()
        self._tasks.add(connection_task)
        keepalive = self.keepalive
        streams = ServedStreams(self.dispatcher, lambda sid: TcpStream(conn, sid, keepalive))
        try:
            async for batch in conn.frames():
                for frame in batch:
                    if not streams.on_frame(frame) and frame[0] == PING and frame[1] == 0:
                        conn.send(PING_ANSWER)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass   # a connection handler ends quietly (3.11 streams log cancelled handlers)
        finally:
            streams.stop_all()               # the client is gone: stop its handlers
            self._tasks.discard(connection_task)
            self._connections.discard(conn)
            conn.closed = True
            writer.close()


class TcpClientConnection:
    """Client end of one connection to an instance address; routes frames to streams by id and
    keeps watch: with streams open and nothing received for `keepalive` s (pings unanswered,
    e.g. a stopped or wedged worker), it fails them with StreamIncompleteError and closes."""

    def __init__(self, address: str, conn: FramedConnection, window: int = DEFAULT_WINDOW,
                 keepalive: float = KEEPALIVE_TIMEOUT, on_lost: Callable[[], None] | None = None):
        self.address = address
        self.on_lost = on_lost      # called when the peer closes the connection (not when this side does)
        self.conn = conn
        self.window = window
        self.keepalive = keepalive
        self.streams: dict[int, StreamSink] = {}
        self._ids = itertools.count(1)
        self.alive = True
        self.reader_task = conn.loop.create_task(self._read_loop())
        self.keepalive_task = conn.loop.create_task(self._keep_alive())

    def open(self, path: str, request: Any, context: Context, annotated: bool = True) -> QueuedResponseStream:
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
        return QueuedResponseStream(sink, context, cancel_remote, annotated)

    async def _read_loop(self) -> None:
        streams = self.streams
        try:
            async for batch in self.conn.frames():
                for frame in batch:
                    stream = streams.get(frame[1])
                    if stream is None:
                        if frame[0] == PING and frame[1] == 0:     # a worker waiting on us for credit
                            self.conn.send(PING_ANSWER)
                    elif stream.take(frame, 2):
                        del streams[frame[1]]
        except (ConnectionError, OSError) as exc:
            log.debug("connection to %s lost: %s", self.address, exc)
        finally:
            if self.alive and self.on_lost is not None:     # the peer went away, this side did not close
                self.on_lost()
            self.alive = False
            self.conn.closed = True
            for stream in list(streams.values()):
                stream.finish(incomplete(self.address))
            streams.clear()

    async def _keep_alive(self) -> None:
        """Ping a worker that went quiet while streams wait on it; fail them if it stays silent."""
        watch = SilenceWatch(self.conn, self.keepalive)
        while self.alive:
            await asyncio.sleep(watch.interval)
            if not self.streams:
                watch.reset()
            elif not await watch.alive():
                self._fail(f"worker at {self.address} stopped answering for {self.keepalive:g} s (hung or unreachable)")
                return

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
        self._lost_callbacks: dict[str, list[Callable[[], None]]] = {}

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
            conn = TcpClientConnection(address, FramedConnection(reader, writer), self.window, self.keepalive,
                                       lambda: self._connection_lost(address))
            self._connections[address] = conn
            future.set_result(conn)
            return conn
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()   # mark retrieved
            raise
        finally:
            del self._connecting[address]

    async def open(self, transport: Transport, instance_id: int, path: str, request: Any,
                   context: Context, annotated: bool = True) -> QueuedResponseStream:
        conn = await self._connection(transport["address"])
        return conn.open(path, request, context, annotated)

    def watch_lost(self, transport: Transport, callback: Callable[[], None]) -> None:
        """`callback` runs once when the worker at this address closes its connection (it died or shut down)."""
        self._lost_callbacks.setdefault(transport["address"], []).append(callback)

    def _connection_lost(self, address: str) -> None:
        for callback in self._lost_callbacks.pop(address, ()):
            callback()

    async def close(self) -> None:
        self._lost_callbacks.clear()
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()
