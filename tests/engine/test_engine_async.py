"""AsyncEngine: streamed deltas, concurrency, cancellation that aborts and frees blocks, shutdown."""
from __future__ import annotations

import asyncio

import pytest

from pyimpl.llm.engine import AsyncEngine, SamplingParams

from engine_helpers import hf_greedy, make_prompts

GREEDY = SamplingParams(temperature=0.0, max_tokens=12)


@pytest.fixture
async def engine(llama_dir):
    eng = AsyncEngine.from_pretrained(str(llama_dir), dtype="float32", block_size=8)
    yield eng
    await eng.shutdown()


async def _collect(engine, prompt, params, request_id):
    deltas = []
    async for out in engine.generate(prompt, params, request_id):
        deltas.append(out)
    return deltas


async def test_concurrent_streams_match_reference(engine, llama_dir):
    prompts = make_prompts((3, 17, 9, 30, 1, 12, 25, 6), seed=30)
    results = await asyncio.gather(*[_collect(engine, p, GREEDY, f"s{i}") for i, p in enumerate(prompts)])
    for prompt, deltas in zip(prompts, results):
        tokens = [t for d in deltas for t in d.new_token_ids]
        assert tokens == hf_greedy(llama_dir, prompt, 12) == deltas[-1].token_ids
        assert deltas[-1].finished and deltas[-1].finish_reason in ("stop", "length")
        assert not any(d.finished for d in deltas[:-1])
    assert engine.stats().kv_blocks_used == 0


async def test_breaking_out_of_the_stream_aborts_and_frees(engine):
    params = SamplingParams(temperature=0.0, max_tokens=500, ignore_eos=True)
    stream = engine.generate(make_prompts((20,))[0], params, "long")
    async for out in stream:
        if len(out.token_ids) >= 3:
            break
    await stream.aclose()
    await engine.barrier()
    stats = engine.stats()
    assert engine.abort_count == 1
    assert (stats.num_running, stats.num_waiting, stats.kv_blocks_used) == (0, 0, 0)


async def test_task_cancellation_aborts_and_frees(engine, llama_dir):
    params = SamplingParams(temperature=0.0, max_tokens=500, ignore_eos=True)
    first_token = asyncio.Event()

    async def consume(i):
        async for _ in engine.generate(make_prompts((10 + i,))[0], params, f"c{i}"):
            first_token.set()

    tasks = [asyncio.create_task(consume(i)) for i in range(3)]
    await first_token.wait()
    survivor_prompt = make_prompts((8,), seed=31)[0]
    survivor = asyncio.create_task(_collect(engine, survivor_prompt, GREEDY, "survivor"))
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    deltas = await survivor
    assert [t for d in deltas for t in d.new_token_ids] == hf_greedy(llama_dir, survivor_prompt, 12)
    await engine.barrier()
    assert engine.abort_count == 3
    assert engine.stats().kv_blocks_used == 0


async def test_abort_by_id_ends_the_stream(engine):
    params = SamplingParams(temperature=0.0, max_tokens=500, ignore_eos=True)
    stream = engine.generate(make_prompts((5,))[0], params, "victim")
    first = await stream.__anext__()
    assert not first.finished
    await engine.abort("victim")
    rest = [out async for out in stream]
    assert rest[-1].finished and rest[-1].finish_reason == "abort"
    assert engine.stats().kv_blocks_used == 0


async def test_invalid_request_raises_at_generate(engine):
    with pytest.raises(ValueError, match="non-empty"):
        async for _ in engine.generate([], GREEDY, "empty"):
            pass
    with pytest.raises(ValueError, match="top_k"):
        async for _ in engine.generate([1, 2], {"top_k": -5}, "badk"):
            pass
    assert [d.finished for d in await _collect(engine, [4, 5, 6], GREEDY, "ok")][-1]


async def test_event_loop_keeps_running_during_steps(engine):
    """The caller's loop keeps serving other coroutines while the engine computes."""
    ticks = 0
    stop = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    deltas = await _collect(engine, make_prompts((40,))[0], SamplingParams(temperature=0.0, max_tokens=30,
                                                                          ignore_eos=True), "tick")
    stop.set()
    await task
    assert len(deltas) == 30 and ticks >= len(deltas)


async def test_shutdown_aborts_running_requests(llama_dir):
    eng = AsyncEngine.from_pretrained(str(llama_dir), dtype="float32")
    stream = eng.generate([3, 4, 5], SamplingParams(temperature=0.0, max_tokens=1000, ignore_eos=True), "x")
    await stream.__anext__()
    await eng.shutdown()
    rest = [out async for out in stream]
    assert rest[-1].finish_reason == "abort"
    with pytest.raises(RuntimeError):
        async for _ in eng.generate([1], GREEDY):
            pass
