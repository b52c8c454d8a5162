"""Per-request logits processors: they steer only their own request, and batch neighbours keep greedy parity."""
from __future__ import annotations

import pytest
import torch

from pyimpl.llm.engine import Engine, SamplingParams

from engine_helpers import make_prompts

FORCED = [17, 42, 99, 5, 123]


def force_sequence(tokens: list[int]):
    """A processor that makes the request emit `tokens` in order (then anything)."""
    def processor(generated: list[int], logits: torch.Tensor) -> torch.Tensor:
        if len(generated) >= len(tokens):
            return logits
        forced = torch.full_like(logits, float("-inf"))
        forced[tokens[len(generated)]] = 0.0
        return forced
    return processor


@pytest.fixture(scope="module")
def engine(llama_dir):
    return Engine.from_pretrained(str(llama_dir), dtype="float32", block_size=8)


def _run(engine, prompts, params):
    return [o.token_ids for o in engine.generate_batch(prompts, params)]


def test_processor_steers_only_its_own_request(engine):
    prompts = make_prompts((9, 4, 21), seed=31)
    plain = [SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True) for _ in prompts]
    alone = _run(engine, prompts, plain)
    steered = list(plain)
    steered[1] = SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True,
                                logits_processors=[force_sequence(FORCED)])
    mixed = _run(engine, prompts, steered)
    assert mixed[1][: len(FORCED)] == FORCED
    assert mixed[0] == alone[0] and mixed[2] == alone[2]


def test_processor_applies_before_temperature_sampling(engine):
    prompts = make_prompts((6, 12), seed=32)
    params = [SamplingParams(temperature=1.3, seed=3, max_tokens=6, ignore_eos=True,
                             logits_processors=[force_sequence(FORCED)]),
              SamplingParams(temperature=0.0, max_tokens=6, ignore_eos=True)]
    out = _run(engine, prompts, params)
    assert out[0][:5] == FORCED
    assert out[1] == _run(engine, [prompts[1]], [params[1]])[0]


@pytest.mark.parametrize("bad", [lambda g, x: x, [1], ["not callable"], (lambda g, x: x,)])
def test_logits_processors_must_be_a_list_of_callables(bad):
    with pytest.raises(ValueError, match="logits_processors"):
        SamplingParams(logits_processors=bad)
