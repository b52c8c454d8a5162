"""The synchronous engine: add requests, step, read deltas (nano-vllm's LLMEngine shape)."""
from __future__ import annotations

import itertools
import logging
import uuid
from typing import Callable, Sequence as Seq

import torch

from .block_manager import BlockManager
from .kv_events import KvEvent
from .model_loader import ModelInfo, build_model, read_model_info, resolve_dtype
from .model_runner import HFModelRunner, ModelRunner
from .outputs import EngineStats, RequestOutput
from .prompt_logprobs import score_prompt_rows
from .sampler import Sampler
from .sampling_params import SamplingParams
from .scheduler import Scheduler
from .sequence import Sequence

DEFAULT_CPU_KV_BYTES = 1 << 30
log = logging.getLogger(__name__)


class Engine:
    """Continuous batching over a paged KV cache with prefix caching; not thread-safe (AsyncEngine wraps it)."""

    def __init__(self, info: ModelInfo, runner, num_kv_blocks: int, block_size: int, max_num_seqs: int,
                 max_num_batched_tokens: int, enable_prefix_caching: bool, device: torch.device,
                 idle_num_batched_tokens: int | None = None) -> None:
        self.info = info
        self.runner = runner
        self.device = device
        self.block_size = block_size
        self.eos_token_ids = info.eos_token_ids
        self.max_model_len = info.max_model_len
        self.vocab_size = info.vocab_size
        if num_kv_blocks * block_size < self.max_model_len:
            raise ValueError(
                f"KV cache of {num_kv_blocks} blocks x {block_size} tokens holds {num_kv_blocks * block_size} tokens, "
                f"less than one max_model_len sequence ({self.max_model_len} tokens): raise num_kv_blocks or "
                f"kv_cache_bytes, or lower max_model_len")
        self.block_manager = BlockManager(num_kv_blocks, block_size, enable_prefix_caching)
        self.scheduler = Scheduler(self.block_manager, max_num_seqs, max_num_batched_tokens, idle_num_batched_tokens)
        self.sampler = Sampler(info.vocab_size, info.eos_token_ids)
        self.requests: dict[str, list[Sequence]] = {}  # request id -> its n choices (unfinished ones)
        self._pending_forks: dict[str, list[Sequence]] = {}  # choices 1..n-1 waiting for choice 0's prompt
        self.abort_count = 0
        self._arrivals = itertools.count()

    @classmethod
    def from_pretrained(cls, path: str, device: str = "cpu", dtype=None, block_size: int = 16,
                        num_kv_blocks: int | None = None, kv_cache_bytes: int | None = None,
                        max_num_seqs: int = 64, max_num_batched_tokens: int | None = None,
                        enable_prefix_caching: bool = True, max_model_len: int | None = None,
                        decode_rows_bytes: int | None = None) -> "Engine":
        """Load a HF model folder; KV pool from num_kv_blocks, else kv_cache_bytes, else a default budget.

        max_num_batched_tokens is the per-step token budget shared by decodes and prefill chunks (None: 2048 on
        GPUs, 96 on CPUs, where a bigger prefill chunk stalls every running stream: on 2 cores a 2,000-token prompt
        keeps the p99 inter-token latency of 31 streams within 3x at 96, 4.6x at 256; with None, steps where no
        request is decoding take up to 2048 tokens on any device: no stream is stalled then). A pool that
        cannot hold one max_model_len sequence is a ValueError (lower max_model_len to use a small pool), except the
        default pool (no num_kv_blocks, kv_cache_bytes or max_model_len given): it clamps max_model_len to what it
        holds, with a warning, so a 32k-context model loads with default arguments on any CPU.
        decode_rows_bytes bounds the decoding sequences' contiguous K/V copies (decode_rows.py), on top of the pool:
        None = the pool's size (KV memory at most twice the pool), 0 = none (decode steps gather blocks)."""
        dev = torch.device(device)
        idle_num_batched_tokens = None
        if max_num_batched_tokens is None:
            max_num_batched_tokens = 96 if dev.type == "cpu" else 2048
            idle_num_batched_tokens = 2048
        info = read_model_info(path)
        if max_model_len is not None:
            info.max_model_len = min(info.max_model_len, max_model_len)
        torch_dtype = resolve_dtype(dtype, info.config, dev)
        blocks_for_all = max_num_seqs * -(-info.max_model_len // block_size)
        if info.has_own_implementation:
            model = build_model(info, path, dev, torch_dtype, info.max_model_len)
            default_pool = num_kv_blocks is None and kv_cache_bytes is None
            if num_kv_blocks is None:
                per_block = ModelRunner.kv_bytes_per_block(model, block_size)
                if kv_cache_bytes is None:
                    if dev.type == "cuda":
                        kv_cache_bytes = int(torch.cuda.mem_get_info(dev)[0] * 0.8)
                    else:
                        kv_cache_bytes = DEFAULT_CPU_KV_BYTES
                num_kv_blocks = min(kv_cache_bytes // per_block, blocks_for_all)
                if default_pool and max_model_len is None and num_kv_blocks * block_size < info.max_model_len:
                    log.warning("the default KV pool holds %d tokens, less than the model's context of %d: "
                                "max_model_len clamped to %d (pass kv_cache_bytes or max_model_len to choose)",
                                num_kv_blocks * block_size, info.max_model_len, num_kv_blocks * block_size)
                    info.max_model_len = num_kv_blocks * block_size
            runner = ModelRunner(model, num_kv_blocks, block_size, decode_rows_bytes)
        else:
            runner = HFModelRunner(path, dev, torch_dtype)
            num_kv_blocks = num_kv_blocks or blocks_for_all
        return cls(info, runner, num_kv_blocks, block_size, max_num_seqs, max_num_batched_tokens,
                   enable_prefix_caching, dev, idle_num_batched_tokens)

    # ---- requests
    def validate_request(self, prompt_token_ids: Seq[int], params: SamplingParams | dict | None) -> SamplingParams:
        """Check a request without touching engine state; returns the SamplingParams to use."""
        if params is None:
            params = SamplingParams()
        elif isinstance(params, dict):
            unknown = set(params) - set(SamplingParams.__dataclass_fields__)
            if unknown:
                raise ValueError(f"unknown sampling parameter(s): {', '.join(sorted(unknown))}")
            params = SamplingParams(**params)
        elif not isinstance(params, SamplingParams):
            raise ValueError(f"params must be SamplingParams, got {type(params).__name__}")
        else:
            params.validate()
        if not isinstance(prompt_token_ids, (list, tuple)) or len(prompt_token_ids) == 0:
            raise ValueError("prompt_token_ids must be a non-empty list of token ids")
        for t in prompt_token_ids:
            if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < self.vocab_size:
                raise ValueError(f"prompt_token_ids: token id {t!r} is outside the vocabulary [0, {self.vocab_size})")
        if len(prompt_token_ids) >= self.max_model_len:
            raise ValueError(f"prompt_token_ids: prompt of {len(prompt_token_ids)} tokens does not fit the model's "
                             f"context of {self.max_model_len} tokens (one token must be left to generate)")
        if self.block_manager.blocks_needed(len(prompt_token_ids) + 1) > self.block_manager.num_blocks:
            raise ValueError(f"prompt_token_ids: prompt of {len(prompt_token_ids)} tokens needs more KV blocks than "
                             f"the cache has ({self.block_manager.num_blocks} of {self.block_size} tokens)")
        for t in params.logit_bias or {}:
            if t >= self.vocab_size:
                raise ValueError(f"logit_bias: token id {t} is outside the vocabulary [0, {self.vocab_size})")
        return params

    def add_request(self, request_id: str, prompt_token_ids: Seq[int],
                    params: SamplingParams | dict | None = None) -> None:
        """Queue a request; raises ValueError on a duplicate id or bad input, leaving the engine untouched.

        max_tokens is clamped to what fits (the context and the KV pool hold prompt + max_tokens), so every
        admitted request can complete; a clamped request ends with finish_reason "length". With params.n > 1
        the choices share the prompt's KV blocks: choice 0 prefills it, then the others fork from it."""
        if request_id in self.requests:
            raise ValueError(f"request_id {request_id!r} is already in use")
        params = self.validate_request(prompt_token_ids, params)
        capacity = min(self.max_model_len, self.block_manager.num_blocks * self.block_size)
        room = capacity - len(prompt_token_ids)
        max_tokens = room if params.max_tokens is None else min(params.max_tokens, room)
        arrival = next(self._arrivals)
        seqs = [Sequence(request_id, list(prompt_token_ids), params, max_tokens, arrival, index=i)
                for i in range(params.n)]
        for seq in seqs:
            if params.seed is not None and not params.greedy:
                seq.generator = torch.Generator(device=self.device).manual_seed(params.seed + seq.index)
        self.requests[request_id] = seqs
        if len(seqs) > 1:
            self._pending_forks[request_id] = seqs[1:]
        self.scheduler.add(seqs[0])

    def abort_request(self, request_id: str) -> RequestOutput | None:
        """Stop a request now and free its blocks; returns its final output (finish_reason "abort"), None if unknown."""
        seqs = self.requests.pop(request_id, None)
        if seqs is None:
            return None
        self._pending_forks.pop(request_id, None)
        for seq in seqs:
            self.scheduler.finish(seq, "abort")
        self.abort_count += 1
        return self._output(seqs[0])

    def has_unfinished_requests(self) -> bool:
        return self.scheduler.has_unfinished()

    # ---- stepping
    @torch.inference_mode()
    def step(self) -> list[RequestOutput]:
        """Run one step (decodes and prefill chunks under the token budget); returns a delta for every request
        choice that got a token."""
        if not self.scheduler.has_unfinished():
            return []
        batch = self.scheduler.schedule()
        if not batch:
            raise RuntimeError("engine scheduler made no progress (no request fits the KV cache)")
        logits, prompt_logits = self.runner.run(batch)
        for i, rows in prompt_logits.items():
            score_prompt_rows(batch[i][0], rows, self.vocab_size)
        seqs = []
        for seq, n in batch:
            seq.num_computed_tokens += n
            self.block_manager.register_computed_blocks(seq)
            if seq.num_computed_tokens == seq.num_tokens:
                seqs.append(seq)
        sampled = self.sampler(logits, seqs) if seqs else None
        outputs = []
        for i, seq in enumerate(seqs):
            if seq.index == 0 and seq.request_id in self._pending_forks:
                self._fork(seq)
            token = sampled.token_ids[i]
            seq.token_ids.append(token)
            if sampled.logprobs[i] is not None:
                seq.logprobs.append(sampled.logprobs[i])
                seq.top_logprobs.append(sampled.top_logprobs[i])
                seq.cumulative_logprob += sampled.logprobs[i]
            reason = self._finish_reason(seq, token)
            if reason:
                self.scheduler.finish(seq, reason)
                self._forget(seq)
            outputs.append(self._output(seq))
        return outputs

    def _fork(self, leader: Sequence) -> None:
        """Choice 0 has computed the prompt: the other choices share its full prompt blocks and queue first."""
        children = self._pending_forks.pop(leader.request_id)
        shared = (leader.num_prompt_tokens - 1) // self.block_size
        for child in reversed(children):
            self.block_manager.fork(leader, child, shared)
            child.prompt_logprobs, child.prompt_top_logprobs = leader.prompt_logprobs, leader.prompt_top_logprobs
            self.scheduler.add(child, first=True)

    def _forget(self, seq: Sequence) -> None:
        """Drop a finished choice; the request is gone once all its choices are (and none wait to fork)."""
        group = self.requests[seq.request_id]
        group.remove(seq)
        if not group and seq.request_id not in self._pending_forks:
            del self.requests[seq.request_id]

    def _finish_reason(self, seq: Sequence, token: int) -> str | None:
        p = seq.params
        if seq.num_output_tokens >= p.min_tokens:
            if token in p.stop_token_ids or (not p.ignore_eos and token in self.eos_token_ids):
                return "stop"
        if seq.num_output_tokens >= seq.max_tokens:
            return "length"
        return None

    def _output(self, seq: Sequence) -> RequestOutput:
        out_tokens = seq.output_token_ids
        new = out_tokens[seq.num_emitted:]
        lp = tops = None
        if seq.params.wants_logprobs:
            lp = seq.logprobs[seq.num_emitted:]
            tops = seq.top_logprobs[seq.num_emitted:]
        first = seq.num_emitted == 0 and bool(new)
        seq.num_emitted = len(out_tokens)
        out = RequestOutput(seq.request_id, new, out_tokens, seq.is_finished, seq.finish_reason, lp, tops,
                            seq.cumulative_logprob if lp is not None else None, seq.index)
        if first and seq.params.prompt_logprobs is not None:
            out.prompt_logprobs, out.prompt_top_logprobs = seq.prompt_logprobs, seq.prompt_top_logprobs
        return out

    def generate_batch(self, prompts: list[list[int]],
                       params: SamplingParams | list[SamplingParams] | None = None) -> list[RequestOutput]:
        """Offline use: run every prompt to completion; final outputs in input order (n > 1: its n choices in turn)."""
        plist = params if isinstance(params, list) else [params] * len(prompts)
        prefix = f"batch-{uuid.uuid4().hex[:8]}-"
        ids = [f"{prefix}{i}" for i in range(len(prompts))]
        if len(plist) != len(prompts):
            raise ValueError(f"params: {len(plist)} SamplingParams for {len(prompts)} prompts")
        plist = [self.validate_request(prompt, p) for prompt, p in zip(prompts, plist)]  # all or nothing
        for rid, prompt, p in zip(ids, prompts, plist):
            self.add_request(rid, prompt, p)
        groups = {rid: list(self.requests[rid]) for rid in ids}
        while any(rid in self.requests for rid in ids) and self.has_unfinished_requests():
            self.step()
        results = []
        for rid in ids:
            for seq in groups[rid]:
                lp = seq.logprobs if seq.params.wants_logprobs else None
                out = RequestOutput(rid, seq.output_token_ids, seq.output_token_ids, True, seq.finish_reason,
                                    lp, seq.top_logprobs if lp is not None else None,
                                    seq.cumulative_logprob if lp is not None else None, seq.index)
                if seq.params.prompt_logprobs is not None:
                    out.prompt_logprobs, out.prompt_top_logprobs = seq.prompt_logprobs, seq.prompt_top_logprobs
                results.append(out)
        return results

    # ---- introspection
    def stats(self) -> EngineStats:
        bm = self.block_manager
        return EngineStats(len(self.scheduler.running), len(self.scheduler.waiting), bm.num_used_blocks,
                           bm.num_blocks, bm.prefix_cache_hit_rate, self.abort_count, bm.query_tokens,
                           bm.hit_tokens, {"num_preemptions": self.scheduler.num_preemptions})

    def subscribe_kv_events(self, callback: Callable[[KvEvent], None]) -> Callable[[], None]:
        """Call `callback(event)` (on the stepping thread) for every KV event; returns an unsubscribe function."""
        return self.block_manager.subscribe(callback)

    def reset_prefix_cache(self) -> bool:
        """Drop all cached blocks (only when idle); emits KvCacheCleared."""
        return self.block_manager.reset_prefix_cache()
