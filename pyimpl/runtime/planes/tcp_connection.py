"""A tcp connection as both ends see it: length-prefixed msgpack frames, writes coalesced into one
buffer flushed once per loop turn (or at once when large), and the silence watch behind keepalive."""
from __future__ import annotations

import asyncio
import struct
from typing import Any

import msgspec

from .base import PING

HEADER = 4                      # little-endian uint32 body length
FLUSH_NOW_BYTES = 256 * 1024    # buffered bytes that force an immediate write
HIGH_WATER = 4 * 1024 * 1024    # transport backlog that makes producers wait
READ_SIZE = 1024 * 1024
KEEPALIVE_TIMEOUT = 5.0         # s of silence from a worker with open streams before they fail
PING_ASK, PING_ANSWER = [PING, 0], [PING, -1]
_LENGTH = struct.Struct("<I")     # a frame's header; read in place (no bytes object per frame)
_pack_length, _get_length = _LENGTH.pack, _LENGTH.unpack_from


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
        self.behind = False         # the socket's backlog passed HIGH_WATER at the last write: producers pause

    def send(self, message: Any) -> None:
        # encoded apart, then appended: cheaper for the small frames that dominate than encode_into at an
        # offset (which resizes the buffer twice), and an unencodable message leaves nothing behind
        body = self._encoder.encode(message)
        out = self._out
        out += _pack_length(len(body))
        out += body
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
            self.behind = self.writer.transport.get_write_buffer_size() > HIGH_WATER

    async def backpressure(self) -> None:
        """Wait while the socket is far behind (slow reader); then `behind` is clear until a write refills it."""
        if self.writer.transport.get_write_buffer_size() > HIGH_WATER:
            await self.writer.drain()
        self.behind = False

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
                    length = _get_length(view, pos)[0]
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


class SilenceWatch:
    """Keepalive of one connection, asked every `interval` (a quarter of `keepalive`) s while
    something waits on the peer: alive while frames arrive; a quiet peer is pinged ([PING, 0]),
    and `keepalive` s without a frame mean it is gone (stopped, wedged or unreachable)."""

    def __init__(self, conn: FramedConnection, keepalive: float):
        self.conn = conn
        self.keepalive = keepalive
        self.interval = keepalive / 4
        self.reset()

    def reset(self) -> None:
        """Nothing waits on the peer now: its silence so far does not count."""
        self.seen, self.silent = self.conn.received, 0.0

    async def alive(self) -> bool:
        conn = self.conn
        if conn.closed:
            return False
        if conn.received != self.seen:
            self.reset()
            return True
        self.silent += self.interval
        if self.silent >= self.keepalive:
            return False
        conn.send(PING_ASK)
        return True
