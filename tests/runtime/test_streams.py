"""Streaming behaviour on every valid plane x discovery pairing: ordering, 1,000 concurrent
streams, cancellation reaching the handler, handler errors, 8 MB payloads, unknown endpoints."""
from __future__ import annotations

import asyncio

import pytest

from pyimpl.runtime import Annotated, Context
from pyimpl.runtime.errors import EndpointNotFoundError, RemoteHandlerError

from .deployments import COMBOS, client_runtime_for, running_deployment


@pytest.fixture(scope="module", params=COMBOS, ids=[f"{d}-{p}" for d, p in COMBOS])
def deployment(request, nats_server, tmp_path_factory):
    yield from running_deployment(request.param, nats_server, str(tmp_path_factory.mktemp("file_kv")))


@pytest.fixture
async def client_rt(deployment):
    """The client's runtime; for mem pairings it also hosts the worker's handlers."""
    async for runtime in client_runtime_for(deployment):
        yield runtime


async def client_for(deployment, runtime, name: str, timeout: float = 10.0):
    return await deployment.ready_client(runtime, name, timeout)


async def test_chunks_arrive_in_order(deployment, client_rt):
    client = await client_for(deployment, client_rt, "count")
    got = [a.data()["i"] async for a in await client.generate({"n": 500})]
    assert got == list(range(500))


async def test_unannotated_stream_yields_raw_data_and_cancels(deployment, client_rt):
    """annotated=False (as in NVIDIA Dynamo): the handler's items themselves, same order, and
    aclose() still reaches the handler."""
    client = await client_for(deployment, client_rt, "count")
    assert [d["i"] async for d in await client.generate({"n": 50}, annotated=False)] == list(range(50))
    assert [d["i"] async for d in await client.direct({"n": 3}, client.instance_ids()[0], annotated=False)] == [0, 1, 2]
    context = Context()
    stream = await (await client_for(deployment, client_rt, "slow")).generate({"interval": 0.01}, context=context,
                                                                             annotated=False)
    assert type(await stream.__anext__()) is not Annotated
    await stream.aclose()
    assert await _handler_saw_end(deployment, client_rt, context.id())


async def test_thousand_concurrent_streams_lose_nothing(deployment, client_rt):
    client = await client_for(deployment, client_rt, "count")

    async def one(k: int) -> list[int]:
        return [a.data()["i"] async for a in await client.generate({"n": 10 + k % 7})]

    results = await asyncio.gather(*(one(k) for k in range(1000)))
    assert all(r == list(range(10 + k % 7)) for k, r in enumerate(results))


async def _handler_saw_end(deployment, runtime, context_id: str) -> bool:
    probe = await client_for(deployment, runtime, "was_cancelled")
    [answer] = [a.data() async for a in await probe.generate({"id": context_id, "timeout": 5})]
    return answer["cancelled"]


@pytest.mark.parametrize("how", ["break", "stop_context", "cancel_task"])
async def test_cancellation_reaches_handler(deployment, client_rt, how):
    client = await client_for(deployment, client_rt, "slow")
    context = Context()
    stream = await client.generate({"interval": 0.01}, context=context)
    if how == "break":
        async for _ in stream:
            break
        del stream
    elif how == "stop_context":
        await stream.__anext__()
        context.stop_generating()
        rest = [a async for a in stream]
        assert len(rest) < 50      # the stream ends instead of running forever
    else:
        first = asyncio.Event()

        async def consume():
            async for _ in stream:
                first.set()

        task = asyncio.create_task(consume())
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await _handler_saw_end(deployment, client_rt, context.id())


async def test_handler_exception_is_typed_with_message(deployment, client_rt):
    client = await client_for(deployment, client_rt, "fail")
    stream = await client.generate({"why": "bad input 42"})
    first = await stream.__anext__()
    assert first.data() == {"i": 0}
    with pytest.raises(RemoteHandlerError, match="boom: bad input 42"):
        await stream.__anext__()


async def test_handler_error_whose_message_utf8_cannot_carry_still_ends_the_stream(deployment, client_rt):
    """A lone surrogate in the message is sent escaped (tcp used to drop the error and hang the stream)."""
    client = await client_for(deployment, client_rt, "fail")
    stream = await client.generate({"why": "odd text", "surrogate": True})
    assert (await stream.__anext__()).data() == {"i": 0}
    with pytest.raises(RemoteHandlerError, match="boom: odd text"):
        await asyncio.wait_for(stream.__anext__(), 10)


async def test_eight_megabyte_payloads(deployment, client_rt):
    client = await client_for(deployment, client_rt, "echo")
    blob = bytes(range(256)) * (8 * 1024 * 1024 // 256)
    [reply] = [a.data() async for a in await client.generate({"blob": blob})]
    assert reply["size"] == len(blob) and bytes(reply["blob"]) == blob


async def test_unknown_endpoint_fails_clearly_after_timeout(deployment, client_rt):
    client = await client_rt.endpoint(f"{deployment.namespace}.nobody.here").client(timeout=0.3)
    with pytest.raises(EndpointNotFoundError, match="nobody.here"):
        await client.generate({"n": 1})


async def test_unencodable_chunk_is_a_typed_error_not_a_broken_stream(deployment, client_rt):
    client = await client_for(deployment, client_rt, "unencodable")
    stream = await client.generate({})
    assert (await stream.__anext__()).data() == {"i": 0}
    if deployment.plane == "inproc":          # no serialization: the object arrives as is
        assert "bad" in (await stream.__anext__()).data()
        return
    with pytest.raises(RemoteHandlerError, match="object"):
        await stream.__anext__()
    # the connection still works for the next request
    count = await client_for(deployment, client_rt, "count")
    assert [a.data()["i"] async for a in await count.generate({"n": 3})] == [0, 1, 2]
