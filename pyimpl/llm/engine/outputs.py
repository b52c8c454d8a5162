"""What the engine hands back: per-step request deltas and engine statistics."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class RequestOutput:
    """One request's progress after a step: this step's new tokens plus everything generated so far.
    Slots: an engine makes one per token per request (the mock engine's hot path)."""

    request_id: str
    new_token_ids: list[int]
    # everything generated so far; an engine may hand every output of a request the same growing list (the
    # mock does, to stay O(1) per token), so read it on the finished output or copy it
    token_ids: list[int]
    finished: bool = False
    finish_reason: str | None = None  # "stop" | "length" | "abort"
    logprobs: list[float] | None = None  # sampled token's logprob, one per new token
    top_logprobs: list[dict[int, float]] | None = None  # top-k {token id: logprob}, one per new token
    cumulative_logprob: float | None = None
    index: int = 0  # choice index (SamplingParams.n > 1)
    # SamplingParams.prompt_logprobs, on a choice's first output only: one entry per prompt token, the first None
    prompt_logprobs: list[float | None] | None = None
    prompt_top_logprobs: list[dict[int, float] | None] | None = None  # top-k {token id: logprob} per prompt token


@dataclass
class EngineStats:
    """Load figures for metrics and routing."""

    num_running: int
    num_waiting: int
    kv_blocks_used: int
    kv_blocks_total: int
    prefix_cache_hit_rate: float
    num_aborted: int = 0
    prefix_cache_queries: int = 0
    prefix_cache_hits: int = 0
    extra: dict = field(default_factory=dict)
