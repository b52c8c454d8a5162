"""The frontend's routing through ModelManager (embedded: mem discovery, inproc plane, mock workers): modes,
nvext.worker_id and nvext.backend_instance_id, KV-aware choice fed by events on the event plane."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from pyimpl.llm.backend.model_server import serve_model
from pyimpl.llm.errors import InvalidRequestError
from pyimpl.llm.frontend.model_manager import ModelManager
from pyimpl.llm.frontend.routing import RouterSettings
from pyimpl.runtime import DistributedRuntime

WORKER_ID = {"extra_fields": ["worker_id"]}


async def start_workers(tiny_model, count: int, scope: str):
    served = []
    for _ in range(count):
        rt = await DistributedRuntime.create(discovery_backend="mem", request_plane="inproc", mem_scope=scope)
        served.append((rt, await serve_model(rt, tiny_model, model_name="tiny", engine="mock")))
    return served


@pytest.fixture
async def deployment(tiny_model, request):
    """Three mock workers (own runtimes) and a frontend runtime in one mem scope; yields (make_manager, ids)."""
    scope = f"routing-{uuid.uuid4().hex}"
    workers = await start_workers(tiny_model, 3, scope)
    frontend_rt = await DistributedRuntime.create(discovery_backend="mem", request_plane="inproc", mem_scope=scope)
    managers = []

    async def make_manager(on_route=None, **settings) -> ModelManager:
        manager = ModelManager(frontend_rt, no_worker_wait_s=0.5, router=RouterSettings(**settings), on_route=on_route)
        await manager.start()
        await manager.wait_for_model("tiny", timeout=10)
        while len(manager.models["tiny"].client.instance_ids()) < 3:
            await asyncio.sleep(0.01)
        managers.append(manager)
        return manager

    try:
        yield make_manager, sorted(rt.instance_id for rt, _ in workers)
    finally:
        for manager in managers:
            await manager.stop()
        for rt, served in workers:
            await served.stop()
            await rt.shutdown()
        await frontend_rt.shutdown()


def chat(content: str, **extra) -> dict:
    return {"model": "tiny", "messages": [{"role": "user", "content": content}], "max_tokens": 2, **extra}


async def test_worker_id_in_unary_and_streamed_answers(deployment):
    make_manager, ids = deployment
    manager = await make_manager()
    seen = set()
    for i in range(3):
        body = await manager.chat_completion(chat(f"hello {i}", nvext=WORKER_ID))
        seen.add(body["nvext"]["worker_id"])
    assert seen == set(ids)                                          # round robin over the three
    chunks = [c async for c in manager.chat_completion_stream(chat("x", stream=True, nvext=WORKER_ID))]
    assert chunks[-1]["nvext"]["worker_id"] in ids
    plain = await manager.chat_completion(chat("no nvext"))
    assert "nvext" not in plain


async def test_backend_instance_id_pins_the_request(deployment):
    make_manager, ids = deployment
    for mode in ("round-robin", "random", "kv"):
        manager = await make_manager(mode=mode)
        for i in range(4):
            body = await manager.completion({"model": "tiny", "prompt": f"pin {i}", "max_tokens": 2,
                                             "nvext": {"backend_instance_id": ids[1], "extra_fields": ["worker_id"]}})
            assert body["nvext"]["worker_id"] == ids[1]
        with pytest.raises(InvalidRequestError, match="backend_instance_id"):
            await manager.completion({"model": "tiny", "prompt": "x", "nvext": {"backend_instance_id": 12345}})


async def test_random_mode_reaches_every_worker(deployment):
    make_manager, ids = deployment
    manager = await make_manager(mode="random")
    seen = {(await manager.completion({"model": "tiny", "prompt": f"r{i}", "max_tokens": 1,
                                       "nvext": WORKER_ID}))["nvext"]["worker_id"] for i in range(40)}
    assert seen == set(ids)


async def test_kv_approximate_mode_keeps_a_prefix_on_one_worker(deployment):
    make_manager, ids = deployment
    routes = []
    manager = await make_manager(mode="kv", use_kv_events=False, kv_cache_block_size=4,
                                 on_route=lambda model, decision: routes.append(decision))
    prefix = list(range(100, 164))
    first = None
    for i in range(5):
        body = await manager.completion({"model": "tiny", "prompt": prefix + [200 + i] * 4, "max_tokens": 2,
                                         "nvext": WORKER_ID})
        first = first or body["nvext"]["worker_id"]
        assert body["nvext"]["worker_id"] == first
    assert routes[0].overlap_blocks == 0 and all(r.overlap_blocks == 16 for r in routes[1:])
    distinct = {(await manager.completion({"model": "tiny", "prompt": [300 + i] * 64, "max_tokens": 2,
                                           "nvext": WORKER_ID}))["nvext"]["worker_id"] for i in range(3)}
    assert len(distinct) >= 2


def test_router_settings_are_checked():
    for bad in ({"mode": "fastest"}, {"router_temperature": -1}, {"kv_cache_block_size": 0},
                {"overlap_score_weight": -0.1}):
        with pytest.raises(ValueError):
            RouterSettings(**bad)


def test_kv_routing_metrics_and_flags():
    from pyimpl.frontend.__main__ import parse_args, router_settings
    from pyimpl.llm.frontend.http.metrics import FrontendMetrics
    from pyimpl.llm.kv_router.router import RouteDecision

    metrics = FrontendMetrics()
    metrics.observe_route("tiny", RouteDecision(worker_id=1, overlap_blocks=3, prompt_blocks=4, cached_tokens=48))
    text = metrics.render().decode()
    assert 'dynamo_frontend_kv_hit_rate_sum{model="tiny"} 0.75' in text
    assert 'dynamo_frontend_cached_tokens_sum{model="tiny"} 48.0' in text
    args = parse_args(["--router-mode", "kv", "--kv-overlap-score-weight", "2", "--router-temperature", "0.5",
                       "--no-kv-events", "--kv-cache-block-size", "32"])
    assert router_settings(args) == RouterSettings("kv", 2.0, 0.5, False, 32)
    assert router_settings(parse_args([])) == RouterSettings()


def test_c_runtime_config_takes_the_routing_keys(monkeypatch):
    from pyimpl.capi.config import parse_config
    from pyimpl.capi.status import CapiError

    monkeypatch.delenv("DYN_ROUTER_MODE", raising=False)
    config = parse_config('{"router_mode": "kv", "kv_overlap_score_weight": 2, "router_temperature": 0.25, '
                          '"no_kv_events": true, "kv_cache_block_size": 32}')
    assert config.router_settings() == RouterSettings("kv", 2.0, 0.25, False, 32)
    assert parse_config("{}").router_settings() == RouterSettings()
    monkeypatch.setenv("DYN_ROUTER_MODE", "random")
    assert parse_config("{}").router_mode == "random"
    for bad, words in (('{"router_mode": "fastest"}', "router_mode"), ('{"router_temperature": -1}', "number >= 0"),
                       ('{"kv_cache_block_size": 0}', "block size"), ('{"no_kv_events": 1}', "true or false")):
        with pytest.raises(CapiError, match=words):
            parse_config(bad)
    monkeypatch.setenv("DYN_ROUTER_MODE", "fastest")
    with pytest.raises(CapiError, match="DYN_ROUTER_MODE"):
        parse_config("{}")
