"""Failures across processes: SIGKILL mid-stream, TTL removal of dead workers, graceful
SIGTERM (deregister, then drain), and NATS server restarts."""
from __future__ import annotations

import asyncio
import signal

import pytest

from pyimpl.runtime import DistributedRuntime
from pyimpl.runtime.errors import DynamoError, EndpointNotFoundError, StreamIncompleteError

from .deployments import REMOTE_COMBOS, TTL, Deployment, WorkerProcess
from .handlers import StreamHandlers, register_all

IDS = [f"{d}-{p}" for d, p in REMOTE_COMBOS]


@pytest.fixture
def deployment(request, nats_server, tmp_path):
    discovery, plane = request.param
    return Deployment(discovery, plane, nats_server, str(tmp_path / "file_kv"))


async def _until(predicate, timeout: float) -> None:
    """Bounded wait for a condition owned by another task (a client's discovery watch)."""
    async def poll():
        while not predicate():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


async def _watch_key(runtime, prefix: str, key: str):
    """A discovery watch that has already seen `key` (so its later delete is reported)."""
    events = runtime.discovery.watch(prefix)
    async for event in events:
        if event.kind == "put" and event.key == key:
            return events


async def _next_delete(events, key: str):
    async for event in events:
        if event.kind == "delete" and event.key == key:
            return event


@pytest.mark.parametrize("deployment", REMOTE_COMBOS, ids=IDS, indirect=True)
async def test_sigkill_mid_stream_ends_stream_with_typed_error_and_ttl_removes_worker(deployment):
    worker = WorkerProcess(deployment)
    runtime = await deployment.client_runtime()
    try:
        endpoint = deployment.endpoint(runtime, "slow")
        client = await endpoint.client()
        await client.wait_for_instances(10)
        key = endpoint.discovery_key(worker.instance_id)
        events = await _watch_key(runtime, endpoint.discovery_prefix, key)
        stream = await client.generate({"interval": 0.01})
        await stream.__anext__()
        worker.kill()

        async def drain():
            async for _ in stream:
                pass

        with pytest.raises(DynamoError):
            await asyncio.wait_for(drain(), 10)
        await asyncio.wait_for(_next_delete(events, key), TTL * 3 + 2)
        await _until(lambda: worker.instance_id not in client.instance_ids(), 5)
        await events.aclose()
    finally:
        worker.kill()
        await runtime.shutdown()


@pytest.mark.parametrize("deployment", [("file", "tcp"), ("nats", "nats")], ids=["file-tcp", "nats-nats"],
                         indirect=True)
async def test_sigterm_deregisters_then_drains_in_flight_streams(deployment):
    worker = WorkerProcess(deployment, {"DYN_GRACE_PERIOD": "30"})   # the drain, not the grace, ends it
    runtime = await deployment.client_runtime()
    try:
        endpoint = deployment.endpoint(runtime, "slow")
        client = await endpoint.client()
        await client.wait_for_instances(10)
        key = endpoint.discovery_key(worker.instance_id)
        events = await _watch_key(runtime, endpoint.discovery_prefix, key)
        stream = await client.generate({"interval": 0.02, "limit": 25})
        got = [(await stream.__anext__()).data()["i"]]
        worker.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(_next_delete(events, key), 5)
        got += [a.data()["i"] async for a in stream]
        assert got == list(range(25))
        assert await asyncio.to_thread(worker.proc.wait, 10) == 0
        await events.aclose()
    finally:
        worker.kill()
        await runtime.shutdown()


@pytest.mark.parametrize("plane", ["nats", "tcp"])
async def test_clients_reconnect_after_nats_server_restart(nats_server_process, tmp_path, plane):
    dep = Deployment("nats", plane, nats_server_process.url, str(tmp_path))
    server = await dep.client_runtime()
    await register_all(server, dep.namespace)
    runtime = await dep.client_runtime()
    try:
        client = await dep.endpoint(runtime, "count").client()
        await client.wait_for_instances(10)
        assert [a.data()["i"] async for a in await client.generate({"n": 3})] == [0, 1, 2]
        await asyncio.to_thread(nats_server_process.restart)

        async def request_until_ok():
            while True:
                try:
                    return [a.data()["i"] async for a in await client.generate({"n": 3})]
                except DynamoError:
                    await asyncio.sleep(0.2)   # still reconnecting

        assert await asyncio.wait_for(request_until_ok(), 20) == [0, 1, 2]
        fresh = await dep.endpoint(runtime, "count").client()      # discovery works again too
        assert server.instance_id in await fresh.wait_for_instances(10)
    finally:
        await runtime.shutdown()
        await server.shutdown()


@pytest.mark.parametrize("plane", ["tcp", "nats"])
async def test_streams_outliving_the_grace_period_end_with_typed_error(nats_server, plane):
    server = await DistributedRuntime.create("mem", plane, nats_server=nats_server, grace_period=0.2)
    await server.endpoint("grace.c.slow").register(StreamHandlers().slow)
    runtime = await DistributedRuntime.create("mem", plane, nats_server=nats_server)
    try:
        client = await runtime.endpoint("grace.c.slow").client()
        await client.wait_for_instances(5)
        stream = await client.generate({"interval": 0.01})
        await stream.__anext__()
        await server.shutdown()
        with pytest.raises(StreamIncompleteError):
            async for _ in stream:
                pass
    finally:
        await runtime.shutdown()
        await server.shutdown()


@pytest.mark.parametrize("plane", ["tcp", "nats"])
async def test_instance_not_serving_the_path_answers_endpoint_not_found(nats_server, plane):
    server = await DistributedRuntime.create("mem", plane, nats_server=nats_server)
    await server.endpoint("gone.c.e").register(StreamHandlers().count)
    runtime = await DistributedRuntime.create("mem", plane, nats_server=nats_server)
    try:
        client = await runtime.endpoint("gone.c.e").client()
        await client.wait_for_instances(5)
        del server.dispatcher.endpoints["gone.c.e"]      # stale discovery record
        with pytest.raises(EndpointNotFoundError, match="gone.c.e"):
            async for _ in await client.generate({"n": 1}):
                pass
    finally:
        await runtime.shutdown()
        await server.shutdown()
