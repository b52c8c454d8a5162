"""A mock engine with AsyncEngine's interface that emits tokens with no compute.

Like Dynamo's mocker: for tests and benchmarks of everything above the engine. It
echoes the prompt's tokens, cycling, one token per step; honours max_tokens,
ignore_eos (otherwise it ends with EOS after one pass over the prompt),
stop_token_ids and cancellation (closing the stream counts as an abort).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import AsyncIterator


@dataclass
class MockSamplingParams:
    """The subset of SamplingParams the mock looks at (others are accepted and ignored)."""

    max_tokens: int = 16
    min_tokens: int = 0
    ignore_eos: bool = False
    stop_token_ids: list[int] = field(default_factory=list)
    logprobs: int | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class MockOutput:
    """One step's delta, shaped like the engine's RequestOutput."""

    request_id: str
    new_token_ids: list[int]
    finished: bool = False
    finish_reason: str | None = None
    logprobs: list[float] | None = None
    top_logprobs: list[dict[int, float]] | None = None


@dataclass
class MockStats:
    """EngineStats lookalike."""

    num_running: int = 0
    num_waiting: int = 0
    kv_blocks_used: int = 0
    kv_blocks_total: int = 0
    prefix_cache_hit_rate: float = 0.0


class MockEngine:
    """Echo engine: token i of the output is prompt[i % len(prompt)]."""

    def __init__(self, eos_token_ids: list[int] | None = None, max_model_len: int = 4096,
                 vocab_size: int = 32000, block_size: int = 16, step_delay_s: float = 0.0):
        self.eos_token_ids = list(eos_token_ids or [])
        self.max_model_len, self.vocab_size, self.block_size = max_model_len, vocab_size, block_size
        self.step_delay_s = step_delay_s
        self.abort_count = 0
        self.finished_count = 0
        self._running: set[str] = set()

    def stats(self) -> MockStats:
        """Running requests; the mock holds no KV blocks."""
        return MockStats(num_running=len(self._running))

    async def generate(self, prompt_token_ids: list[int], params, request_id: str) -> AsyncIterator[MockOutput]:
        """Yield one MockOutput per token; closing the iterator early aborts the request."""
        prompt = [t for t in prompt_token_ids if t not in self.eos_token_ids] or [0]
        max_tokens = getattr(params, "max_tokens", 16) or 16
        ignore_eos = getattr(params, "ignore_eos", False)
        stop_ids = set(getattr(params, "stop_token_ids", None) or ())
        top_n = getattr(params, "logprobs", None)
        delay = self.step_delay_s
        self._running.add(request_id)
        done = False
        try:
            for i in range(max_tokens):
                if delay:
                    await asyncio.sleep(delay)
                else:
                    await asyncio.sleep(0)
                token = prompt[i % len(prompt)]
                reason = None
                if not ignore_eos and i >= len(prompt) and self.eos_token_ids:
                    token, reason = self.eos_token_ids[0], "stop"
                elif token in stop_ids:
                    reason = "stop"
                elif i == max_tokens - 1:
                    reason = "length"
                out = MockOutput(request_id, [token], reason is not None, reason)
                if top_n is not None:
                    out.logprobs = [-0.5]
                    out.top_logprobs = [{(token + k) % self.vocab_size: -0.5 - k for k in range(top_n)}]
                if reason is not None:
                    done = True
                    yield out
                    return
                yield out
        finally:
            self._running.discard(request_id)
            if done:
                self.finished_count += 1
            else:
                self.abort_count += 1

    async def shutdown(self) -> None:
        """Nothing to release."""
