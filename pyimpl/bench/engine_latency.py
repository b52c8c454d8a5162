"""Latency and memory parts of the engine benchmark: ITL under a long prefill, mixed prefill, batch-1 decode, RSS."""
from __future__ import annotations

import gc
import random
import statistics
import time

import psutil
import torch

from pyimpl.llm.engine import Engine, SamplingParams


def _prompt(rng: random.Random, n: int, vocab: int) -> list[int]:
    return [rng.randrange(10, vocab) for _ in range(n)]


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def itl_under_prefill(engine: Engine, long_prompt: int, decoders: int, steps: int = 20) -> tuple[float, float]:
    """p99 inter-token latency (seconds) of `decoders` streaming requests over `steps` steps alone, then while a
    `long_prompt`-token prompt arrives and is prefilled (until its first token)."""
    rng = random.Random(2)
    engine.reset_prefix_cache()
    params = SamplingParams(temperature=0.0, max_tokens=steps * 4 + long_prompt, ignore_eos=True)
    ids = [f"itl{i}" for i in range(decoders)]
    for rid in ids:
        engine.add_request(rid, _prompt(rng, 128, engine.vocab_size), params)
    last: dict[str, float] = {}
    while len(last) < decoders:  # every stream has its first token
        for out in engine.step():
            last[out.request_id] = time.perf_counter()

    def gaps(until) -> list[float]:
        found = []
        while not until():
            outs = engine.step()
            now = time.perf_counter()
            for out in outs:
                if out.request_id in last:
                    found.append(now - last[out.request_id])
                    last[out.request_id] = now
        return found

    counter = iter(range(steps + 1))
    alone = gaps(lambda: next(counter) == steps)
    engine.add_request("itl-long", _prompt(rng, long_prompt, engine.vocab_size),
                       SamplingParams(temperature=0.0, max_tokens=1, ignore_eos=True))
    during = gaps(lambda: "itl-long" not in engine.requests)
    for rid in ids:
        engine.abort_request(rid)
    return _p99(alone), _p99(during)


def mixed_prefill(engine: Engine, long_prompt: int, short: int) -> tuple[float, float]:
    """Seconds for one long prompt plus `short` one-token prompts (one output token each) together, and apart."""
    rng = random.Random(3)
    params = SamplingParams(temperature=0.0, max_tokens=1, ignore_eos=True)

    def timed(prompts: list[list[int]]) -> float:
        engine.reset_prefix_cache()
        start = time.perf_counter()
        engine.generate_batch(prompts, params)
        return time.perf_counter() - start

    def group() -> tuple[list[int], list[list[int]]]:
        return _prompt(rng, long_prompt, engine.vocab_size), [_prompt(rng, 1, engine.vocab_size)
                                                               for _ in range(short)]

    long_1, shorts_1 = group()
    together = timed([long_1] + shorts_1)
    long_2, shorts_2 = group()
    apart = timed([long_2]) + timed(shorts_2)
    return together, apart


def decode_step_ms(engine: Engine, prompt_len: int, steps: int) -> float:
    """Median time of one batch-1 decode step of our engine."""
    engine.add_request("decode-probe", list(range(10, 10 + prompt_len)),
                       SamplingParams(temperature=0.0, max_tokens=steps + 5, ignore_eos=True))
    while not engine.requests["decode-probe"][0].output_token_ids:
        engine.step()  # prefill
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        engine.step()
        times.append(time.perf_counter() - t)
    engine.abort_request("decode-probe")
    return statistics.median(times) * 1000


def hf_decode_step_ms(model, prompt_len: int, steps: int) -> float:
    """Median time of a bare transformers forward step with its KV cache (batch 1), greedy argmax included."""
    from transformers import DynamicCache

    with torch.inference_mode():
        ids = torch.tensor([list(range(10, 10 + prompt_len))])
        out = model(input_ids=ids, past_key_values=DynamicCache(), use_cache=True)
        token = out.logits[:, -1:].argmax(-1)
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            out = model(input_ids=token, past_key_values=out.past_key_values, use_cache=True)
            token = out.logits[:, -1:].argmax(-1)
            token.item()
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def rss_run(engine: Engine, n: int, concurrency: int) -> tuple[float, float, float]:
    """Push n short requests through the engine; RSS in MiB at the start, after the first 10% (the KV cache's
    zeroed pages are touched lazily, so RSS first grows to the pool's working set) and at the end."""
    proc = psutil.Process()
    rng = random.Random(1)
    gc.collect()
    start = proc.memory_info().rss / 2**20
    warm = None
    submitted = 0
    while submitted < n or engine.has_unfinished_requests():
        if warm is None and submitted >= n // 10:
            gc.collect()
            warm = proc.memory_info().rss / 2**20
        while submitted < n and len(engine.requests) < concurrency:
            engine.add_request(f"rss{submitted}", _prompt(rng, rng.randint(4, 24), engine.vocab_size),
                               SamplingParams(temperature=0.0, max_tokens=rng.randint(1, 8), ignore_eos=True))
            submitted += 1
        engine.step()
    gc.collect()
    return start, warm if warm is not None else start, proc.memory_info().rss / 2**20
