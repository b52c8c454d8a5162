"""Flow control: a consumer that stops reading holds its handler within one window (inproc: the
handler only runs when the consumer pulls), other streams keep flowing, reading resumes it, and a
handler held for a client process that then dies is ended."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import pytest

from pyimpl.runtime import Context, DistributedRuntime

from .deployments import REPO, Deployment, client_runtime_for, running_deployment
from .handlers import register_all

WINDOW = 16
FLOW_COMBOS = [("mem", "inproc"), ("mem", "tcp"), ("mem", "nats"), ("file", "tcp"), ("nats", "nats")]


@pytest.fixture(scope="module", params=FLOW_COMBOS, ids=[f"{d}-{p}" for d, p in FLOW_COMBOS])
def deployment(request, nats_server, tmp_path_factory):
    yield from running_deployment(request.param, nats_server, str(tmp_path_factory.mktemp("file_kv")))


@pytest.fixture
async def client_rt(deployment):
    """A client runtime with a small window; for mem pairings a second runtime serves the handlers."""
    async for runtime in client_runtime_for(deployment, stream_window=WINDOW):
        yield runtime


async def _settled_progress(probe, context_id: str) -> int:
    """The endless handler's chunk count once it stops moving (it waits for credit), or after 10 s."""
    last, still = -1, 0
    for _ in range(200):
        [answer] = [a.data() async for a in await probe.generate({"id": context_id})]
        still = still + 1 if answer["produced"] == last else 0
        last = answer["produced"]
        if still >= 5:
            break
        await asyncio.sleep(0.05)
    return last


async def test_stalled_consumer_holds_its_handler_within_one_window(deployment, client_rt):
    endless = await deployment.ready_client(client_rt, "endless")
    probe = await deployment.ready_client(client_rt, "progress")
    bound = 1 if deployment.plane == "inproc" else WINDOW
    context = Context()
    stream = await endless.generate({}, context=context)
    assert (await stream.__anext__()).data() == {"i": 0}
    assert 1 <= await _settled_progress(probe, context.id()) <= bound

    count = await deployment.ready_client(client_rt, "count")     # the stalled stream blocks nobody else
    assert [a.data()["i"] async for a in await count.generate({"n": 500})] == list(range(500))

    read = 1
    for _ in range(WINDOW * 8):                               # reading lets the handler go on
        assert (await stream.__anext__()).data() == {"i": read}
        read += 1
    assert read <= await _settled_progress(probe, context.id()) <= read - 1 + bound
    await stream.aclose()


@pytest.mark.parametrize("plane", ["tcp", "nats"])
async def test_handler_stalled_on_a_killed_client_ends(nats_server, tmp_path, plane):
    """tcp: the connection drops; nats: the worker's ping of the client's reply subject finds no one."""
    dep = Deployment("nats", plane, nats_server, str(tmp_path))
    server = await dep.client_runtime()
    service = await register_all(server, dep.namespace)
    context_id = f"stalled-{dep.namespace}"
    env = {**dep.env(), "DYN_STREAM_WINDOW": str(WINDOW)}
    client = subprocess.Popen([sys.executable, "-m", "tests.runtime.client_process", dep.namespace, context_id],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert await asyncio.to_thread(client.stdout.readline) == "READ\n"
        assert await _settled_progress_local(service, context_id) <= WINDOW
        client.kill()
        await asyncio.wait_for(service.ended_event(context_id).wait(), 20)
    finally:
        client.kill()
        client.wait()
        await server.shutdown()


async def _settled_progress_local(service, context_id: str) -> int:
    last, still = -1, 0
    for _ in range(200):
        still = still + 1 if service.produced.get(context_id, 0) == last else 0
        last = service.produced.get(context_id, 0)
        if still >= 5:
            break
        await asyncio.sleep(0.05)
    return last


async def test_handler_stalled_on_a_stopped_tcp_client_ends(nats_server, tmp_path):
    """A tcp client process that is alive but stopped (SIGSTOP) stops answering the worker's pings."""
    dep = Deployment("nats", "tcp", nats_server, str(tmp_path))
    server = await DistributedRuntime.create(**dep.runtime_kwargs(), tcp_keepalive=1.0)
    service = await register_all(server, dep.namespace)
    context_id = f"stopped-{dep.namespace}"
    env = {**dep.env(), "DYN_STREAM_WINDOW": str(WINDOW)}
    client = subprocess.Popen([sys.executable, "-m", "tests.runtime.client_process", dep.namespace, context_id],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert await asyncio.to_thread(client.stdout.readline) == "READ\n"
        client.send_signal(signal.SIGSTOP)
        await asyncio.wait_for(service.ended_event(context_id).wait(), 20)
        assert client.poll() is None
    finally:
        client.send_signal(signal.SIGCONT)
        client.kill()
        client.wait()
        await server.shutdown()
