"""Admission and KV pool limits: nothing gets stuck, every pool-size refusal is clear, prefix hits are counted once."""
from __future__ import annotations

import json

import pytest

from pyimpl.llm.engine import Engine, SamplingParams

from engine_helpers import hf_greedy, make_prompts

FP32 = dict(dtype="float32")
GREEDY = SamplingParams(temperature=0.0, max_tokens=12)


def _drain(engine: Engine, max_steps: int = 500) -> dict[str, list[int]]:
    """Step until idle (failing if that takes over `max_steps`); returns request id -> generated ids."""
    finals: dict[str, list[int]] = {}
    for _ in range(max_steps):
        if not engine.has_unfinished_requests():
            return finals
        finals.update({o.request_id: o.token_ids for o in engine.step() if o.finished})
    raise AssertionError(f"engine still busy after {max_steps} steps: {engine.stats()}")


def test_pool_smaller_than_one_context_is_refused(llama_dir):
    with pytest.raises(ValueError, match="max_model_len"):
        Engine.from_pretrained(str(llama_dir), num_kv_blocks=4, block_size=16, **FP32)
    with pytest.raises(ValueError, match="kv_cache_bytes"):
        Engine.from_pretrained(str(llama_dir), kv_cache_bytes=4096, block_size=16, **FP32)


def test_default_pool_smaller_than_the_context_clamps_max_model_len(llama_dir, monkeypatch, caplog):
    """A long-context model (Gemma's 32k in fp32) loads with default arguments: the context is cut to the pool."""
    import pyimpl.llm.engine.engine as engine_module

    cfg = json.loads((llama_dir / "config.json").read_text())
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    per_block = cfg["num_hidden_layers"] * 2 * 16 * cfg["num_key_value_heads"] * head_dim * 4
    monkeypatch.setattr(engine_module, "DEFAULT_CPU_KV_BYTES", 4 * per_block)  # 64 tokens: under the model's context
    engine = Engine.from_pretrained(str(llama_dir), block_size=16, **FP32)
    assert engine.max_model_len == 64
    assert "clamped" in caplog.text
    prompt = make_prompts((engine.max_model_len - 1,), seed=3)[0]
    engine.add_request("r", prompt, SamplingParams(temperature=0.0, max_tokens=5, ignore_eos=True))
    assert len(_drain(engine)["r"]) == 1


def test_request_over_the_pool_ends_and_the_queued_one_completes(llama_dir):
    """The once-stuck case: prompt fits the pool, prompt + max_tokens does not."""
    engine = Engine.from_pretrained(str(llama_dir), num_kv_blocks=4, block_size=16, max_model_len=64, **FP32)
    big, small = make_prompts((60, 5), seed=30)
    engine.add_request("big", big, SamplingParams(temperature=0.0, max_tokens=40, ignore_eos=True))
    engine.add_request("small", small, GREEDY)
    finals = _drain(engine)
    assert len(finals["big"]) == 4  # clamped to the 64 tokens the pool (and context) hold
    assert finals["small"] == hf_greedy(llama_dir, small, 12)
    assert engine.stats().kv_blocks_used == 0


def test_prompt_at_the_context_limit_is_refused(llama_dir):
    engine = Engine.from_pretrained(str(llama_dir), num_kv_blocks=4, block_size=16, max_model_len=64, **FP32)
    with pytest.raises(ValueError, match="context of 64 tokens"):
        engine.add_request("long", make_prompts((64,))[0], GREEDY)
    assert not engine.has_unfinished_requests()


def test_many_requests_on_a_tiny_pool_all_complete_in_arrival_order(qwen2_dir):
    """Preemption picks the youngest request, so the oldest always progresses (no victim is starved forever)."""
    engine = Engine.from_pretrained(str(qwen2_dir), num_kv_blocks=12, block_size=4, max_model_len=48, **FP32)
    prompts = make_prompts((20, 18, 22, 19, 21, 17), seed=31)
    params = SamplingParams(temperature=0.0, max_tokens=20, ignore_eos=True)
    order = []
    for i, prompt in enumerate(prompts):
        engine.add_request(f"r{i}", prompt, params)
    for _ in range(1000):
        if not engine.has_unfinished_requests():
            break
        order += [o.request_id for o in engine.step() if o.finished]
    assert order == [f"r{i}" for i in range(len(prompts))]
    assert engine.stats().extra["num_preemptions"] > 0
    for i, prompt in enumerate(prompts):
        assert engine.generate_batch([prompt], params)[0].token_ids == hf_greedy(qwen2_dir, prompt, 20)


def test_cache_hits_on_blocks_in_use_need_no_free_blocks(llama_dir):
    engine = Engine.from_pretrained(str(llama_dir), num_kv_blocks=16, block_size=4, max_model_len=64, **FP32)
    shared = make_prompts((32,), seed=32)[0]
    params = SamplingParams(temperature=0.0, max_tokens=20, ignore_eos=True)
    engine.add_request("a", shared + [11], params)
    engine.step()  # a holds 9 blocks; 7 are free
    engine.add_request("b", shared + [12], params)  # 8 of its 9 blocks are a's, in use
    engine.step()
    assert engine.stats().num_running == 2
    assert engine.stats().prefix_cache_hits == 32


def test_prefix_hits_are_counted_once_per_admitted_request(llama_dir):
    engine = Engine.from_pretrained(str(llama_dir), block_size=8, max_num_seqs=1, **FP32)
    shared = make_prompts((40,), seed=33)[0]
    engine.generate_batch([shared], GREEDY)
    prompts = [shared + [20 + i] for i in range(3)]
    for i, prompt in enumerate(prompts):  # one runs, two wait (max_num_seqs=1) for many steps
        engine.add_request(f"w{i}", prompt, GREEDY)
    _drain(engine)
    stats = engine.stats()
    assert stats.prefix_cache_queries == 40 + 3 * 41
    assert stats.prefix_cache_hits == 3 * 40
