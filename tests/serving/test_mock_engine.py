"""The mock engine as a stand-in for a real one: the echo contract, make_params' 400s, prefix caching seen
in stats and KV events, eviction and preemption under a small cache, cancellation, and the timing model
(prefill cost grows with uncached tokens; --speedup-ratio divides it)."""
from __future__ import annotations

import asyncio
import time

import pytest

from pyimpl.llm.backend.engine_api import GenerateEngine
from pyimpl.llm.backend.mock_engine import MockEngine, MockSamplingParams, PerfModel
from pyimpl.llm.engine.block_hash import sequence_block_hashes
from pyimpl.llm.engine.kv_events import KvCacheCleared, KvCacheRemoved, KvCacheStored
from pyimpl.llm.errors import EngineRequestError

EOS = 2


async def run(engine: MockEngine, prompt: list[int], request_id: str, **params) -> list:
    return [out async for out in engine.generate(prompt, MockSamplingParams(**params), request_id)]


def tokens(outs: list) -> list[int]:
    return [t for out in outs for t in out.new_token_ids]


async def test_echo_contract_is_kept():
    engine = MockEngine(eos_token_ids=[EOS])
    assert isinstance(engine, GenerateEngine)
    outs = await run(engine, [5, EOS, 6, 7], "a", max_tokens=10)
    assert tokens(outs) == [5, 6, 7, EOS] and outs[-1].finish_reason == "stop"
    assert outs[-1].token_ids == [5, 6, 7, EOS] and all(not o.finished for o in outs[:-1])
    outs = await run(engine, [5, 6, 7], "b", max_tokens=5, ignore_eos=True)
    assert tokens(outs) == [5, 6, 7, 5, 6] and outs[-1].finish_reason == "length"
    assert tokens(await run(engine, [5, 6, 7], "c", max_tokens=9, stop_token_ids=[7])) == [5, 6, 7]
    assert tokens(await run(engine, [5, 6], "d", max_tokens=9, min_tokens=4)) == [5, 6, 5, 6, EOS]
    outs = await run(engine, [5], "e", max_tokens=1, logprobs=2)
    assert outs[0].logprobs == [-0.5] and list(outs[0].top_logprobs[0]) == [5, 6]
    assert tokens(await run(engine, [], "f", max_tokens=2, ignore_eos=True)) == [0, 0]
    # a stop id seen before min_tokens does not stop; the next one does
    outs = await run(engine, [5, 6, 7], "g", max_tokens=9, min_tokens=3, stop_token_ids=[6], ignore_eos=True)
    assert tokens(outs) == [5, 6, 7, 5, 6] and outs[-1].finish_reason == "stop"
    # logprobs on every output, decodes included
    outs = await run(engine, [5, 6], "h", max_tokens=3, logprobs=1, ignore_eos=True)
    assert [o.logprobs for o in outs] == [[-0.5]] * 3 and [list(o.top_logprobs[0]) for o in outs] == [[5], [6], [5]]
    assert engine.finished_count == 8 and engine.abort_count == 0


def test_make_params_refuses_unknown_and_invalid_fields():
    engine = MockEngine()
    params = engine.make_params({"sampling_options": {"temperature": 0.7, "seed": 3, "top_k": None},
                                 "stop_conditions": {"max_tokens": 9, "min_tokens": 1, "stop_token_ids": [4],
                                                     "ignore_eos": True},
                                 "output_options": {"logprobs": 3}})
    assert (params.max_tokens, params.min_tokens, params.stop_token_ids, params.ignore_eos, params.logprobs) == \
        (9, 1, [4], True, 3)
    assert params.extra == {"temperature": 0.7, "seed": 3}
    for wire, field in [({"sampling_options": {"temprature": 1.0}}, "sampling_options.temprature"),
                        ({"stop_conditions": {"stop": ["x"]}}, "stop_conditions.stop"),
                        ({"sampling_options": {"n": 2}}, "sampling_options.n"),
                        ({"sampling_options": {"top_p": 1.5}}, "top_p"),
                        ({"sampling_options": {"temperature": "hot"}}, "temperature"),
                        ({"stop_conditions": {"max_tokens": 0}}, "max_tokens"),
                        ({"stop_conditions": {"max_tokens": 2, "min_tokens": 3}}, "min_tokens"),
                        ({"stop_conditions": {"ignore_eos": "yes"}}, "ignore_eos"),
                        ({"output_options": {"logprobs": 21}}, "logprobs")]:
        with pytest.raises(EngineRequestError) as info:
            engine.make_params(wire)
        assert info.value.status == 400 and info.value.param == field


async def test_prefix_hits_show_in_stats_and_events():
    engine = MockEngine(eos_token_ids=[EOS], block_size=4)
    events = []
    unsubscribe = engine.subscribe_kv_events(events.append)
    shared = list(range(10, 26))                                     # 4 full blocks
    await run(engine, shared + [30, 31, 32], "a", max_tokens=1)
    stored = [b.block_hash for e in events if isinstance(e, KvCacheStored) for b in e.blocks]
    assert stored == sequence_block_hashes(shared, 4)                 # the router's hashes
    assert events[0].parent_hash is None and events[0].blocks[1].token_ids == [14, 15, 16, 17]
    stats = engine.stats()
    assert (stats.prefix_cache_hits, stats.prefix_cache_queries, stats.kv_blocks_used) == (0, 19, 0)
    events.clear()
    await run(engine, shared + [40, 41, 42, 43, 44], "b", max_tokens=1)
    stats = engine.stats()
    assert stats.prefix_cache_hits == 16 and stats.prefix_cache_queries == 19 + 21
    assert stats.prefix_cache_hit_rate == pytest.approx(16 / 40)
    new = [e for e in events if isinstance(e, KvCacheStored)]
    assert len(new) == 1 and new[0].parent_hash == sequence_block_hashes(shared, 4)[-1]
    assert [b.token_ids for b in new[0].blocks] == [[40, 41, 42, 43]]
    unsubscribe()
    await run(engine, [1, 2, 3, 4, 5], "c", max_tokens=1)
    assert len(new) == 1 and len(events) == 1                         # unsubscribed: nothing more
    assert engine.reset_prefix_cache()


async def test_a_small_cache_evicts_least_recent_blocks_and_preempts():
    engine = MockEngine(eos_token_ids=[EOS], block_size=4, num_gpu_blocks=8)
    events = []
    engine.subscribe_kv_events(events.append)
    await run(engine, list(range(100, 116)), "a", max_tokens=1)      # 4 blocks cached
    await run(engine, list(range(200, 224)), "b", max_tokens=1)      # 6 needed: 2 of a's evicted
    removed = [h for e in events if isinstance(e, KvCacheRemoved) for h in e.block_hashes]
    a_hashes = sequence_block_hashes(list(range(100, 116)), 4)
    assert len(removed) == 2 and set(removed) <= set(a_hashes)
    assert removed[0] == a_hashes[-1]                                 # a's tail went first
    # two requests that cannot both grow to their length: one is preempted and recomputed, both finish
    outs = await asyncio.gather(run(engine, list(range(300, 312)), "c", max_tokens=12, ignore_eos=True),
                                run(engine, list(range(400, 412)), "d", max_tokens=12, ignore_eos=True))
    assert [tokens(o) for o in outs] == [list(range(300, 312)), list(range(400, 412))]
    assert engine.num_preemptions >= 1 and engine.stats().kv_blocks_used == 0
    with pytest.raises(EngineRequestError, match="KV blocks"):
        await run(engine, list(range(40)), "too-big")
    assert engine.reset_prefix_cache() and isinstance(events[-1], KvCacheCleared)


async def test_cancellation_releases_the_request():
    engine = MockEngine(eos_token_ids=[EOS], block_size=4, perf_model=PerfModel(speedup_ratio=1000),
                        step_delay_s=0.01)
    stream = engine.generate(list(range(50, 70)), MockSamplingParams(max_tokens=1000, ignore_eos=True), "x")
    first = await stream.__anext__()
    assert first.new_token_ids == [50] and engine.stats().num_running == 1
    await engine.abort("x")
    rest = [out async for out in stream]
    assert rest[-1].finished and rest[-1].finish_reason == "abort"
    assert engine.abort_count == 1 and engine.stats().kv_blocks_used == 0
    stream = engine.generate(list(range(50, 70)), MockSamplingParams(max_tokens=1000, ignore_eos=True), "y")
    await stream.__anext__()
    await stream.aclose()                                             # the client went away
    assert engine.abort_count == 2 and engine.stats().num_running == 0 and engine.stats().kv_blocks_used == 0
    with pytest.raises(EngineRequestError, match="context"):
        await run(engine, [1] * 5000, "long")
    await engine.shutdown()


async def ttft_and_total(engine: MockEngine, prompt: list[int], request_id: str, max_tokens: int = 1):
    start = time.perf_counter()
    ttft = None
    async for out in engine.generate(prompt, MockSamplingParams(max_tokens=max_tokens, ignore_eos=True),
                                     request_id):
        ttft = ttft if ttft is not None else time.perf_counter() - start
    return ttft, time.perf_counter() - start


async def test_prefill_time_grows_with_uncached_tokens():
    engine = MockEngine(max_model_len=16384, perf_model=PerfModel(speedup_ratio=1.0))
    prompt = list(range(8000))
    expected = PerfModel.prefill_ms(8000) / 1000                      # about 0.17 s
    cold, _ = await ttft_and_total(engine, prompt, "cold")
    warm, _ = await ttft_and_total(engine, prompt, "warm")            # all but the last block cached
    short, _ = await ttft_and_total(engine, list(range(20000, 20800)), "short")
    assert cold >= expected * 0.95
    assert warm < cold / 3 and short < cold / 2
    assert engine.stats().prefix_cache_hits == 8000 - 16          # every block but the last token's


async def test_speedup_ratio_divides_the_time():
    prompt = list(range(4000))
    _, slow = await ttft_and_total(MockEngine(perf_model=PerfModel(1.0)), prompt, "s", max_tokens=20)
    _, fast = await ttft_and_total(MockEngine(perf_model=PerfModel(5.0)), prompt, "f", max_tokens=20)
    predicted = (PerfModel.prefill_ms(4000) + 19 * PerfModel.decode_ms(0.0)) / 1000
    assert slow >= predicted * 0.95
    assert slow / fast > 3.0
    with pytest.raises(ValueError):
        PerfModel(0)


async def test_a_slow_reader_holds_its_request_back_without_busy_waiting():
    engine = MockEngine(eos_token_ids=[EOS])
    stream = engine.generate([5, 6, 7], MockSamplingParams(max_tokens=100_000, ignore_eos=True), "slow")
    await stream.__anext__()
    await asyncio.sleep(0.2)
    steps = engine.num_steps
    await asyncio.sleep(0.2)
    assert engine.num_steps == steps < 200          # paused at the unread limit, not spinning
    other = await run(engine, [9, 8], "other", max_tokens=3, ignore_eos=True)
    assert tokens(other) == [9, 8, 9]               # others are served meanwhile
    more = [(await stream.__anext__()).new_token_ids[0] for _ in range(300)]   # reading resumes it
    assert more == [[5, 6, 7][i % 3] for i in range(1, 301)]
    await stream.aclose()
    assert engine.abort_count == 1 and engine.stats().num_running == 0


async def test_decode_slows_as_the_batch_fills_the_cache():
    def engine() -> MockEngine:
        return MockEngine(block_size=16, num_gpu_blocks=100, perf_model=PerfModel(speedup_ratio=2.0))

    async def inter_token(e: MockEngine, request_id: str) -> float:
        stamps = []
        async for _ in e.generate(list(range(32)), MockSamplingParams(max_tokens=20, ignore_eos=True), request_id):
            stamps.append(time.perf_counter())
        return (stamps[-1] - stamps[1]) / (len(stamps) - 2)

    alone = await inter_token(engine(), "alone")
    busy = engine()
    background = [asyncio.create_task(run(busy, list(range(1000 * i, 1000 * i + 150)), f"bg{i}", max_tokens=200,
                                          ignore_eos=True)) for i in range(8)]
    await asyncio.sleep(0.05)
    crowded = await inter_token(busy, "crowded")
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    assert alone >= 0.9 * PerfModel.decode_ms(0.03) / 2000                  # ~3.7 ms
    assert crowded >= 0.9 * PerfModel.decode_ms(0.7) / 2000                 # ~80 of 100 blocks in use: ~15 ms
    assert crowded > 2 * alone
