"""`python -m pyimpl.bench router`: KV-aware routing against round robin on mock workers (issue 12's benchmark).

One process: N mock workers (the mocker's paged KV with prefix caching, KV events and timing model) and the
frontend's ModelManager, all on a mem deployment; HTTP is left out so the figures are the router's. Workload:
groups of requests sharing a prefix (shuffled), Poisson arrivals at a fraction of round robin's saturation (measured
first: a burst on fresh round-robin workers), the same seed and schedule for every arm, fresh workers per arm.
Reports per arm TTFT p50/p99, output throughput, the actual prefix hit rate (cached prompt tokens / prompt tokens,
from the engines) and the router's predicted one, and the oracle hit rate (each group's first request misses,
every other one finds its whole prefix cached: the bound no routing beats).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from dataclasses import asdict, dataclass

ARMS = {"round-robin": {"mode": "round-robin"}, "kv": {"mode": "kv"},
        "kv-approx": {"mode": "kv", "use_kv_events": False}}


@dataclass
class ArmResult:
    arm: str
    ttft_p50_ms: float
    ttft_p99_ms: float
    throughput_tok_s: float
    actual_hit_rate: float
    predicted_hit_rate: float
    requests: int
    errors: int


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pyimpl.bench router", description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--groups", type=int, default=16)
    p.add_argument("--requests-per-group", type=int, default=16)
    p.add_argument("--prefix-tokens", type=int, default=2048, help="shared prefix of a group")
    p.add_argument("--suffix-tokens", type=int, default=128)
    p.add_argument("--output-tokens", type=int, default=64)
    p.add_argument("--load", type=float, default=0.7, help="arrival rate as a fraction of round robin's saturation")
    p.add_argument("--rate", type=float, default=None, help="arrival rate in requests/s (skips the calibration)")
    p.add_argument("--speedup-ratio", type=float, default=1.0, help="the mock's simulated GPU speed")
    p.add_argument("--num-gpu-blocks", type=int, default=1024,
                   help="KV blocks per worker: a few groups' prefixes, not all (else round robin caches everything)")
    p.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated among {', '.join(ARMS)}")
    p.add_argument("--kv-overlap-score-weight", type=float, default=1.0, help="the kv arms' overlap weight")
    p.add_argument("--router-temperature", type=float, default=0.0, help="the kv arms' temperature")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--overhead", action="store_true",
                   help="only measure KvRouter.route()'s time with 1,000 cached blocks on each of 8 workers")
    return p.parse_args(argv)


def workload(args: argparse.Namespace) -> tuple[list[list[int]], list[float]]:
    """The prompts in arrival order (groups shuffled together) and their arrival offsets in seconds at rate 1."""
    rng = random.Random(args.seed)
    prefixes = [[rng.randrange(3, 2000) for _ in range(args.prefix_tokens)] for _ in range(args.groups)]
    prompts = [prefix + [rng.randrange(3, 2000) for _ in range(args.suffix_tokens)]
               for prefix in prefixes for _ in range(args.requests_per_group)]
    rng.shuffle(prompts)
    offsets, t = [], 0.0
    for _ in prompts:
        offsets.append(t)
        t += rng.expovariate(1.0)
    return prompts, offsets


def mock_model_dir(context_length: int) -> str:
    """The tiny model's folder (tokenizer, config) with a longer context: the mock computes nothing, so only the
    card's context length changes (the tiny model's 2,048 tokens hold no 2,048-token prefix plus a question)."""
    import os
    import tempfile

    from pyimpl.models import tiny_model_path

    source = tiny_model_path()
    folder = tempfile.mkdtemp(prefix="bench-router-model-")
    for name in os.listdir(source):
        if name != "config.json":
            os.symlink(source / name, os.path.join(folder, name))
    config = json.loads((source / "config.json").read_text())
    config["max_position_embeddings"] = context_length
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    return folder


class Deployment:
    """Fresh mock workers and a ModelManager routing with `settings` (one mem scope)."""

    def __init__(self, args: argparse.Namespace, settings: dict):
        self.args, self.settings = args, dict(settings)
        if self.settings["mode"] == "kv":
            self.settings.update(overlap_score_weight=args.kv_overlap_score_weight,
                                 router_temperature=args.router_temperature)
        self.decisions: list = []

    async def __aenter__(self) -> "Deployment":
        from pyimpl.llm.backend.model_server import serve_model
        from pyimpl.llm.frontend.model_manager import ModelManager
        from pyimpl.llm.frontend.routing import RouterSettings
        from pyimpl.runtime import DistributedRuntime

        scope = f"bench-router-{uuid.uuid4().hex}"
        kw = dict(discovery_backend="mem", request_plane="inproc", mem_scope=scope)
        events = self.settings.get("use_kv_events", True)
        self.workers = []
        for _ in range(self.args.workers):
            rt = await DistributedRuntime.create(**kw)
            served = await serve_model(rt, self.args.model_dir, model_name="tiny", engine="mock",
                                       kv_events=events, speedup_ratio=self.args.speedup_ratio,
                                       num_gpu_blocks=self.args.num_gpu_blocks)
            self.workers.append((rt, served))
        self.rt = await DistributedRuntime.create(**kw)
        self.manager = ModelManager(self.rt, no_worker_wait_s=5.0, router=RouterSettings(**self.settings),
                                    on_route=lambda model, decision: self.decisions.append(decision))
        await self.manager.start()
        await self.manager.wait_for_model("tiny", timeout=30)
        entry = self.manager.models["tiny"]
        while len(entry.client.instance_ids()) < self.args.workers:
            await asyncio.sleep(0.01)
        await entry.router.wait_synced(10.0)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.manager.stop()
        for rt, served in self.workers:
            await served.stop()
            await rt.shutdown()
        await self.rt.shutdown()

    def hit_rate(self) -> float:
        stats = [served.engine.stats() for _, served in self.workers]
        queried = sum(s.prefix_cache_queries for s in stats)
        return sum(s.prefix_cache_hits for s in stats) / queried if queried else 0.0

    async def one(self, prompt: list[int]) -> tuple[float, int]:
        """(TTFT in seconds, output tokens) of one streamed completion."""
        start = time.perf_counter()
        ttft, tokens = None, 0
        async for chunk in self.manager.completion_stream(
                {"model": "tiny", "prompt": prompt, "max_tokens": self.args.output_tokens, "ignore_eos": True,
                 "stream": True, "stream_options": {"include_usage": True}}):
            if ttft is None:
                ttft = time.perf_counter() - start
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
        return ttft if ttft is not None else float("nan"), tokens

    async def run(self, prompts: list[list[int]], offsets: list[float], rate: float) -> tuple[list, float, int]:
        """Send `prompts` at `offsets / rate`; returns (results or exceptions, makespan, output tokens)."""
        start = time.perf_counter()

        async def at(prompt: list[int], offset: float):
            await asyncio.sleep(max(0.0, start + offset / rate - time.perf_counter()))
            return await self.one(prompt)

        results = await asyncio.gather(*(at(p, o) for p, o in zip(prompts, offsets)), return_exceptions=True)
        return results, time.perf_counter() - start, sum(r[1] for r in results if isinstance(r, tuple))


async def saturation(args: argparse.Namespace, prompts: list[list[int]]) -> float:
    """Round robin's completed requests per second when a burst of requests arrives at once."""
    burst = prompts[:min(len(prompts), 16 * args.workers)]
    async with Deployment(args, ARMS["round-robin"]) as dep:
        results, makespan, _ = await dep.run(burst, [0.0] * len(burst), 1.0)
    return len(burst) / makespan


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def bench(args: argparse.Namespace) -> dict:
    args.model_dir = mock_model_dir(max(2048, 2 * (args.prefix_tokens + args.suffix_tokens + args.output_tokens)))
    try:
        return await run_arms(args)
    finally:
        import shutil
        shutil.rmtree(args.model_dir, ignore_errors=True)


async def run_arms(args: argparse.Namespace) -> dict:
    prompts, offsets = workload(args)
    rate = args.rate or args.load * await saturation(args, prompts)
    out: dict = {"rate_req_s": rate, "arms": []}
    for arm in args.arms.split(","):
        async with Deployment(args, ARMS[arm]) as dep:
            results, makespan, tokens = await dep.run(prompts, offsets, rate)
            ttfts = [r[0] * 1000 for r in results if isinstance(r, tuple)]
            errors = [r for r in results if not isinstance(r, tuple)]
            predicted = statistics.fmean(d.hit_rate for d in dep.decisions) if dep.decisions else float("nan")
            out["arms"].append(asdict(ArmResult(arm, percentile(ttfts, 0.5), percentile(ttfts, 0.99),
                                                tokens / makespan, dep.hit_rate(), predicted, len(prompts),
                                                len(errors))))
            if errors:
                out.setdefault("first_error", {})[arm] = repr(errors[0])
    prompt_tokens = args.prefix_tokens + args.suffix_tokens
    cached = args.prefix_tokens // 16 * 16
    total = args.groups * args.requests_per_group
    out["oracle_hit_rate"] = (total - args.groups) * cached / (total * prompt_tokens)
    return out


def report(args: argparse.Namespace, out: dict) -> None:
    print(f"router bench: {args.workers} mock workers, {args.groups} groups x {args.requests_per_group} requests, "
          f"prefix {args.prefix_tokens} + suffix {args.suffix_tokens} tokens, {args.output_tokens} out, "
          f"{out['rate_req_s']:.2f} req/s ({'as given' if args.rate else f'{args.load:.0%} of round-robin saturation'}), "
          f"seed {args.seed}, "
          f"{args.num_gpu_blocks} blocks/worker, speedup {args.speedup_ratio}")
    print(f"{'arm':<12}{'TTFT p50 ms':>12}{'TTFT p99 ms':>12}{'tok/s':>9}{'hit rate':>10}{'predicted':>10}"
          f"{'of oracle':>10}{'errors':>8}")
    oracle = out["oracle_hit_rate"]
    for a in out["arms"]:
        print(f"{a['arm']:<12}{a['ttft_p50_ms']:>12.1f}{a['ttft_p99_ms']:>12.1f}{a['throughput_tok_s']:>9.0f}"
              f"{a['actual_hit_rate']:>10.1%}{a['predicted_hit_rate']:>10.1%}{a['actual_hit_rate'] / oracle:>10.1%}"
              f"{a['errors']:>8}")
    print(f"oracle hit rate {oracle:.1%}")


def overhead(iterations: int = 2000, workers: int = 8, cached_blocks: int = 1000, block_size: int = 16) -> dict:
    """p50/p99 microseconds (wall and thread CPU time) of KvRouter.route() (hashing, index walk, cost) for a prompt of
    `cached_blocks` blocks
    that every worker caches in part (worker i: all but its last 50*i blocks), and for one of 136 blocks
    (2,176 tokens, this benchmark's prompt)."""
    from pyimpl.llm.engine.block_hash import sequence_block_hashes
    from pyimpl.llm.kv_router.hashing import tokens_hashes
    from pyimpl.llm.kv_router.protocol import KvEventBatch, WireBlock, WireKvEvent
    from pyimpl.llm.kv_router.router import KvRouter, KvRouterConfig

    rng = random.Random(1)
    tokens = [rng.randrange(3, 32000) for _ in range(cached_blocks * block_size)]
    ids, local = sequence_block_hashes(tokens, block_size), tokens_hashes(tokens, block_size)
    router = KvRouter(KvRouterConfig(block_size=block_size), rng=random.Random(0))
    for w in range(workers):
        keep = cached_blocks - 50 * w
        blocks = [WireBlock(b, t) for b, t in zip(ids[:keep], local[:keep])]
        router.apply_events(KvEventBatch(w + 1, block_size, [WireKvEvent("stored", 1, None, blocks)]))
    out = {}
    for name, prompt in (("1000_blocks", tokens), ("136_blocks", tokens[:136 * block_size])):
        times, cpu = [], []
        for i in range(iterations):
            start, start_cpu = time.perf_counter(), time.thread_time()
            router.route(str(i), prompt, list(range(1, workers + 1)))
            cpu.append((time.thread_time() - start_cpu) * 1e6)
            times.append((time.perf_counter() - start) * 1e6)
            router.finished(str(i))
        out[name] = {"p50_us": percentile(times, 0.5), "p99_us": percentile(times, 0.99),
                     "cpu_p50_us": percentile(cpu, 0.5), "cpu_p99_us": percentile(cpu, 0.99)}
    return out


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.overhead:
        result = overhead()
        print(json.dumps(result, indent=2) if args.json else "\n".join(
            f"KvRouter.route, {name.replace('_', ' ')} prompt, 8 workers x 1,000 cached blocks: p50 "
            f"{r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us (CPU time p50 {r['cpu_p50_us']:.0f} us, p99 "
            f"{r['cpu_p99_us']:.0f} us: the wall p99 of a loaded machine is other processes' time slices)"
            for name, r in result.items()))
        return 0
    unknown = set(args.arms.split(",")) - set(ARMS)
    if unknown:
        raise SystemExit(f"unknown arms {sorted(unknown)}; choose among {', '.join(ARMS)}")
    out = asyncio.run(bench(args))
    print(json.dumps(out, indent=2)) if args.json else report(args, out)
    return 1 if any(a["errors"] for a in out["arms"]) else 0
