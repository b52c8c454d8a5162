"""tcp keepalive: a worker process that is alive but stopped (SIGSTOP) fails its open streams with a
typed DisconnectedError long before discovery would drop it; a quiet but healthy worker does not."""
from __future__ import annotations

import asyncio
import signal

import pytest

from pyimpl.runtime import DistributedRuntime
from pyimpl.runtime.errors import DisconnectedError

from .deployments import Deployment, WorkerProcess

KEEPALIVE = 1.0


@pytest.fixture
async def setup(nats_server, tmp_path):
    """A file-discovery tcp worker process (TTL far beyond the test) and a client with a short keepalive."""
    dep = Deployment("file", "tcp", nats_server, str(tmp_path / "file_kv"))
    worker = WorkerProcess(dep, {"DYN_DISCOVERY_TTL": "600"})
    runtime = await DistributedRuntime.create(**{**dep.runtime_kwargs(), "discovery_ttl": 600.0},
                                              tcp_keepalive=KEEPALIVE)
    client = await dep.endpoint(runtime, "slow").client()
    await client.wait_for_instances(10)
    yield worker, client
    if worker.proc.poll() is None:
        worker.proc.send_signal(signal.SIGCONT)
    worker.kill()
    await runtime.shutdown()


async def test_stopped_worker_fails_open_stream_with_disconnected_error(setup):
    worker, client = setup
    stream = await client.generate({"interval": 0.01})
    await stream.__anext__()
    worker.proc.send_signal(signal.SIGSTOP)

    async def drain():
        async for _ in stream:
            pass

    with pytest.raises(DisconnectedError, match="stopped answering"):
        await asyncio.wait_for(drain(), 30)
    assert worker.proc.poll() is None        # still alive: the keepalive, not a dead socket, ended it


async def test_quiet_but_healthy_worker_keeps_its_stream(setup):
    _, client = setup
    stream = await client.generate({"interval": KEEPALIVE * 2.5, "limit": 2})
    assert [a.data()["i"] async for a in stream] == [0, 1]
