"""Sampling: seeded reproducibility, stop rules, logprobs, penalties/bias, and ValueError naming bad fields."""
from __future__ import annotations

import math

import pytest
import torch

from pyimpl.llm.engine import Engine, SamplingParams
from pyimpl.llm.engine.sampler import Sampler
from pyimpl.llm.engine.sequence import Sequence

from engine_helpers import hf_greedy, make_prompts


@pytest.fixture(scope="module")
def engine(llama_dir):
    return Engine.from_pretrained(str(llama_dir), dtype="float32", block_size=8)


def _run(engine, prompts, params):
    return [o.token_ids for o in engine.generate_batch(prompts, params)]


def test_seeded_sampling_is_reproducible_across_batches(engine):
    prompts = make_prompts((6, 15, 30), seed=11)
    seeded = [SamplingParams(temperature=1.0, top_p=0.9, top_k=50, seed=s, max_tokens=20, ignore_eos=True)
              for s in (1, 2, 1)]
    mixed = _run(engine, prompts, seeded)
    alone = [_run(engine, [p], [sp])[0] for p, sp in zip(prompts, seeded)]
    assert mixed == alone
    same_prompt = _run(engine, [prompts[0]] * 2, [seeded[0], seeded[1]])
    assert same_prompt[0] != same_prompt[1]  # different seeds, different text


def test_greedy_rows_unaffected_by_sampled_neighbours(engine, llama_dir):
    prompts = make_prompts((9, 4, 21), seed=12)
    params = [SamplingParams(temperature=0.0, max_tokens=12), SamplingParams(temperature=1.5, max_tokens=12),
              SamplingParams(temperature=0.0, max_tokens=12, top_k=3)]
    out = _run(engine, prompts, params)
    assert out[0] == hf_greedy(llama_dir, prompts[0], 12)
    assert out[2] == hf_greedy(llama_dir, prompts[2], 12)


def test_top_k_one_equals_greedy(engine, llama_dir):
    prompt = make_prompts((13,), seed=13)[0]
    out = _run(engine, [prompt], SamplingParams(temperature=0.8, top_k=1, max_tokens=12))[0]
    assert out == hf_greedy(llama_dir, prompt, 12)


def test_stop_token_ids_min_tokens_and_ignore_eos(engine):
    prompt = make_prompts((5,), seed=14)[0]
    eos = engine.eos_token_ids[0]
    push_eos = {eos: 100.0}
    stopped = engine.generate_batch([prompt], SamplingParams(temperature=0.0, logit_bias=push_eos, max_tokens=9))[0]
    assert (stopped.token_ids, stopped.finish_reason) == ([eos], "stop")
    held = engine.generate_batch([prompt], SamplingParams(temperature=0.0, logit_bias=push_eos, min_tokens=4,
                                                          max_tokens=9))[0]
    assert len(held.token_ids) == 5 and held.token_ids[-1] == eos and eos not in held.token_ids[:4]
    ignored = engine.generate_batch([prompt], SamplingParams(temperature=0.0, logit_bias=push_eos, ignore_eos=True,
                                                             max_tokens=6))[0]
    assert (ignored.token_ids, ignored.finish_reason) == ([eos] * 6, "length")
    by_stop_id = engine.generate_batch([prompt], SamplingParams(temperature=0.0, logit_bias={77: 100.0},
                                                                stop_token_ids=[77], max_tokens=9))[0]
    assert (by_stop_id.token_ids, by_stop_id.finish_reason) == ([77], "stop")


def test_logprobs_and_top_logprobs(engine):
    prompt = make_prompts((10,), seed=15)[0]
    out = engine.generate_batch([prompt], SamplingParams(temperature=0.0, max_tokens=5, logprobs=3))[0]
    assert len(out.logprobs) == len(out.top_logprobs) == 5
    for token, lp, top in zip(out.token_ids, out.logprobs, out.top_logprobs):
        assert len(top) == 3 and lp <= 0.0
        assert max(top, key=top.get) == token and math.isclose(top[token], lp, rel_tol=1e-5)
    assert math.isclose(out.cumulative_logprob, sum(out.logprobs), rel_tol=1e-5)
    plain = engine.generate_batch([prompt], SamplingParams(temperature=0.0, max_tokens=5))[0]
    assert plain.logprobs is None and plain.token_ids == out.token_ids
    only_chosen = engine.generate_batch([prompt], SamplingParams(temperature=0.0, max_tokens=2, logprobs=True))[0]
    assert len(only_chosen.logprobs) == 2 and only_chosen.top_logprobs == [{}, {}]


def _seq(tokens, prompt_len, **params) -> Sequence:
    seq = Sequence("x", tokens[:prompt_len], SamplingParams(**params), 100)
    seq.token_ids = list(tokens)
    return seq


def test_penalties_and_bias_adjust_logits():
    sampler = Sampler(vocab_size=6, eos_token_ids=[5])
    logits = torch.tensor([[2.0, -2.0, 1.0, 1.0, 0.0, 3.0]] * 4)
    seqs = [_seq([0, 1, 2, 2], 2, repetition_penalty=2.0),
            _seq([0, 1, 2, 2], 2, frequency_penalty=0.5, presence_penalty=0.25),
            _seq([0], 1, logit_bias={4: 1.5}),
            _seq([0], 1, min_tokens=2, stop_token_ids=[3])]
    sampler._process_logits(logits, seqs)
    assert logits[0].tolist() == [1.0, -4.0, 0.5, 1.0, 0.0, 3.0]  # prompt and output tokens penalised
    assert logits[1].tolist() == [2.0, -2.0, 1.0 - 1.0 - 0.25, 1.0, 0.0, 3.0]  # output tokens only
    assert logits[2].tolist() == [2.0, -2.0, 1.0, 1.0, 1.5, 3.0]
    assert logits[3, 3] == -math.inf and logits[3, 5] == -math.inf


def test_top_p_and_min_p_restrict_choices():
    sampler = Sampler(vocab_size=4, eos_token_ids=[])
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    for params, allowed in ((dict(top_p=0.6), {0, 1}), (dict(min_p=0.5), {0, 1}), (dict(top_k=3), {0, 1, 2})):
        seen = set()
        for s in range(200):
            seq = _seq([0], 1, temperature=1.0, seed=s, **params)
            seq.generator = torch.Generator().manual_seed(s)
            seen.update(sampler(logits.clone(), [seq]).token_ids)
        assert seen == allowed, params


@pytest.mark.parametrize("field, value", [
    ("temperature", -0.1), ("temperature", float("nan")), ("top_p", 0.0), ("top_p", 1.5), ("top_k", -2),
    ("top_k", 2.5), ("min_p", 1.1), ("seed", "abc"), ("repetition_penalty", 0.0), ("presence_penalty", 3.0),
    ("frequency_penalty", -2.5), ("logit_bias", {1: 500.0}), ("logit_bias", {-1: 1.0}), ("logit_bias", [1]),
    ("max_tokens", 0), ("min_tokens", -1), ("stop_token_ids", [-3]), ("ignore_eos", "yes"), ("logprobs", 21),
    ("top_logprobs", -1),
])
def test_invalid_params_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SamplingParams(**{field: value})


def test_min_tokens_above_max_tokens_is_rejected():
    with pytest.raises(ValueError, match="min_tokens"):
        SamplingParams(min_tokens=5, max_tokens=2)
