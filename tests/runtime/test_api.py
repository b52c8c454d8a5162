"""The public API contract: configuration, names, routing policies and hook, Context linking,
generic discovery KV with leases, system HTTP server and the instances command."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from pyimpl.runtime import Annotated, Context, DistributedRuntime
from pyimpl.runtime.errors import ConfigurationError, NoInstancesError

from tests.conftest import free_port

from .deployments import BUCKET, REPO, TTL
from .handlers import StreamHandlers


@pytest.mark.parametrize("discovery,plane", [("file", "inproc"), ("nats", "inproc"), ("mem", "udp"),
                                             ("etcd", "tcp")])
async def test_invalid_pairings_refused_at_start(discovery, plane):
    with pytest.raises(ConfigurationError):
        await DistributedRuntime.create(discovery, plane)


def test_configuration_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DYN_DISCOVERY_BACKEND", "file")
    monkeypatch.setenv("DYN_REQUEST_PLANE", "tcp")
    monkeypatch.setenv("DYN_FILE_KV", str(tmp_path))
    runtime = DistributedRuntime(None)
    assert (runtime.config.discovery_backend, runtime.config.request_plane) == ("file", "tcp")
    assert runtime.config.file_kv_dir == str(tmp_path)
    monkeypatch.setenv("DYN_REQUEST_PLANE", "inproc")
    with pytest.raises(ConfigurationError, match="inproc"):
        DistributedRuntime(None)


async def test_names_and_create_service():
    runtime = await DistributedRuntime.create()
    endpoint = runtime.namespace("ns").component("comp").endpoint("ep")
    assert endpoint.path == runtime.endpoint("ns.comp.ep").path == "ns.comp.ep"
    await endpoint.component.create_service()
    with pytest.raises(ValueError):
        runtime.endpoint("ns.comp")
    await runtime.shutdown()
    await runtime.shutdown()      # idempotent


def test_annotated_accessors():
    chunk = Annotated({"x": 1}, event="error", comments=["c"], id="7")
    assert (chunk.data(), chunk.event(), chunk.comments(), chunk.id(), chunk.is_error()) == \
        ({"x": 1}, "error", ["c"], "7", True)
    assert not Annotated(1).is_error() and Annotated(1).comments() == []


async def test_context_stop_kill_await_and_links():
    parent, child = Context(), Context()
    parent.link_child(child)
    waiter = asyncio.create_task(child.stopped())
    parent.kill()
    await waiter
    await parent                       # awaitable once stopped
    assert parent.is_killed() and parent.is_stopped() and child.is_stopped() and not child.is_killed()
    assert len(Context().id()) > 0 and Context("abc").id() == "abc"


@pytest.fixture
async def two_servers():
    """Two tcp instances of ns.c.who in this process (mem discovery); each yields its instance id."""
    def answer_with(instance_id: int):
        async def who(request):
            yield instance_id
        return who

    servers = []
    for _ in range(2):
        runtime = await DistributedRuntime.create("mem", "tcp")
        await runtime.endpoint("routing.c.who").register(answer_with(runtime.instance_id))
        servers.append(runtime)
    caller = await DistributedRuntime.create("mem", "tcp")
    yield caller, sorted(s.instance_id for s in servers), servers
    await caller.shutdown()
    for server in servers:
        await server.shutdown()


async def _ask(stream) -> int:
    return [a.data() async for a in stream][0]


async def _until_instances(client, count: int, timeout: float = 5.0) -> None:
    """Bounded wait until the client's discovery watch knows `count` instances."""
    async def poll():
        while len(client.instance_ids()) < count:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


async def test_routing_policies_and_hook(two_servers):
    caller, ids, _ = two_servers
    client = await caller.endpoint("routing.c.who").client()
    await _until_instances(client, 2)
    assert client.instance_ids() == ids
    assert {await _ask(await client.round_robin(None)) for _ in range(4)} == set(ids)
    assert {await _ask(await client.generate(None)) for _ in range(4)} == set(ids)
    assert all([await _ask(await client.random(None)) in ids for _ in range(4)])
    assert [await _ask(await client.direct(None, ids[1])) for _ in range(3)] == [ids[1]] * 3
    with pytest.raises(NoInstancesError):
        await client.direct(None, 12345)
    seen = []
    routed = await caller.endpoint("routing.c.who").client(router=lambda iids, req: seen.append(req) or iids[0])
    await routed.wait_for_instances(5)
    assert [await _ask(await routed.generate({"r": k})) for k in range(3)] == [routed.instance_ids()[0]] * 3
    assert seen == [{"r": 0}, {"r": 1}, {"r": 2}]

    async def async_router(iids, request):
        return iids[-1]

    routed_async = await caller.endpoint("routing.c.who").client(router=async_router)
    await routed_async.wait_for_instances(5)
    assert await _ask(await routed_async.generate(None)) == routed_async.instance_ids()[-1]


async def test_context_passed_downstream_links_cancellation():
    """A middle handler forwards its context to a downstream call; cancelling the caller's
    stream stops the middle handler and, through the link, the downstream handler."""
    backend_rt = await DistributedRuntime.create("mem", "tcp")
    service = StreamHandlers()
    await backend_rt.endpoint("chain.back.slow").register(service.slow)
    middle_rt = await DistributedRuntime.create("mem", "tcp")
    downstream = await middle_rt.endpoint("chain.back.slow").client()

    async def middle(request, context):
        async for chunk in await downstream.generate(request, context=context):
            yield chunk.data()

    await middle_rt.endpoint("chain.mid.relay").register(middle)
    caller = await DistributedRuntime.create("mem", "tcp")
    try:
        client = await caller.endpoint("chain.mid.relay").client()
        await client.wait_for_instances(5)
        context = Context()
        stream = await client.generate({"interval": 0.01}, context=context)
        await stream.__anext__()
        await stream.aclose()
        await asyncio.wait_for(service.ended_event(context.id()).wait(), 5)
    finally:
        await caller.shutdown()
        await middle_rt.shutdown()
        await backend_rt.shutdown()


@pytest.fixture(params=["mem", "file", "nats"])
def discovery_kwargs(request, nats_server, tmp_path):
    plane = "inproc" if request.param == "mem" else "tcp"
    return dict(discovery_backend=request.param, request_plane=plane, nats_server=nats_server,
                file_kv_dir=str(tmp_path), discovery_ttl=TTL, nats_kv_bucket=BUCKET)


async def test_generic_discovery_kv_with_lease(discovery_kwargs):
    owner = await DistributedRuntime.create(**discovery_kwargs)
    observer = await DistributedRuntime.create(**discovery_kwargs)
    prefix = f"models/m{owner.instance_id:x}/"
    try:
        await owner.discovery.put(prefix + "a", {"name": "a", "v": 1})
        events = observer.discovery.watch(prefix)
        first = await asyncio.wait_for(events.__anext__(), 5)
        assert (first.kind, first.key, first.value) == ("put", prefix + "a", {"name": "a", "v": 1})
        await owner.discovery.put(prefix + "b.json", {"name": "Qwen2.5 b"})
        second = await asyncio.wait_for(events.__anext__(), 5)
        assert (second.kind, second.key) == ("put", prefix + "b.json")
        assert await observer.discovery.list(prefix) == {prefix + "a": {"name": "a", "v": 1},
                                                         prefix + "b.json": {"name": "Qwen2.5 b"}}
        await owner.discovery.delete(prefix + "a")
        third = await asyncio.wait_for(events.__anext__(), 5)
        assert (third.kind, third.key, third.value) == ("delete", prefix + "a", None)
        await owner.shutdown()                  # the lease ends: its keys go
        fourth = await asyncio.wait_for(events.__anext__(), 5)
        assert (fourth.kind, fourth.key) == ("delete", prefix + "b.json")
        assert await observer.discovery.list(prefix) == {}
        await events.aclose()
    finally:
        await owner.shutdown()
        await observer.shutdown()


async def _http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_instance_advertising_an_unknown_transport_is_a_configuration_error():
    runtime = await DistributedRuntime.create("mem", "inproc")
    try:
        endpoint = runtime.endpoint("odd.c.ep")
        await runtime.discovery.put(endpoint.discovery_key(7), {
            "namespace": "odd", "component": "c", "endpoint": "ep", "instance_id": 7,
            "transport": {"type": "carrier-pigeon"}})
        client = await endpoint.client()
        await client.wait_for_instances(5)
        with pytest.raises(ConfigurationError, match="carrier-pigeon"):
            await client.direct({}, 7)
    finally:
        await runtime.shutdown()


async def test_system_server_health_and_metrics():
    port = free_port()
    runtime = await DistributedRuntime.create("mem", "inproc", system_port=port)
    try:
        service = StreamHandlers()
        await runtime.endpoint("sys.c.count").register(service.count, health_check_payload={"n": 1})
        await runtime.endpoint("sys.c.fail").register(service.fail)   # no payload: not checked
        client = await runtime.endpoint("sys.c.count").client()
        assert [a.data()["i"] async for a in await client.generate({"n": 3})] == [0, 1, 2]
        status, body = await _http_get(port, "/health")
        health = json.loads(body)
        assert status == 200 and health["endpoints"] == ["sys.c.count", "sys.c.fail"]
        assert health["health_checks"] == {"sys.c.count": "ready"}
        assert (await _http_get(port, "/live"))[0] == 200
        status, metrics = await _http_get(port, "/metrics")
        assert status == 200
        assert 'dynamo_component_requests_total{endpoint="sys.c.count"} 1.0' in metrics
        assert 'dynamo_component_inflight_requests{endpoint="sys.c.count"} 0.0' in metrics
        assert 'dynamo_component_request_duration_seconds_count{endpoint="sys.c.count"} 1.0' in metrics
    finally:
        await runtime.shutdown()


async def test_instances_command_lists_records(tmp_path, subprocess_env):
    runtime = await DistributedRuntime.create("file", "tcp", file_kv_dir=str(tmp_path))
    try:
        await runtime.endpoint("cmd.c.e").register(StreamHandlers().count)
        env = dict(subprocess_env, DYN_DISCOVERY_BACKEND="file", DYN_FILE_KV=str(tmp_path))
        out = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "pyimpl.runtime", "instances"],
                                      env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        key, record = out.stdout.strip().split(" ", 1)
        assert key == f"instances/cmd/c/e/{runtime.instance_id:x}"
        assert json.loads(record)["transport"]["type"] == "tcp"
    finally:
        await runtime.shutdown()



async def test_round_robin_moves_on_from_an_unreachable_instance(two_servers):
    caller, ids, servers = two_servers
    endpoint = caller.endpoint("routing.c.who")
    lost = 1                                           # a record whose listener is gone (nothing on that port)
    await servers[0].discovery.put(endpoint.discovery_key(lost), {
        "namespace": "routing", "component": "c", "endpoint": "who", "instance_id": lost,
        "transport": {"type": "tcp", "address": f"127.0.0.1:{free_port()}"}})
    client = await endpoint.client()
    await _until_instances(client, 3)
    answers = [await _ask(await client.round_robin(None)) for _ in range(6)]
    assert set(answers) == set(ids)                                      # every pick of it moved on
    assert lost not in client.instance_ids()    # refused once: out of rotation at once, not after its TTL (issue 11)


async def test_unreachable_nats_is_a_clear_error_not_a_hang():
    with pytest.raises(ConfigurationError, match="cannot connect to NATS"):
        await DistributedRuntime.create("nats", "nats", nats_server=f"nats://127.0.0.1:{free_port()}")


async def test_metrics_labels_become_extra_labels_on_component_metrics():
    port = free_port()
    runtime = await DistributedRuntime.create("mem", "inproc", system_port=port)
    try:
        service = StreamHandlers()
        await runtime.endpoint("lab.c.count").register(service.count,
                                                        metrics_labels=[("model", "m-1"), ("tier", "a")])
        await runtime.endpoint("lab.c.echo").register(service.echo, metrics_labels={"model": "m-2"})
        await runtime.endpoint("lab.c.fail").register(service.fail)
        with pytest.raises(ValueError, match="endpoint"):
            await runtime.endpoint("lab.c.bad").register(service.count, metrics_labels=[("endpoint", "x")])
        client = await runtime.endpoint("lab.c.count").client()
        assert [a.data()["i"] async for a in await client.generate({"n": 2})] == [0, 1]
        echo = await runtime.endpoint("lab.c.echo").client()
        assert len([a async for a in await echo.generate({"blob": b"x"})]) == 1
        _, metrics = await _http_get(port, "/metrics")
        assert 'dynamo_component_requests_total{endpoint="lab.c.count",model="m-1",tier="a"} 1.0' in metrics
        assert 'dynamo_component_requests_total{endpoint="lab.c.echo",model="m-2"} 1.0' in metrics
        assert 'dynamo_component_inflight_requests{endpoint="lab.c.count",model="m-1",tier="a"} 0.0' in metrics
        assert 'dynamo_component_request_duration_seconds_count{endpoint="lab.c.echo",model="m-2"} 1.0' in metrics
        assert metrics.count("# TYPE dynamo_component_requests_total counter") == 1   # one family, merged
    finally:
        await runtime.shutdown()
