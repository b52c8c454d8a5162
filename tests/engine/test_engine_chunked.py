"""Chunked prefill under one token budget: same tokens as unchunked, decodes keep streaming, n > 1 shares blocks."""
from __future__ import annotations

import pytest

from pyimpl.llm.engine import Engine, SamplingParams

from engine_helpers import hf_greedy, make_prompts, run_staggered

FP32 = dict(dtype="float32")


@pytest.mark.parametrize("name,budget", [("llama", 7), ("mistral-window", 7), ("llama", 3)])
def test_chunked_prefill_equals_unchunked(name, budget, llama_dir, extra_model_dirs):
    """Budget 3 also gives one-token prefill chunks batched with decodes of longer sequences."""
    path = llama_dir if name == "llama" else extra_model_dirs[name]
    prompts = make_prompts((1, 9, 40, 77, 130, 3), seed=40)
    params = SamplingParams(temperature=0.0, max_tokens=10, ignore_eos=True)
    whole = Engine.from_pretrained(str(path), block_size=8, max_num_batched_tokens=4096, **FP32)
    chunked = Engine.from_pretrained(str(path), block_size=8, max_num_batched_tokens=budget, **FP32)
    want = run_staggered(whole, prompts, params, arrive_every=1)
    got = run_staggered(chunked, prompts, params, arrive_every=1)
    assert got == want
    assert want["r4"] == hf_greedy(path, prompts[4], 10)


def test_decodes_stream_while_a_long_prompt_prefills(llama_dir):
    engine = Engine.from_pretrained(str(llama_dir), block_size=16, max_num_batched_tokens=64, **FP32)
    params = SamplingParams(temperature=0.0, max_tokens=200, ignore_eos=True)
    for i, prompt in enumerate(make_prompts((5, 9, 12), seed=41)):
        engine.add_request(f"s{i}", prompt, params)
    engine.step()
    engine.add_request("long", make_prompts((1000,), seed=42)[0], SamplingParams(temperature=0.0, max_tokens=4))
    steps = 0
    while True:
        outs = {o.request_id for o in engine.step()}
        steps += 1
        assert {"s0", "s1", "s2"} <= outs, f"a decode was starved at step {steps}"
        if "long" in outs:
            break
    assert steps >= 1000 // 64  # the prompt was prefilled in budget-sized chunks


def test_long_prompt_among_short_ones(long_llama_dir):
    prompts = make_prompts((3000, 4, 17, 2, 33), seed=43)
    engine = Engine.from_pretrained(str(long_llama_dir), block_size=16, max_num_batched_tokens=512, **FP32)
    got = run_staggered(engine, prompts, SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True),
                        arrive_every=1)
    for i, prompt in enumerate(prompts):
        assert got[f"r{i}"] == hf_greedy(long_llama_dir, prompt, 8), f"prompt {i} (length {len(prompt)})"


def test_n_choices_share_the_prompt_blocks(llama_dir):
    prompt = make_prompts((64,), seed=44)[0]
    params = dict(temperature=0.0, max_tokens=6, ignore_eos=True)

    def blocks_after_first_tokens(n: int) -> tuple[int, Engine]:
        engine = Engine.from_pretrained(str(llama_dir), block_size=16, **FP32)
        engine.add_request("r", prompt, SamplingParams(n=n, **params))
        seen: set[int] = set()
        while len(seen) < n:
            seen |= {o.index for o in engine.step()}
        used = engine.stats().kv_blocks_used
        return used, engine

    one, _ = blocks_after_first_tokens(1)
    four, engine = blocks_after_first_tokens(4)
    assert one == 4
    assert four == one + 1 + 3  # choice 0's output block, one own last-prompt block per other choice (not 4 x 4)
    finals = {}
    while engine.has_unfinished_requests():
        finals.update({o.index: o.token_ids for o in engine.step() if o.finished})
    want = hf_greedy(llama_dir, prompt, 6)
    assert finals == {i: want for i in range(4)}
    assert engine.stats().kv_blocks_used == 0


def test_n_sampled_choices_differ_and_generate_batch_returns_all(llama_dir):
    engine = Engine.from_pretrained(str(llama_dir), block_size=16, **FP32)
    prompts = make_prompts((20, 7), seed=45)
    outs = engine.generate_batch(prompts, SamplingParams(n=3, temperature=1.5, seed=7, max_tokens=12,
                                                         ignore_eos=True))
    assert [(o.request_id == outs[0].request_id, o.index) for o in outs[:3]] == [(True, 0), (True, 1), (True, 2)]
    assert len(outs) == 6 and all(len(o.token_ids) == 12 for o in outs)
    assert len({tuple(o.token_ids) for o in outs[:3]}) > 1
    again = Engine.from_pretrained(str(llama_dir), block_size=16, **FP32).generate_batch(
        prompts, SamplingParams(n=3, temperature=1.5, seed=7, max_tokens=12, ignore_eos=True))
    assert [o.token_ids for o in again] == [o.token_ids for o in outs]  # seeded choices are reproducible
    assert engine.stats().kv_blocks_used == 0
