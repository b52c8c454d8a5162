"""Guided decoding cost: the median decode step of 8 requests constrained by a grammar against 8 unconstrained.

python -m pyimpl.bench guided [--model DIR] [--batch 8] [--steps 48] [--rounds 5]
                              [--kind json_object|json_schema|tool_call]

Default model: the committed demo model (its tokenizer and hermes tool-call format). Target: ratio <= 1.3x.
Sampling at temperature 1; a step is timed only while all `batch` requests are decoding; best of `rounds`
interleaved rounds on each side.
"""
from __future__ import annotations

import argparse
import statistics
import time

from pyimpl.llm.backend.guided import GrammarLogitsProcessor, GuidedTokenizer, grammar_for
from pyimpl.llm.engine import Engine, SamplingParams

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                                           "notes": {"type": "array", "items": {"type": "string"}}},
          "required": ["city", "days", "notes"], "additionalProperties": False}
GUIDED = {"json_object": {"json_object": True}, "json_schema": {"json_schema": SCHEMA},
          "tool_call": {"tool_call": {"tools": [{"name": "get_weather", "parameters": SCHEMA}], "name": None}}}


def median_step_ms(engine: Engine, batch: int, steps: int, processors=None) -> float:
    """Median engine.step() time while all `batch` requests decode (prefill steps excluded)."""
    for i in range(batch):
        params = SamplingParams(temperature=1.0, seed=i, max_tokens=steps + 8, ignore_eos=True)
        if processors is not None:
            params.logits_processors = [processors()]
        engine.add_request(f"r{i}", list(range(10, 42 + i)), params)
    times: list[float] = []
    while engine.has_unfinished_requests():
        decoding = sum(bool(seqs[0].output_token_ids) for seqs in engine.requests.values())
        t = time.perf_counter()
        engine.step()
        if decoding == batch and len(engine.requests) == batch:
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000 if times else float("nan")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m pyimpl.bench guided", description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="HF model folder with a tokenizer (default: the demo model)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kind", choices=sorted(GUIDED), default="json_schema")
    args = ap.parse_args(argv)
    from transformers import AutoTokenizer

    from pyimpl.models import demo_model_path
    model = args.model or str(demo_model_path())
    engine = Engine.from_pretrained(model)
    tokenizer = GuidedTokenizer(AutoTokenizer.from_pretrained(model), engine.vocab_size, engine.eos_token_ids)
    grammar = grammar_for(GUIDED[args.kind], "hermes", tokenizer.added_tokens)

    mask_times: list[float] = []

    def processor():
        inner = GrammarLogitsProcessor(tokenizer.matcher(grammar), engine.vocab_size, engine.eos_token_ids)

        def timed(generated: list[int], logits):
            start = time.perf_counter()
            out = inner(generated, logits)
            mask_times.append(time.perf_counter() - start)
            return out
        return timed

    median_step_ms(engine, args.batch, 8)          # warm-up
    plain, guided = [], []
    for _ in range(args.rounds):      # interleaved: a busy machine slows both sides alike
        plain.append(median_step_ms(engine, args.batch, args.steps))
        guided.append(median_step_ms(engine, args.batch, args.steps, processor))
    p, g = min(plain), min(guided)
    estimate = (p + args.batch * statistics.median(mask_times) * 1000) / p   # the noise-free view of the same cost
    print(f"guided decode step ({args.kind}, batch {args.batch}, vocab {engine.vocab_size}): unconstrained "
          f"{p:.2f} ms, constrained {g:.2f} ms, ratio {g / p:.2f}x (target <= 1.3x); the mask costs "
          f"{statistics.median(mask_times) * 1e6:.0f} us a request per step (median), {estimate:.2f}x of the best "
          f"unconstrained step for the batch")
    return 0
