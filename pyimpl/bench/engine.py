"""Engine benchmark: our engine vs transformers generate (one at a time, static batches), decode step, RSS.

python -m pyimpl.bench engine [--model DIR] [--requests 32] [--concurrency 32] [--rss-requests 10000]
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import time

import psutil
import torch

from pyimpl.llm.engine import Engine, SamplingParams


def make_workload(n: int, prompt_range: tuple[int, int], output_range: tuple[int, int], vocab: int, seed: int):
    """Random prompts and output lengths (reproducible)."""
    rng = random.Random(seed)
    prompts = [[rng.randrange(10, vocab) for _ in range(rng.randint(*prompt_range))] for _ in range(n)]
    outputs = [rng.randint(*output_range) for _ in range(n)]
    return prompts, outputs


def run_engine(engine: Engine, prompts, outputs) -> tuple[float, int]:
    """Offline throughput of the whole workload through our engine: (seconds, generated tokens)."""
    params = [SamplingParams(temperature=0.0, max_tokens=m, ignore_eos=True) for m in outputs]
    start = time.perf_counter()
    results = engine.generate_batch(prompts, params)
    elapsed = time.perf_counter() - start
    return elapsed, sum(len(r.token_ids) for r in results)


def run_hf_one_at_a_time(model, prompts, outputs) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = 0
    with torch.inference_mode():
        for prompt, m in zip(prompts, outputs):
            ids = torch.tensor([prompt])
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=m,
                                 min_new_tokens=m, pad_token_id=0)
            tokens += out.shape[1] - len(prompt)
    return time.perf_counter() - start, tokens


def run_hf_static_batches(model, prompts, outputs, batch: int) -> tuple[float, int]:
    """Left-padded static batches; each batch runs to its longest requested output; only requested tokens count."""
    start = time.perf_counter()
    useful = 0
    with torch.inference_mode():
        for i in range(0, len(prompts), batch):
            ps, ms = prompts[i:i + batch], outputs[i:i + batch]
            width = max(len(p) for p in ps)
            ids = torch.tensor([[0] * (width - len(p)) + p for p in ps])
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in ps])
            model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=max(ms),
                           min_new_tokens=max(ms), pad_token_id=0)
            useful += sum(ms)
    return time.perf_counter() - start, useful


def engine_decode_step_ms(engine: Engine, prompt_len: int, steps: int) -> float:
    """Median time of one batch-1 decode step of our engine."""
    engine.add_request("decode-probe", list(range(10, 10 + prompt_len)),
                       SamplingParams(temperature=0.0, max_tokens=steps + 5, ignore_eos=True))
    engine.step()  # prefill
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        engine.step()
        times.append(time.perf_counter() - t)
    engine.abort_request("decode-probe")
    return statistics.median(times) * 1000


def hf_decode_step_ms(model, prompt_len: int, steps: int) -> float:
    """Median time of a bare transformers forward step with its KV cache (batch 1), greedy argmax included."""
    from transformers import DynamicCache

    with torch.inference_mode():
        ids = torch.tensor([list(range(10, 10 + prompt_len))])
        cache = DynamicCache()
        out = model(input_ids=ids, past_key_values=cache, use_cache=True)
        token = out.logits[:, -1:].argmax(-1)
        times = []
        for _ in range(steps):
            t = time.perf_counter()
            out = model(input_ids=token, past_key_values=out.past_key_values, use_cache=True)
            token = out.logits[:, -1:].argmax(-1)
            token.item()
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def rss_run(engine: Engine, n: int, vocab: int, concurrency: int) -> tuple[float, float, float]:
    """Push n short requests through the engine; returns RSS in MiB at the start, after the first 10% (the KV
    cache's zeroed pages are touched lazily, so RSS first grows to the pool's working set) and at the end."""
    proc = psutil.Process()
    rng = random.Random(1)
    gc.collect()
    start = proc.memory_info().rss / 2**20
    warm = None
    submitted = 0
    while submitted < n or engine.has_unfinished_requests():
        if warm is None and submitted >= n // 10:
            gc.collect()
            warm = proc.memory_info().rss / 2**20
        while submitted < n and len(engine.requests) < concurrency:
            prompt = [rng.randrange(10, vocab) for _ in range(rng.randint(4, 24))]
            engine.add_request(f"rss{submitted}", prompt,
                               SamplingParams(temperature=0.0, max_tokens=rng.randint(1, 8), ignore_eos=True))
            submitted += 1
        engine.step()
    gc.collect()
    return start, warm if warm is not None else start, proc.memory_info().rss / 2**20


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m pyimpl.bench engine", description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="HF model folder (default: make_tiny's smollm-135m preset)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--requests", type=int, default=32, help="requests in the throughput workload")
    ap.add_argument("--concurrency", type=int, default=32, help="engine max_num_seqs and static batch size")
    ap.add_argument("--prompt-len", type=int, nargs=2, default=(16, 96), metavar=("MIN", "MAX"))
    ap.add_argument("--output-len", type=int, nargs=2, default=(16, 96), metavar=("MIN", "MAX"))
    ap.add_argument("--one-at-a-time-requests", type=int, default=4,
                    help="requests for baseline (a), measured as tok/s (it does not depend on the count)")
    ap.add_argument("--decode-steps", type=int, default=30)
    ap.add_argument("--rss-requests", type=int, default=10000, help="long run for the RSS check (0: skip)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads (0: torch's default; on a loaded 2-core machine 1 is often faster)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_dir = args.model
    if model_dir is None:
        from pyimpl.models import tiny_model_path
        model_dir = str(tiny_model_path("llama", "smollm-135m"))
    from transformers import AutoModelForCausalLM

    engine = Engine.from_pretrained(model_dir, device=args.device, max_num_seqs=args.concurrency,
                                    max_num_batched_tokens=4096)
    vocab = engine.vocab_size
    prompts, outputs = make_workload(args.requests, tuple(args.prompt_len), tuple(args.output_len), vocab, args.seed)
    print(f"model {model_dir} device {args.device} threads {torch.get_num_threads()} "
          f"requests {args.requests} concurrency {args.concurrency} prompt {args.prompt_len} output {args.output_len}")
    run_engine(engine, prompts[:2], [4, 4])  # warm-up
    t_eng, n_eng = run_engine(engine, prompts, outputs)
    eng_tps = n_eng / t_eng
    print(f"engine:            {n_eng} tokens in {t_eng:.1f}s = {eng_tps:.1f} tok/s")

    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=engine.runner.model.dtype
                                              if hasattr(engine.runner, "model") else torch.float32)
    hf = hf.to(args.device).eval()
    k = max(1, min(args.one_at_a_time_requests, args.requests))
    t_a, n_a = run_hf_one_at_a_time(hf, prompts[:k], outputs[:k])
    print(f"(a) HF one at a time: {n_a} tokens in {t_a:.1f}s = {n_a / t_a:.1f} tok/s ({k} requests)")
    t_b, n_b = run_hf_static_batches(hf, prompts, outputs, args.concurrency)
    print(f"(b) HF static batches of {args.concurrency}: {n_b} tokens in {t_b:.1f}s = {n_b / t_b:.1f} tok/s")
    print(f"ratio vs (a): {eng_tps / (n_a / t_a):.2f}x   (target >= 6x)")
    print(f"ratio vs (b): {eng_tps / (n_b / t_b):.2f}x   (target >= 1.3x)")

    ours = engine_decode_step_ms(engine, 64, args.decode_steps)
    bare = hf_decode_step_ms(hf, 64, args.decode_steps)
    print(f"batch-1 decode step: engine {ours:.2f} ms, bare HF forward {bare:.2f} ms, "
          f"ratio {ours / bare:.2f}x   (target <= 1.2x)")
    del hf
    if args.rss_requests:
        start, warm, end = rss_run(engine, args.rss_requests, vocab, args.concurrency)
        print(f"RSS over {args.rss_requests} requests: start {start:.0f} MiB, after 10% {warm:.0f} MiB, "
              f"end {end:.0f} MiB (end - after 10%: {end - warm:+.0f} MiB)")
    return 0
