"""A worker publishes its engine's KV events and load on the event plane and answers kv_snapshot: batched
(never one message per block), the router's hashes, what a late router needs; --no-kv-events opts out;
a mock worker process with --speedup-ratio publishes over zmq to another process."""
from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from pyimpl.llm.backend.model_server import serve_model
from pyimpl.llm.engine.block_hash import sequence_block_hashes
from pyimpl.llm.kv_router.protocol import KvEventBatch, decode_batch, decode_load
from pyimpl.runtime import DistributedRuntime

from .conftest import start_worker


class Collected:
    def __init__(self, decode) -> None:
        self.decode, self.items = decode, []

    def __call__(self, subject: str, data: bytes) -> None:
        self.items.append(self.decode(data))

    async def until(self, predicate, timeout: float = 10.0):
        async def wait():
            while not predicate(self.items):
                await asyncio.sleep(0.01)
        await asyncio.wait_for(wait(), timeout)
        return self.items


def stored_hashes(batches) -> list[int]:
    return [b.block_hash for batch in batches for e in batch.events if e.kind == "stored" for b in e.blocks]


async def generate(rt, path: str, token_ids: list[int], max_tokens: int = 2) -> list[int]:
    client = await rt.endpoint(path).client()
    out = []
    async for chunk in await client.generate({"token_ids": token_ids,
                                              "stop_conditions": {"max_tokens": max_tokens, "ignore_eos": True}},
                                             annotated=False):
        out += chunk["token_ids"]
    return out


@pytest.fixture
async def mem_runtime():
    rt = await DistributedRuntime.create(mem_scope=f"kvpub-{uuid.uuid4().hex}")
    yield rt
    await rt.shutdown()


async def serve_listened(rt, model: str, namespace: str, **options):
    """A mock worker on `namespace`.backend, with collectors subscribed to its kv_events and kv_load first."""
    events, load = Collected(decode_batch), Collected(decode_load)
    await rt.events.subscribe(f"{namespace}.backend.kv_events", events)
    await rt.events.subscribe(f"{namespace}.backend.kv_load", load)
    served = await serve_model(rt, model, endpoint=f"{namespace}.backend.generate", engine="mock", **options)
    return served, events, load


async def test_a_worker_publishes_batched_events_load_and_snapshots(mem_runtime, tiny_model):
    rt = mem_runtime
    served, events, load = await serve_listened(rt, tiny_model, "kvt")
    block = served.card.kv_block_size
    prompt = list(range(100, 100 + 8 * block + 3))                     # 8 full blocks
    assert await generate(rt, "kvt.backend.generate", prompt) == prompt[:2]
    batches = await events.until(lambda b: len(stored_hashes(b)) >= 8)
    assert stored_hashes(batches)[:8] == sequence_block_hashes(prompt, block)
    assert len(batches) == 1 and batches[0].worker_id == rt.instance_id and batches[0].block_size == block
    await load.until(lambda items: any(m.worker_id == rt.instance_id for m in items))
    # a late router: the snapshot holds what was published, with the last event id
    snapshot_client = await rt.endpoint("kvt.backend.kv_snapshot").client()
    answers = [a async for a in await snapshot_client.generate({}, annotated=False)]
    snapshot = msgspec.convert(answers[0], KvEventBatch)
    assert [e.blocks[0].block_hash for e in snapshot.events] == stored_hashes(batches)
    assert snapshot.events[0].parent_hash is None
    assert snapshot.events[1].parent_hash == snapshot.events[0].blocks[0].block_hash
    assert {e.event_id for e in snapshot.events} == {batches[-1].events[-1].event_id}
    # the same prompt again: served from the cache, no new blocks
    await generate(rt, "kvt.backend.generate", prompt)
    assert served.engine.stats().prefix_cache_hits == 8 * block
    await served.stop()


async def test_no_kv_events_publishes_load_only(mem_runtime, tiny_model):
    rt = mem_runtime
    served, events, load = await serve_listened(rt, tiny_model, "nokv", kv_events=False)
    await generate(rt, "nokv.backend.generate", list(range(200)))
    await load.until(lambda items: len(items) >= 1)
    await asyncio.sleep(0.1)
    assert events.items == []
    assert not any("kv_snapshot" in key for key in await rt.discovery.list(""))
    await served.stop()


async def test_a_mock_worker_process_publishes_over_zmq(tmp_path, serving_env, tiny_model):
    env = dict(serving_env, DYN_FILE_KV=str(tmp_path))
    rt = await DistributedRuntime.create("file", "tcp", file_kv_dir=str(tmp_path))
    assert rt.config.event_plane == "zmq"
    events = Collected(decode_batch)
    await rt.events.subscribe("zkv.backend.kv_events", events)
    worker = start_worker(env, tiny_model, "--engine", "mock", "--endpoint", "zkv.backend.generate",
                          "--speedup-ratio", "1", "--block-size", "8", "--max-model-len", "8192")
    try:
        prompt = list(range(300, 300 + 3000))             # past the tiny model's 2048: --max-model-len
        for attempt in range(50):            # the subscriber joins the worker's publisher asynchronously
            await generate(rt, "zkv.backend.generate", [7, attempt] * 8, max_tokens=1)
            if events.items:
                break
            await asyncio.sleep(0.1)
        assert events.items, "no KV events reached the subscriber"
        loop = asyncio.get_running_loop()
        start = loop.time()
        await generate(rt, "zkv.backend.generate", prompt, max_tokens=1)
        cold = loop.time() - start
        start = loop.time()
        await generate(rt, "zkv.backend.generate", prompt, max_tokens=1)
        warm = loop.time() - start
        await events.until(lambda b: set(sequence_block_hashes(prompt, 8)) <= set(stored_hashes(b)))
        assert events.items[-1].block_size == 8
        assert cold > warm + 0.025           # 3000 uncached tokens: ~50 ms more than a cached prefix
    finally:
        worker.stop()
        await rt.shutdown()


def test_worker_cli_refuses_mock_options_elsewhere():
    from pyimpl.worker.__main__ import parse_args
    args = parse_args(["--model", "m", "--engine", "mock", "--speedup-ratio", "2.5", "--no-kv-events"])
    assert args.speedup_ratio == 2.5 and args.no_kv_events
    for argv in (["--speedup-ratio", "2"], ["--engine", "mock", "--speedup-ratio", "0"],
                 ["--engine", "mock", "--num-gpu-blocks", "-1"]):
        with pytest.raises(SystemExit):
            parse_args(["--model", "m", *argv])



async def test_events_from_an_engine_thread_arrive_in_order_and_batched(mem_runtime):
    """The torch engine calls back from its stepping thread: the publisher hops to the loop, keeps order."""
    from pyimpl.llm.backend.kv_publisher import start_kv_publisher
    from pyimpl.llm.backend.mock_engine import MockEngine
    from pyimpl.llm.engine.kv_events import KvCacheRemoved, KvCacheStored, StoredBlock
    rt = mem_runtime
    engine = MockEngine(block_size=4)
    events = Collected(decode_batch)
    await rt.events.subscribe("thr.backend.kv_events", events)
    publisher, keys = await start_kv_publisher(rt, engine, "thr", "backend")
    assert keys == [rt.endpoint("thr.backend.kv_snapshot").discovery_key(rt.instance_id)]

    def engine_thread() -> None:
        for i in range(1, 2001, 2):
            engine.kv.events.emit(KvCacheStored(i, None, [StoredBlock(i, i, [1, 2, 3, 4])]))
            engine.kv.events.emit(KvCacheRemoved(i + 1, [i]))
    await asyncio.to_thread(engine_thread)
    batches = await events.until(lambda b: sum(len(x.events) for x in b) == 2000)
    assert [e.event_id for b in batches for e in b.events] == list(range(1, 2001))
    assert len(batches) < 100
    assert publisher.ledger.blocks == {} and publisher.ledger.last_event_id == 2000
    await publisher.close()
