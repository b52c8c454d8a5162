"""The per-stream server loop shared by the tcp and nats planes, driven through its transport seam
with a recording transport (what a new plane would implement): END or typed ERROR ends every
stream, the credit window holds a handler, a client judged gone ends it, CANCEL and shutdown stop it."""
from __future__ import annotations

import asyncio

import msgspec

from pyimpl.runtime import Context
from pyimpl.runtime.dispatcher import Dispatcher
from pyimpl.runtime.planes.base import CANCEL, CREDIT, PING, PING_FRAME, REQUEST
from pyimpl.runtime.planes.stream_server import ServedStreams


class Watch:
    interval = 0.01

    def __init__(self, transport: "Recorder"):
        self.transport = transport

    async def alive(self) -> bool:
        self.transport.pings += 1
        return self.transport.client_there


class Recorder:
    """A StreamTransport that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []
        self.done = asyncio.Event()
        self.client_there = True
        self.pings = 0

    def data(self, chunk) -> bool:
        self.sent.append(("data", chunk))
        return False

    def end(self) -> None:
        self.sent.append(("end",))
        self.done.set()

    def error(self, kind: str, message: str) -> None:
        self.sent.append(("error", kind, message))
        self.done.set()

    def gone(self) -> bool:
        return False

    async def room(self) -> None:
        pass

    def watch_client(self) -> Watch:
        return Watch(self)


class Service:
    def __init__(self) -> None:
        self.produced = 0
        self.ended = asyncio.Event()
        self.context: Context | None = None

    async def count(self, request, context: Context):
        try:
            self.context = context
            for i in range(request["n"]):
                self.produced = i + 1
                yield i
            if request.get("fail"):
                raise KeyError("no such thing")
        finally:
            self.ended.set()


def serving() -> tuple[ServedStreams, dict[object, Recorder], Service]:
    dispatcher = Dispatcher()
    service = Service()
    dispatcher.add("ns.c.count", service.count)
    transports: dict[object, Recorder] = {}
    streams = ServedStreams(dispatcher, lambda key: transports.setdefault(key, Recorder()))
    return streams, transports, service


async def test_chunks_then_end_and_errors_are_typed():
    streams, transports, _ = serving()
    assert streams.on_frame([REQUEST, 1, "ns.c.count", "ctx-1", {"n": 3}])          # tcp layout: key first
    assert streams.on_frame([REQUEST, "ns.c.count", "ctx-2", {"n": 1, "fail": True}, 8], reply="r.2")   # nats
    assert streams.on_frame([REQUEST, 3, "ns.c.nothing", "ctx-3", {}, 8])
    assert not streams.on_frame([PING, 0])                                          # the plane's own frame
    await asyncio.wait_for(asyncio.gather(*(t.done.wait() for t in transports.values())), 5)
    assert transports[1].sent == [("data", 0), ("data", 1), ("data", 2), ("end",)]
    assert transports["r.2"].sent == [("data", 0), ("error", "handler", "KeyError: 'no such thing'")]
    assert transports[3].sent == [("error", "not_found", "endpoint 'ns.c.nothing' is not served by this instance")]
    assert len(streams) == 0


async def test_window_holds_the_handler_until_credit():
    streams, transports, service = serving()
    streams.on_frame([REQUEST, 1, "ns.c.count", "ctx", {"n": 10}, 4])
    await asyncio.sleep(0.1)
    assert service.produced == 4 and transports[1].pings > 0         # held at the window, client pinged
    streams.on_frame([CREDIT, 1, 100])
    await asyncio.wait_for(transports[1].done.wait(), 5)
    assert transports[1].sent[-1] == ("end",) and service.produced == 10


async def test_handler_held_for_a_gone_client_is_ended():
    streams, transports, service = serving()
    streams.on_frame([REQUEST, 1, "ns.c.count", "ctx", {"n": 10}, 2])
    await asyncio.sleep(0.05)
    transports[1].client_there = False
    await asyncio.wait_for(service.ended.wait(), 5)
    assert service.context.is_stopped()
    assert transports[1].sent[-1][:2] == ("error", "incomplete")


async def test_cancel_and_shutdown_stop_handlers():
    streams, transports, service = serving()
    streams.on_frame([REQUEST, 1, "ns.c.count", "ctx", {"n": 10}, 2])
    await asyncio.sleep(0.05)
    streams.on_frame([CANCEL, 1])
    await asyncio.wait_for(service.ended.wait(), 5)
    assert service.context.is_stopped() and ("end",) not in transports[1].sent

    streams, transports, service = serving()
    streams.on_frame([REQUEST, 1, "ns.c.count", "ctx", {"n": 10}, 2])
    await asyncio.sleep(0.05)
    await asyncio.wait(streams.stop_all(shutting_down=True), timeout=5)
    assert transports[1].sent[-1] == ("error", "incomplete", "the instance shut down before the stream completed")


def test_nats_ping_frame_is_the_msgpack_array_workers_already_speak():
    assert msgspec.msgpack.decode(PING_FRAME) == [PING] and PING_FRAME == b"\x91\x05"
