"""Decode rows (contiguous per-sequence K/V for decode steps) keep outputs exact through preemption, and stay within
their memory budget, falling back to gathering blocks when a step's decodes do not fit."""
from pyimpl.llm.engine import Engine, SamplingParams

from engine_helpers import hf_greedy, make_prompts, run_staggered

GREEDY = SamplingParams(temperature=0.0, max_tokens=16)


def test_preemption_with_decode_rows_keeps_outputs(qwen2_dir):
    # the small pool's default budget would gather instead
    engine = Engine.from_pretrained(str(qwen2_dir), dtype="float32", block_size=4, num_kv_blocks=24, max_model_len=96,
                                    decode_rows_bytes=1 << 30)
    prompts = make_prompts((7, 12, 30, 3, 19, 25, 9, 14), seed=3)
    got = run_staggered(engine, prompts, GREEDY, arrive_every=1)
    assert engine.stats().extra["num_preemptions"] > 0
    for i, prompt in enumerate(prompts):
        assert got[f"r{i}"] == hf_greedy(qwen2_dir, prompt, 16), f"prompt {i}"


def test_decode_rows_respect_budget_and_fall_back(llama_dir):
    prompts = make_prompts((5, 33, 12, 20, 2), seed=7)
    for budget in (1 << 30, 0):
        engine = Engine.from_pretrained(str(llama_dir), dtype="float32", block_size=8, decode_rows_bytes=budget)
        rows = engine.runner.decode_rows
        place, used = rows.place, []

        def tracked(decoding):
            placed = place(decoding)
            used.append(rows.nbytes)
            return placed

        rows.place = tracked
        got = run_staggered(engine, prompts, GREEDY)
        assert max(used) <= budget and (max(used) > 0) == (budget > 0)
        for i, prompt in enumerate(prompts):
            assert got[f"r{i}"] == hf_greedy(llama_dir, prompt, 16), f"prompt {i}, budget {budget}"
