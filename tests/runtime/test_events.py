"""The event plane through DistributedRuntime.events: mem (scoped, in-process), nats and zmq deliver a
publisher's messages in order to matching subscribers only; patterns, unsubscribe, close, bad subjects."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest

from pyimpl.runtime import DistributedRuntime
from pyimpl.runtime.errors import ConfigurationError

from .deployments import REPO


class Inbox:
    """A subscriber callback collecting (subject, data), with a wait for a count."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []
        self._changed = asyncio.Event()

    def __call__(self, subject: str, data: bytes) -> None:
        self.items.append((subject, data))
        self._changed.set()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[str, bytes]]:
        async def until() -> None:
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(until(), timeout)
        return self.items


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


def runtimes_kwargs(kind: str, tmp_path, nats_url: str | None) -> dict:
    if kind == "mem":
        return dict(discovery_backend="mem", request_plane="inproc", mem_scope=f"ev-{uuid.uuid4().hex}")
    if kind == "zmq":
        return dict(discovery_backend="file", request_plane="tcp", file_kv_dir=str(tmp_path), event_plane="zmq")
    return dict(discovery_backend="nats", request_plane="nats", nats_server=nats_url,
                nats_kv_bucket="events_tests")


@pytest.fixture(params=["mem", "nats", "zmq"])
async def pair(request, tmp_path):
    """A publishing and a subscribing runtime sharing one deployment of each event plane."""
    nats_url = request.getfixturevalue("nats_server") if request.param == "nats" else None
    kwargs = runtimes_kwargs(request.param, tmp_path, nats_url)
    pub = await DistributedRuntime.create(**kwargs)
    sub = await DistributedRuntime.create(**kwargs)
    assert pub.config.event_plane == request.param
    try:
        yield pub, sub
    finally:
        await pub.shutdown()
        await sub.shutdown()


async def publish_until(pub, subject: str, inbox: Inbox, data: bytes = b"hello") -> None:
    """Publishers connect asynchronously (zmq slow joiners): repeat a probe until one arrives, then clear."""
    for _ in range(200):
        await pub.events.publish(subject, data)
        await asyncio.sleep(0.02)
        if inbox.items:
            inbox.items.clear()
            return
    raise AssertionError("no message reached the subscriber")


async def test_messages_arrive_in_order_on_matching_subjects(pair):
    pub, sub = pair
    exact, one_token, any_depth = Inbox(), Inbox(), Inbox()
    await sub.events.subscribe("ns.comp.kv_events", exact)
    await sub.events.subscribe("ns.comp.*", one_token)
    await sub.events.subscribe("ns.>", any_depth)
    await publish_until(pub, "ns.comp.kv_events", exact)
    await settle()
    one_token.items.clear()
    any_depth.items.clear()
    for i in range(100):
        await pub.events.publish("ns.comp.kv_events", i.to_bytes(4, "little"))
    await pub.events.publish("ns.comp.kv_load", b"load")
    await pub.events.publish("ns.comp.kv_events.extra", b"deep")
    await pub.events.publish("other.comp.kv_events", b"elsewhere")
    await pub.events.publish("ns.comp.kv_events_x", b"not exact")
    got = await exact.wait_for(100)
    assert got == [("ns.comp.kv_events", i.to_bytes(4, "little")) for i in range(100)]
    await one_token.wait_for(102)
    await any_depth.wait_for(103)
    await settle()
    assert len(exact.items) == 100
    assert [s for s, _ in one_token.items[100:]] == ["ns.comp.kv_load", "ns.comp.kv_events_x"]
    assert [s for s, _ in any_depth.items[100:]] == ["ns.comp.kv_load", "ns.comp.kv_events.extra",
                                                      "ns.comp.kv_events_x"]


async def test_unsubscribe_stops_delivery_and_large_payloads_pass(pair):
    pub, sub = pair
    inbox = Inbox()
    unsubscribe = await sub.events.subscribe("a.b", inbox)
    await publish_until(pub, "a.b", inbox)
    big = os.urandom(512 * 1024)
    await pub.events.publish("a.b", big)
    assert (await inbox.wait_for(1))[0] == ("a.b", big)
    await unsubscribe()
    await unsubscribe()                     # idempotent
    await pub.events.publish("a.b", b"after")
    await asyncio.sleep(0.2)
    assert len(inbox.items) == 1


async def test_a_failing_callback_does_not_stop_delivery(pair):
    pub, sub = pair
    inbox = Inbox()

    def broken(subject: str, data: bytes) -> None:
        raise RuntimeError("subscriber bug")

    await sub.events.subscribe("x.y", broken)
    await sub.events.subscribe("x.y", inbox)
    await publish_until(pub, "x.y", inbox)
    await pub.events.publish("x.y", b"1")
    await pub.events.publish("x.y", b"2")
    assert [d for _, d in await inbox.wait_for(2)] == [b"1", b"2"]


async def test_mem_scopes_are_separate():
    a = await DistributedRuntime.create(mem_scope="scope-a")
    b = await DistributedRuntime.create(mem_scope="scope-b")
    a2 = await DistributedRuntime.create(mem_scope="scope-a")
    in_a, in_b = Inbox(), Inbox()
    await a.events.subscribe("s.t", in_a)
    await b.events.subscribe("s.t", in_b)
    await a2.events.publish("s.t", b"x")
    await in_a.wait_for(1)
    await settle()
    assert in_b.items == []
    for rt in (a, b, a2):
        await rt.shutdown()
    with pytest.raises(RuntimeError, match="closed"):
        await a.events.publish("s.t", b"y")


async def test_bad_subjects_are_refused():
    rt = await DistributedRuntime.create(mem_scope="bad-subjects")
    for subject in ["", "a..b", "a.b.", "a b", "a.*", "a.>"]:
        with pytest.raises(ValueError):
            await rt.events.publish(subject, b"")
    for pattern in ["*", "a.*.b", "a.b*", ">"]:
        with pytest.raises(ValueError):
            await rt.events.subscribe(pattern, Inbox())
    await rt.shutdown()


def test_event_plane_configuration(monkeypatch, tmp_path):
    monkeypatch.delenv("DYN_EVENT_PLANE", raising=False)
    assert DistributedRuntime(None).config.event_plane == "mem"
    assert DistributedRuntime(None, "file", "tcp", file_kv_dir=str(tmp_path)).config.event_plane == "zmq"
    assert DistributedRuntime(None, "file", "nats").config.event_plane == "nats"
    assert DistributedRuntime(None, "nats", "tcp").config.event_plane == "nats"
    monkeypatch.setenv("DYN_EVENT_PLANE", "ZMQ")
    assert DistributedRuntime(None).config.event_plane == "zmq"
    monkeypatch.setenv("DYN_EVENT_PLANE", "kafka")
    with pytest.raises(ConfigurationError, match="event plane"):
        DistributedRuntime(None)


ZMQ_PUBLISHER = """
import asyncio, sys
from pyimpl.runtime import DistributedRuntime
async def main():
    rt = await DistributedRuntime.create("file", "tcp", file_kv_dir=sys.argv[1])
    for i in range(2000):
        await rt.events.publish("proc.events", str(i).encode())
        await asyncio.sleep(0.005)
    await rt.shutdown()
asyncio.run(main())
"""


async def test_zmq_across_processes_and_a_dead_publisher_leaves_discovery(tmp_path, subprocess_env):
    rt = await DistributedRuntime.create("file", "tcp", file_kv_dir=str(tmp_path), discovery_ttl=1.0)
    assert rt.config.event_plane == "zmq"
    inbox = Inbox()
    await rt.events.subscribe("proc.events", inbox)
    env = dict(subprocess_env, DYN_DISCOVERY_TTL="1")
    proc = subprocess.Popen([sys.executable, "-c", ZMQ_PUBLISHER, str(tmp_path)], env=env, cwd=REPO)
    try:
        got = await inbox.wait_for(20, timeout=20)
        values = [int(d) for _, d in got]
        assert values == list(range(values[0], values[0] + len(values)))     # in order, none lost once joined
        proc.kill()
        proc.wait()
        keys = await rt.discovery.list("v1/event_plane/zmq/")
        for _ in range(60):
            if not keys:
                break
            await asyncio.sleep(0.1)
            keys = await rt.discovery.list("v1/event_plane/zmq/")
        assert keys == {}                   # the killed publisher's address expired with its lease
    finally:
        proc.kill()
        proc.wait()
        await rt.shutdown()


async def test_nats_subscriptions_survive_a_server_restart(nats_server_process, tmp_path):
    kwargs = dict(discovery_backend="file", request_plane="nats", nats_server=nats_server_process.url,
                  file_kv_dir=str(tmp_path))
    pub = await DistributedRuntime.create(**kwargs)
    sub = await DistributedRuntime.create(**kwargs)
    assert pub.config.event_plane == "nats"
    inbox = Inbox()
    await sub.events.subscribe("r.s", inbox)
    await publish_until(pub, "r.s", inbox)
    nats_server_process.restart()
    for _ in range(100):                    # both clients reconnect and the subscription is replayed
        await pub.events.publish("r.s", b"after")
        await asyncio.sleep(0.05)
        if inbox.items:
            break
    assert inbox.items and inbox.items[0] == ("r.s", b"after")
    await pub.shutdown()
    await sub.shutdown()


async def test_mem_delivers_to_a_subscriber_on_another_event_loop():
    """The C ABI runs runtimes on their own loop threads: a message crosses to the subscriber's loop."""
    import threading
    scope = f"threads-{uuid.uuid4().hex}"
    got: list[tuple[str, bytes, int]] = []
    ready, done = threading.Event(), threading.Event()

    def subscriber_thread() -> None:
        async def run() -> None:
            rt = await DistributedRuntime.create(mem_scope=scope)
            await rt.events.subscribe("t.u", lambda s, d: (got.append((s, d, threading.get_ident())), done.set()))
            ready.set()
            await asyncio.get_running_loop().run_in_executor(None, done.wait, 5)
            await rt.shutdown()
        asyncio.run(run())

    thread = threading.Thread(target=subscriber_thread)
    thread.start()
    await asyncio.get_running_loop().run_in_executor(None, ready.wait, 5)
    pub = await DistributedRuntime.create(mem_scope=scope)
    await pub.events.publish("t.u", b"across")
    await asyncio.get_running_loop().run_in_executor(None, thread.join, 5)
    assert [(s, d) for s, d, _ in got] == [("t.u", b"across")] and got[0][2] == thread.ident
    await pub.shutdown()
