"""A NATS server restart under open streams (issue 11): messages in flight may be lost, so a stream open across
the restart ends promptly with StreamInterruptedError (never waits forever), its worker is cancelled, and the
worker stays in rotation (it was the transport, not the instance, that failed)."""
from __future__ import annotations

import asyncio

import pytest

from pyimpl.runtime.errors import DisconnectedError, StreamInterruptedError

from .deployments import Deployment
from .handlers import register_all


async def test_a_stream_open_across_a_nats_restart_is_interrupted_not_hung(nats_server_process, tmp_path):
    dep = Deployment("nats", "nats", nats_server_process.url, str(tmp_path))
    server = await dep.client_runtime()
    handlers = await register_all(server, dep.namespace)
    runtime = await dep.client_runtime()
    try:
        client = await dep.ready_client(runtime, "slow")
        stream = await client.generate({"interval": 0.05})
        assert (await stream.__anext__()).data() == {"i": 0}
        await asyncio.to_thread(nats_server_process.restart)
        loop = asyncio.get_running_loop()
        restarted = loop.time()

        async def drain():
            async for _ in stream:
                pass
        with pytest.raises(StreamInterruptedError) as caught:
            await asyncio.wait_for(drain(), 10)
        assert not isinstance(caught.value, DisconnectedError)   # the instance is not reported lost
        assert loop.time() - restarted < 3
        assert server.instance_id in client.instance_ids()
        await asyncio.wait_for(handlers.ended_event(stream.context().id()).wait(), 5)   # the worker stopped it

        async def until_ok():
            while True:
                try:
                    return [a.data()["i"] async for a in await client.generate({"interval": 0.01, "limit": 3})]
                except StreamInterruptedError:
                    await asyncio.sleep(0.1)
        assert await asyncio.wait_for(until_ok(), 10) == [0, 1, 2]
    finally:
        await runtime.shutdown()
        await server.shutdown()
