"""Prefix-cache hits, preemption and aborts never change any other request's output; aborts free every block."""
from __future__ import annotations

from pyimpl.llm.engine import Engine, SamplingParams

from engine_helpers import hf_greedy, make_prompts, run_staggered

GREEDY = SamplingParams(temperature=0.0, max_tokens=16)


def test_prefix_cache_hits_keep_outputs(llama_dir):
    engine = Engine.from_pretrained(str(llama_dir), dtype="float32", block_size=8)
    shared = make_prompts((40,), seed=1)[0]
    prompts = [shared + tail for tail in make_prompts((3, 9, 0, 17, 8), seed=2)]
    prompts.append(shared[:24])  # prompt that is entirely a cached prefix (whole blocks)
    got = {}
    for i, prompt in enumerate(prompts):  # one after another so later prompts hit earlier ones' blocks
        got.update(run_staggered(engine, [prompt], GREEDY, prefix=f"p{i}-"))
    stats = engine.stats()
    assert stats.prefix_cache_hit_rate > 0.5
    for i, prompt in enumerate(prompts):
        assert got[f"p{i}-0"] == hf_greedy(llama_dir, prompt, 16), f"prompt {i}"
    assert stats.kv_blocks_used == 0


def test_preemption_by_recompute_keeps_outputs(qwen2_dir):
    engine = Engine.from_pretrained(str(qwen2_dir), dtype="float32", block_size=4, num_kv_blocks=24, max_model_len=96)
    prompts = make_prompts((7, 12, 30, 3, 19, 25, 9, 14), seed=3)
    got = run_staggered(engine, prompts, GREEDY, arrive_every=1)
    assert engine.stats().extra["num_preemptions"] > 0
    for i, prompt in enumerate(prompts):
        assert got[f"r{i}"] == hf_greedy(qwen2_dir, prompt, 16), f"prompt {i}"
    assert engine.stats().kv_blocks_used == 0


def test_preemption_without_prefix_caching(llama_dir):
    engine = Engine.from_pretrained(str(llama_dir), dtype="float32", block_size=4, num_kv_blocks=20, enable_prefix_caching=False,
                                    max_model_len=80)
    prompts = make_prompts((11, 5, 21, 16, 2, 8), seed=4)
    got = run_staggered(engine, prompts, GREEDY, arrive_every=1)
    assert engine.stats().extra["num_preemptions"] > 0
    for i, prompt in enumerate(prompts):
        assert got[f"r{i}"] == hf_greedy(llama_dir, prompt, 16)


def test_aborts_do_not_disturb_others(llama_dir):
    engine = Engine.from_pretrained(str(llama_dir), dtype="float32", block_size=8, max_num_seqs=4)
    prompts = make_prompts((5, 33, 12, 20, 8, 41, 2, 17), seed=5)
    for i, prompt in enumerate(prompts):
        engine.add_request(f"r{i}", prompt, GREEDY)
    finals = {}
    step = 0
    while engine.has_unfinished_requests():
        if step == 3:
            assert engine.abort_request("r1").finish_reason == "abort"  # running
            assert engine.abort_request("r7").finish_reason == "abort"  # still waiting (max_num_seqs=4)
            assert engine.abort_request("nope") is None
        for out in engine.step():
            if out.finished:
                finals[out.request_id] = out.token_ids
        step += 1
    assert set(finals) == {f"r{i}" for i in (0, 2, 3, 4, 5, 6)}
    for rid, tokens in finals.items():
        assert tokens == hf_greedy(llama_dir, prompts[int(rid[1:])], 16), rid
    assert engine.abort_count == 2
    assert engine.stats().kv_blocks_used == 0


def test_thousand_aborted_requests_free_every_block(qwen2_dir):
    engine = Engine.from_pretrained(str(qwen2_dir), dtype="float32", block_size=4, num_kv_blocks=64, max_num_seqs=16,
                                    max_model_len=256)
    prompts = make_prompts(tuple(1 + (i * 7) % 40 for i in range(50)), seed=6)
    params = SamplingParams(temperature=0.0, max_tokens=200, ignore_eos=True)  # none finishes in 100 steps
    for n in range(1000):
        engine.add_request(f"a{n}", prompts[n % len(prompts)], params)
        if n % 10 == 9:
            engine.step()  # some get prefilled / decoded, others stay waiting
        if n % 3 == 0:
            engine.abort_request(f"a{n - 3}" if n >= 3 else f"a{n}")
    for rid in list(engine.requests):
        engine.abort_request(rid)
    stats = engine.stats()
    assert engine.abort_count == 1000
    assert (stats.num_running, stats.num_waiting, stats.kv_blocks_used) == (0, 0, 0)
    bm = engine.block_manager
    assert all(b.ref_count == 0 for b in bm.blocks)
    assert bm.num_free_blocks == bm.num_blocks
    prompt = prompts[3]
    assert engine.generate_batch([prompt], GREEDY)[0].token_ids == hf_greedy(qwen2_dir, prompt, 16)
