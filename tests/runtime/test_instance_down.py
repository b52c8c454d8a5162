"""A client takes a lost instance out of rotation at once (refused connection, no responders), not when its
discovery key expires, and tries it again after one discovery TTL if its key is still there (issue 11)."""
from __future__ import annotations

import asyncio

import pytest

from pyimpl.runtime import DistributedRuntime
from pyimpl.runtime.errors import NoInstancesError

from .test_api import _ask, _until_instances, free_port

TTL = 0.5


def _answer_with(instance_id: int):
    async def who(request):
        yield instance_id
    return who


async def _record(owner: DistributedRuntime, endpoint, instance_id: int, transport: dict) -> None:
    await owner.discovery.put(endpoint.discovery_key(instance_id), {
        "namespace": "down", "component": "c", "endpoint": "who", "instance_id": instance_id, "transport": transport})


async def test_refused_instance_leaves_rotation_at_once_and_returns_after_a_ttl():
    server = await DistributedRuntime.create("mem", "tcp", discovery_ttl=TTL)
    caller = await DistributedRuntime.create("mem", "tcp", discovery_ttl=TTL)
    try:
        await server.endpoint("down.c.who").register(_answer_with(server.instance_id))
        endpoint = caller.endpoint("down.c.who")
        lost = 1                                  # a record whose listener is gone: connections are refused
        await _record(server, endpoint, lost, {"type": "tcp", "address": f"127.0.0.1:{free_port()}"})
        client = await endpoint.client()
        await _until_instances(client, 2)
        answers = [await _ask(await client.round_robin(None)) for _ in range(4)]
        assert answers == [server.instance_id] * 4
        assert client.instance_ids() == [server.instance_id]           # out after the first refusal
        _, stream = await client.open_stream(None)                     # and never picked again
        assert await _ask(stream) == server.instance_id
        await _until_instances(client, 2, timeout=TTL * 4)              # its key is still there: tried again
        assert lost in client.instance_ids()
    finally:
        await caller.shutdown()
        await server.shutdown()


async def test_open_stream_among_picks_only_the_given_instances():
    servers = [await DistributedRuntime.create("mem", "tcp") for _ in range(2)]
    caller = await DistributedRuntime.create("mem", "tcp")
    try:
        for rt in servers:
            await rt.endpoint("down.c.who").register(_answer_with(rt.instance_id))
        client = await caller.endpoint("down.c.who").client()
        await _until_instances(client, 2)
        only = servers[1].instance_id
        for _ in range(4):
            iid, stream = await client.open_stream(None, among={only})
            assert iid == only and await _ask(stream) == only
        with pytest.raises(NoInstancesError):
            await client.open_stream(None, among={12345}, timeout=0.1)
    finally:
        await caller.shutdown()
        for rt in servers:
            await rt.shutdown()


async def test_no_responders_on_nats_takes_the_instance_out_at_once(nats_server):
    kwargs = dict(discovery_backend="mem", request_plane="nats", nats_server=nats_server)
    server = await DistributedRuntime.create(**kwargs)
    caller = await DistributedRuntime.create(**kwargs)
    try:
        await server.endpoint("down.c.who").register(_answer_with(server.instance_id))
        endpoint = caller.endpoint("down.c.who")
        live = await server.discovery.list(endpoint.discovery_prefix)
        transport = dict(next(iter(live.values()))["transport"])
        transport["subject"] = transport["subject"] + "-dead"          # nobody listens there: a killed worker
        await _record(server, endpoint, 1, transport)
        client = await endpoint.client()
        await _until_instances(client, 2)
        stream = await client.direct(None, 1)
        with pytest.raises(NoInstancesError):
            await asyncio.wait_for(_ask(stream), 5)
        assert client.instance_ids() == [server.instance_id]
        for _ in range(3):                                             # every request now reaches the live one
            assert await _ask(await client.generate(None)) == server.instance_id
    finally:
        await caller.shutdown()
        await server.shutdown()


async def test_a_killed_tcp_worker_leaves_rotation_between_requests(tmp_path):
    """After one request the client holds a connection to the worker; SIGKILL closes it, and the instance leaves
    the rotation then, with no request needed and long before its key's TTL (10 s here) runs out."""
    from .deployments import Deployment, WorkerProcess
    dep = Deployment("file", "tcp", "nats://unused:1", str(tmp_path))
    worker = WorkerProcess(dep, {"DYN_DISCOVERY_TTL": "10"})
    runtime = await DistributedRuntime.create(**{**dep.runtime_kwargs(), "discovery_ttl": 10.0})
    try:
        client = await dep.ready_client(runtime, "count")
        assert [a.data()["i"] async for a in await client.generate({"n": 2})] == [0, 1]
        worker.kill()
        async def gone():
            while client.instance_ids():
                await asyncio.sleep(0.01)
        await asyncio.wait_for(gone(), 2.0)
    finally:
        worker.kill()
        await runtime.shutdown()
