"""SamplingParams.prompt_logprobs: every prompt token's logprob (and top k) equals a plain full forward pass of the
same model, whether the prompt's prefix is cached, the prompt is prefilled in chunks, or the rows are bounded."""
from __future__ import annotations

import asyncio

import pytest
import torch

from pyimpl.llm.engine import AsyncEngine, Engine, SamplingParams
from pyimpl.llm.errors import EngineRequestError

from engine_helpers import _hf_model, make_prompts

FP32 = dict(dtype="float32")
TOL = 1e-4


def reference(path, prompt: list[int]) -> torch.Tensor:
    """transformers' log-softmax over the whole prompt in one forward: row q predicts token q+1."""
    with torch.inference_mode():
        logits = _hf_model(str(path))(input_ids=torch.tensor([prompt])).logits[0].float()
    return torch.log_softmax(logits, dim=-1)


def assert_matches(path, prompt: list[int], lps, tops, k: int) -> None:
    ref = reference(path, prompt)
    assert len(lps) == len(tops) == len(prompt)
    assert lps[0] is None and tops[0] is None       # nothing predicts the first token
    for q in range(len(prompt) - 1):
        assert lps[q + 1] == pytest.approx(ref[q, prompt[q + 1]].item(), abs=TOL)
        values, ids = ref[q].topk(k)
        assert len(tops[q + 1]) == k
        assert sorted(tops[q + 1].values(), reverse=True) == pytest.approx(values.tolist(), abs=TOL)
        assert set(tops[q + 1]) == set(ids.tolist()) or k == 0


@pytest.fixture(scope="module")
def engine(llama_dir):
    return Engine.from_pretrained(str(llama_dir), block_size=8, **FP32)


def test_prompt_logprobs_equal_a_full_forward(engine, llama_dir):
    prompts = make_prompts((1, 7, 40), seed=3)
    outs = engine.generate_batch(prompts, SamplingParams(temperature=0.0, max_tokens=2, prompt_logprobs=3))
    for prompt, out in zip(prompts, outs):
        assert_matches(llama_dir, prompt, out.prompt_logprobs, out.prompt_top_logprobs, 3)
    plain = engine.generate_batch(prompts, SamplingParams(temperature=0.0, max_tokens=2))
    assert [o.token_ids for o in plain] == [o.token_ids for o in outs]    # what is generated does not change
    assert all(o.prompt_logprobs is None for o in plain)


def test_a_cached_prefix_is_recomputed_not_reused(engine, llama_dir):
    prompt = make_prompts((45,), seed=5)[0]
    engine.generate_batch([prompt], SamplingParams(temperature=0.0, max_tokens=1))   # caches its 5 full blocks
    hits = engine.stats().prefix_cache_hits
    out = engine.generate_batch([prompt], SamplingParams(temperature=0.0, max_tokens=1, prompt_logprobs=0))[0]
    assert engine.stats().prefix_cache_hits == hits
    assert_matches(llama_dir, prompt, out.prompt_logprobs, out.prompt_top_logprobs, 0)
    again = engine.generate_batch([prompt], SamplingParams(temperature=0.0, max_tokens=1))   # the cache still works
    assert engine.stats().prefix_cache_hits > hits and again[0].token_ids == out.token_ids


def test_chunked_prefill_keeps_every_chunks_rows(llama_dir):
    chunked = Engine.from_pretrained(str(llama_dir), block_size=8, max_num_batched_tokens=7, **FP32)
    prompts = make_prompts((40, 23), seed=7)
    outs = chunked.generate_batch(prompts, SamplingParams(temperature=0.0, max_tokens=3, prompt_logprobs=2))
    for prompt, out in zip(prompts, outs):
        assert_matches(llama_dir, prompt, out.prompt_logprobs, out.prompt_top_logprobs, 2)


def test_rows_per_step_are_bounded(llama_dir):
    """A long prompt never has all its rows' logits at once: at most max_prompt_logprob_rows per step."""
    engine = Engine.from_pretrained(str(llama_dir), block_size=8, max_num_batched_tokens=512, **FP32)
    engine.scheduler.max_prompt_logprob_rows = 16
    model = engine.runner.model
    forward, rows = model.forward, []

    def counting(input_ids, meta, kv_cache, logits_index):
        rows.append(logits_index.numel())
        return forward(input_ids, meta, kv_cache, logits_index)

    model.forward = counting
    prompt = make_prompts((100,), seed=9)[0]
    out = engine.generate_batch([prompt], SamplingParams(temperature=0.0, max_tokens=2, prompt_logprobs=1))[0]
    assert max(rows) <= 16 and len(rows) >= 100 // 16
    assert_matches(llama_dir, prompt, out.prompt_logprobs, out.prompt_top_logprobs, 1)


def test_every_choice_gets_the_prompt_logprobs(engine):
    prompt = make_prompts((20,), seed=11)[0]
    outs = engine.generate_batch([prompt], SamplingParams(n=2, temperature=1.0, seed=1, max_tokens=2,
                                                          prompt_logprobs=1))
    assert len(outs) == 2 and outs[0].prompt_logprobs == outs[1].prompt_logprobs
    assert len(outs[0].prompt_logprobs) == 20


def test_wire_request_and_first_output_only(llama_dir):
    async def main():
        engine = AsyncEngine.from_pretrained(str(llama_dir), block_size=8, **FP32)
        try:
            prompt = make_prompts((12,), seed=13)[0]
            params = engine.make_params({"stop_conditions": {"max_tokens": 3, "ignore_eos": True},
                                         "sampling_options": {"temperature": 0.0},
                                         "output_options": {"prompt_logprobs": 2}})
            outs = [o async for o in engine.generate(prompt, params, "w1")]
            assert len(outs[0].prompt_logprobs) == 12 and len(outs[0].prompt_top_logprobs[1]) == 2
            assert all(o.prompt_logprobs is None for o in outs[1:])
            with pytest.raises(EngineRequestError):
                engine.make_params({"output_options": {"prompt_logprobs": 21}})
        finally:
            await engine.shutdown()
    asyncio.run(main())


def test_preempted_requests_keep_their_prompt_logprobs(llama_dir):
    """A request preempted (its KV dropped, recomputed later) scores each prompt token once, correctly."""
    engine = Engine.from_pretrained(str(llama_dir), block_size=8, num_kv_blocks=12, max_model_len=90,
                                    max_num_batched_tokens=8, **FP32)
    prompts = make_prompts((40, 41, 30), seed=21)
    outs = engine.generate_batch(prompts, SamplingParams(temperature=0.0, max_tokens=30, ignore_eos=True,
                                                         prompt_logprobs=1))
    assert engine.scheduler.num_preemptions > 0
    for prompt, out in zip(prompts, outs):
        assert_matches(llama_dir, prompt, out.prompt_logprobs, out.prompt_top_logprobs, 1)
