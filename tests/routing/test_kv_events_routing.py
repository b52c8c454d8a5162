"""KV routing fed by real KV events: mock workers (prefix caching, KV events on the mem event plane) behind a
ModelManager in kv mode: a repeated prefix stays on its worker, a late router catches up from snapshots, a worker
that leaves vanishes from the index."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from pyimpl.llm.backend.model_server import serve_model
from pyimpl.llm.frontend.model_manager import ModelManager
from pyimpl.llm.frontend.routing import RouterSettings
from pyimpl.runtime import DistributedRuntime

PREFIX = list(range(100, 164))                  # 4 blocks of 16 (the mock's block size)


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def cluster(tiny_model):
    """(workers [(rt, served)], make_manager(**settings)) on one mem scope."""
    scope = f"kv-events-{uuid.uuid4().hex}"
    kw = dict(discovery_backend="mem", request_plane="inproc", mem_scope=scope)
    workers = []
    for _ in range(3):
        rt = await DistributedRuntime.create(**kw)
        workers.append((rt, await serve_model(rt, tiny_model, model_name="tiny", engine="mock")))
    frontend_rt = await DistributedRuntime.create(**kw)
    managers = []

    async def make_manager(**settings) -> ModelManager:
        manager = ModelManager(frontend_rt, no_worker_wait_s=1.0, router=RouterSettings(**settings))
        await manager.start()
        await manager.wait_for_model("tiny", timeout=10)
        await until(lambda: len(manager.models["tiny"].client.instance_ids()) == len(workers))
        if manager.models["tiny"].router.kv is not None:
            await manager.models["tiny"].router.wait_synced(5.0)
        managers.append(manager)
        return manager

    try:
        yield workers, make_manager
    finally:
        for manager in managers:
            await manager.stop()
        for rt, served in workers:
            if not served.stopped:
                await served.stop()
            await rt.shutdown()
        await frontend_rt.shutdown()


async def served_by(manager: ModelManager, prompt: list[int]) -> int:
    body = await manager.completion({"model": "tiny", "prompt": prompt, "max_tokens": 2,
                                     "nvext": {"extra_fields": ["worker_id"]}})
    return body["nvext"]["worker_id"]


async def test_repeated_prefix_goes_to_the_same_worker(cluster):
    _, make_manager = cluster
    manager = await make_manager(mode="kv")
    kv = manager.models["tiny"].router.kv
    first = await served_by(manager, PREFIX + [7, 8, 9])
    await until(lambda: kv.find_matches(PREFIX).get(first) == 4)      # the worker's stored events arrived
    assert all([await served_by(manager, PREFIX + [10 + i] * 5) == first for i in range(6)])
    others = await asyncio.gather(*(served_by(manager, [500 + i] * 64) for i in range(3)))
    assert len(set(others)) == 3                                       # distinct prefixes in flight spread


async def test_a_late_router_catches_up_from_snapshots(cluster):
    workers, make_manager = cluster
    early = await make_manager()                                       # round robin: one prompt per worker
    prompts = {await served_by(early, [300 + i] * 64): [300 + i] * 64 for i in range(3)}
    assert len(prompts) == 3
    late = await make_manager(mode="kv")
    kv = late.models["tiny"].router.kv
    for worker, prompt in prompts.items():
        assert kv.find_matches(prompt) == {worker: 4}
        assert await served_by(late, prompt + [1, 2, 3]) == worker


async def test_a_worker_that_leaves_vanishes_from_the_index(cluster):
    workers, make_manager = cluster
    manager = await make_manager(mode="kv")
    kv = manager.models["tiny"].router.kv
    worker = await served_by(manager, PREFIX)
    await until(lambda: kv.find_matches(PREFIX) == {worker: 4})
    rt, served = next((rt, s) for rt, s in workers if rt.instance_id == worker)
    await served.stop()
    await rt.shutdown()
    await until(lambda: kv.indexer.num_blocks(worker) == 0 and worker not in kv.indexer.worker_ids())
    assert await served_by(manager, PREFIX) != worker


async def test_approximate_mode_without_worker_events(tiny_model):
    scope = f"kv-approx-{uuid.uuid4().hex}"
    kw = dict(discovery_backend="mem", request_plane="inproc", mem_scope=scope)
    workers = []
    for _ in range(2):
        rt = await DistributedRuntime.create(**kw)
        workers.append((rt, await serve_model(rt, tiny_model, model_name="tiny", engine="mock", kv_events=False)))
    frontend_rt = await DistributedRuntime.create(**kw)
    manager = ModelManager(frontend_rt, router=RouterSettings(mode="kv", use_kv_events=False))
    try:
        await manager.start()
        await manager.wait_for_model("tiny", timeout=10)
        await until(lambda: len(manager.models["tiny"].client.instance_ids()) == 2)
        first = await served_by(manager, PREFIX + [1])
        assert all([await served_by(manager, PREFIX + [2 + i]) == first for i in range(4)])
        hits = sum(s.engine.stats().prefix_cache_hits for _, s in workers)
        assert hits >= 4 * len(PREFIX)                                  # the worker really had it cached
    finally:
        await manager.stop()
        for rt, served in workers:
            await served.stop()
            await rt.shutdown()
        await frontend_rt.shutdown()
