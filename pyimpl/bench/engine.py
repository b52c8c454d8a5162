"""Engine benchmark: throughput against transformers' static batches and the CPU's matmul peak, latency under load.

python -m pyimpl.bench engine [--model DIR] [--threads N] [--max-num-batched-tokens N] [--quick]

Default model: the SmolLM-135M shape with its real 49,152-token vocabulary (random weights, built once under
build/models). Lines: (1) 32 concurrent requests, prompts 64-512, 128 new tokens: tok/s against transformers
`generate` with static batches of 32 in the same dtype (target >= 3x) and model FLOP/s as a fraction of a 2048^2
matmul in that dtype (target >= 50%); (2) inter-token latency p99 of 31 decoding requests while a 2,000-token
prompt is prefilled, against without it (target <= 3x); (3) one 1,000-token prompt with 63 one-token prompts
against the two groups apart (target <= 1.3x); batch-1 decode step against a bare transformers forward.
"""
from __future__ import annotations

import argparse
import os
import random
import time

import torch

from pyimpl.bench.engine_latency import decode_step_ms, hf_decode_step_ms, itl_under_prefill, mixed_prefill, rss_run
from pyimpl.llm.engine import Engine, SamplingParams

VOCAB = 49152


def bench_model_dir() -> str:
    """The SmolLM-135M-shaped model with the real vocabulary (make_tiny's preset uses its small demo tokenizer)."""
    from transformers import AutoModelForCausalLM

    from pyimpl.models.cache import cache_root
    from pyimpl.models.make_tiny import PRESETS, build_config

    path = cache_root() / f"bench-smollm-135m-v{VOCAB}"
    if not path.is_dir():
        torch.manual_seed(0)
        config = build_config("llama", PRESETS["smollm-135m"], VOCAB, bos_id=1, eos_id=2, pad_id=1)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(tmp)
        os.replace(tmp, path)
    return str(path)


def make_workload(n: int, prompt_range: tuple[int, int], vocab: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(10, vocab) for _ in range(rng.randint(*prompt_range))] for _ in range(n)]


def run_engine(engine: Engine, prompts: list[list[int]], new_tokens: int) -> float:
    """Seconds to run every prompt to `new_tokens` greedy tokens (all submitted at once)."""
    engine.reset_prefix_cache()
    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, ignore_eos=True)
    start = time.perf_counter()
    outs = engine.generate_batch(prompts, params)
    elapsed = time.perf_counter() - start
    assert all(len(o.token_ids) == new_tokens for o in outs)
    return elapsed


def run_hf_static_batches(model, prompts: list[list[int]], new_tokens: int, batch: int) -> float:
    """Left-padded static batches of `batch` prompts, each to `new_tokens` tokens; seconds."""
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(prompts), batch):
            ps = prompts[i:i + batch]
            width = max(len(p) for p in ps)
            ids = torch.tensor([[0] * (width - len(p)) + p for p in ps])
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in ps])
            model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=new_tokens,
                           min_new_tokens=new_tokens, pad_token_id=0)
    return time.perf_counter() - start


def matmul_peak_flops(dtype: torch.dtype, n: int = 2048, reps: int = 10) -> float:
    """Best-of-3 FLOP/s of an n x n matmul in `dtype` (this process's thread count)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - t))
    return best


def model_flops(config, prompts: list[list[int]], new_tokens: int) -> float:
    """Useful FLOPs of the workload: linear layers per computed token, the LM head per sampled token, and
    causal attention (QK^T and PV) over each token's context; no padding counted."""
    h, layers = config.hidden_size, config.num_hidden_layers
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", heads)
    d = getattr(config, "head_dim", None) or h // heads
    linear = layers * (h * heads * d + 2 * h * kv * d + heads * d * h + 3 * h * config.intermediate_size)
    flops = 0.0
    for p in prompts:
        total = len(p) + new_tokens
        flops += 2 * linear * (total - 1) + 2 * h * config.vocab_size * new_tokens
        flops += 4 * layers * heads * d * (total - 1) * total / 2
    return flops


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m pyimpl.bench engine", description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="HF model folder (default: SmolLM-135M shape, 49,152 vocab)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, help="engine and transformers dtype (default: the engine's)")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--max-num-batched-tokens", type=int, default=None,
                    help="the engine's per-step token budget (default: the engine's)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--rss-requests", type=int, default=10000, help="long run for the RSS check (0: skip)")
    ap.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run, not the figures)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-gguf", action="store_true", help="skip the Gemma 3 270M GGUF lines (python -m pyimpl.bench gguf)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.requests, args.new_tokens, args.rss_requests = 8, 16, 200
    model_dir = args.model or bench_model_dir()
    engine = Engine.from_pretrained(model_dir, device=args.device, dtype=args.dtype, max_num_seqs=64,
                                    max_num_batched_tokens=args.max_num_batched_tokens)
    dtype = engine.runner.model.dtype
    budget = engine.scheduler.max_num_batched_tokens
    prompts = make_workload(args.requests, (64, 512), engine.vocab_size, args.seed)
    print(f"model {model_dir} dtype {dtype} device {args.device} threads {torch.get_num_threads()} "
          f"budget {budget} tokens/step ({engine.scheduler.idle_num_batched_tokens} while none decodes), load average {os.getloadavg()[0]:.2f}")

    run_engine(engine, prompts[:2], 4)  # warm-up
    t_eng = run_engine(engine, prompts, args.new_tokens)
    generated = len(prompts) * args.new_tokens
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(args.device).eval()
    t_hf = run_hf_static_batches(hf, prompts, args.new_tokens, 32)
    print(f"throughput ({len(prompts)} requests, prompts 64-512, {args.new_tokens} new tokens): engine "
          f"{generated / t_eng:.1f} tok/s ({t_eng:.1f}s), HF static batches of 32 {generated / t_hf:.1f} tok/s "
          f"({t_hf:.1f}s): {t_hf / t_eng:.2f}x   (target >= 3x)")
    peak = matmul_peak_flops(dtype)
    used = model_flops(hf.config, prompts, args.new_tokens) / t_eng
    print(f"model FLOP/s {used / 1e9:.1f} G = {100 * used / peak:.0f}% of this CPU's 2048^2 {dtype} matmul "
          f"({peak / 1e9:.1f} GFLOP/s)   (target >= 50%)")

    base, during = itl_under_prefill(engine, long_prompt=2000 if not args.quick else 600, decoders=31)
    print(f"ITL p99 of 31 decoding requests: {1000 * base:.0f} ms alone, {1000 * during:.0f} ms while a "
          f"{2000 if not args.quick else 600}-token prompt prefills: {during / base:.2f}x   (target <= 3x)")
    together, apart = mixed_prefill(engine, long_prompt=1000, short=63)
    print(f"mixed prefill (1,000-token prompt + 63 one-token prompts): {together:.2f}s together, {apart:.2f}s "
          f"apart: {together / apart:.2f}x   (target <= 1.3x)")
    ours = decode_step_ms(engine, 64, 30)
    bare = hf_decode_step_ms(hf, 64, 30)
    print(f"batch-1 decode step: engine {ours:.2f} ms, bare HF forward {bare:.2f} ms: {ours / bare:.2f}x")
    del hf
    if args.rss_requests:
        start, warm, end = rss_run(engine, args.rss_requests, 32)
        print(f"RSS over {args.rss_requests} requests: start {start:.0f} MiB, after 10% {warm:.0f} MiB, "
              f"end {end:.0f} MiB (end - after 10%: {end - warm:+.0f} MiB)")
    del engine
    if not args.no_gguf and args.model is None:  # the Gemma 3 lines, against transformers on the same file
        from . import gguf

        gguf.main(["--threads", str(args.threads)] if args.threads else [])
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
