"""Greedy output of our engine equals transformers' generate(do_sample=False), with staggered concurrent arrivals."""
from __future__ import annotations

import pytest

from pyimpl.llm.engine import Engine, SamplingParams

from engine_helpers import hf_greedy, make_prompts, run_staggered

MAX_NEW = 24


def _check_parity(path, **engine_kwargs) -> Engine:
    engine = Engine.from_pretrained(str(path), dtype="float32", **engine_kwargs)
    prompts = make_prompts()
    got = run_staggered(engine, prompts, SamplingParams(temperature=0.0, max_tokens=MAX_NEW))
    for i, prompt in enumerate(prompts):
        assert got[f"r{i}"] == hf_greedy(path, prompt, MAX_NEW), f"prompt {i} (length {len(prompt)})"
    assert engine.stats().kv_blocks_used == 0
    return engine


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_greedy_matches_transformers_generate(arch, llama_dir, qwen2_dir):
    _check_parity(llama_dir if arch == "llama" else qwen2_dir, block_size=8)


@pytest.mark.parametrize("name", ["qwen3", "mistral", "mistral-window", "llama3-rope", "linear-rope", "gpt2-fallback"])
def test_other_architectures_and_rope_scaling(name, extra_model_dirs):
    _check_parity(extra_model_dirs[name], block_size=16)


def test_batch_size_one_steps_match(llama_dir):
    """max_num_seqs=1 forces one request at a time through prefill and decode."""
    _check_parity(llama_dir, max_num_seqs=1)


def test_generate_batch_returns_outputs_in_input_order(qwen2_dir):
    engine = Engine.from_pretrained(str(qwen2_dir), dtype="float32")
    prompts = make_prompts((9, 2, 30))
    outs = engine.generate_batch(prompts, SamplingParams(temperature=0.0, max_tokens=10))
    assert [o.token_ids for o in outs] == [hf_greedy(qwen2_dir, p, 10) for p in prompts]
    assert all(o.finished and o.finish_reason in ("stop", "length") for o in outs)
