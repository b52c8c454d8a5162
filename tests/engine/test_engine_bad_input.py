"""Bad requests fail at add_request with a clear ValueError and leave running requests untouched."""
from __future__ import annotations

import pytest

from pyimpl.llm.engine import Engine, SamplingParams

from engine_helpers import hf_greedy, make_prompts

GREEDY = SamplingParams(temperature=0.0, max_tokens=12)


def test_bad_requests_are_rejected_without_disturbing_others(llama_dir):
    engine = Engine.from_pretrained(str(llama_dir), dtype="float32", block_size=8, max_model_len=128)
    assert engine.max_model_len == 128
    good = make_prompts((14, 6), seed=20)
    engine.add_request("good0", good[0], GREEDY)
    engine.step()
    bad_cases = [
        (make_prompts((128,))[0], GREEDY, "context"),
        ([], GREEDY, "non-empty"),
        ([5, engine.vocab_size], GREEDY, "vocabulary"),
        ([5, -1], GREEDY, "vocabulary"),
        ([5, "7"], GREEDY, "vocabulary"),
        ("hello", GREEDY, "prompt_token_ids"),
        ([5, 6], SamplingParams(logit_bias={engine.vocab_size + 3: 1.0}), "logit_bias"),
        ([5, 6], {"temperature": -1}, "temperature"),
        ([5, 6], {"no_such_field": 1}, "no_such_field"),
    ]
    for prompt, params, message in bad_cases:
        with pytest.raises(ValueError, match=message):
            engine.add_request("bad", prompt, params)
        assert "bad" not in engine.requests
    with pytest.raises(ValueError, match="already in use"):
        engine.add_request("good0", good[1], GREEDY)
    bad_params = SamplingParams()
    bad_params.top_p = 7.0  # mutated after construction: checked again at add_request
    with pytest.raises(ValueError, match="top_p"):
        engine.add_request("bad", good[1], bad_params)
    engine.add_request("good1", good[1], GREEDY)
    finals = {}
    while engine.has_unfinished_requests():
        finals.update({o.request_id: o.token_ids for o in engine.step() if o.finished})
    assert finals == {"good0": hf_greedy(llama_dir, good[0], 12), "good1": hf_greedy(llama_dir, good[1], 12)}
    assert engine.stats().kv_blocks_used == 0


def test_max_tokens_is_clamped_to_the_context(llama_dir):
    engine = Engine.from_pretrained(str(llama_dir), dtype="float32", max_model_len=40)
    prompt = make_prompts((35,), seed=21)[0]
    out = engine.generate_batch([prompt], SamplingParams(temperature=0.0, max_tokens=None, ignore_eos=True))[0]
    assert (len(out.token_ids), out.finish_reason) == (5, "length")


def test_prompt_needing_more_blocks_than_the_pool_is_rejected(llama_dir):
    engine = Engine.from_pretrained(str(llama_dir), dtype="float32", block_size=4, num_kv_blocks=4, max_model_len=16)
    with pytest.raises(ValueError, match="context"):
        engine.add_request("big", make_prompts((16,))[0], GREEDY)
    assert engine.generate_batch([[5, 6, 7]], GREEDY)[0].finished
