"""Per-request sampling and stop parameters (vLLM's SamplingParams, minus stop strings)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

MAX_LOGPROBS = 20
MAX_N = 128

# fn(generated_token_ids, logits row [vocab]) -> logits row; applied before penalties and sampling.
LogitsProcessor = Callable[[list[int], torch.Tensor], torch.Tensor]


@dataclass
class SamplingParams:
    """How to pick each next token and when to stop; invalid values raise ValueError naming the field."""

    n: int = 1  # choices per prompt; the engine forks them after one shared prompt prefill
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 or -1: disabled
    min_p: float = 0.0
    seed: int | None = None
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] | None = None
    max_tokens: int | None = 16  # None: until the model's context is full
    min_tokens: int = 0
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    logprobs: int | None = None  # None: off; k: the sampled token's logprob plus the top k
    top_logprobs: int | None = None  # OpenAI spelling of the top-k count; implies logprobs
    # None: off; k: each prompt token's logprob (the first's is None) plus the top k at its position, returned
    # with the first output (vLLM's prompt_logprobs: completions echo + logprobs, scoring)
    prompt_logprobs: int | None = None
    # Per-request logits hooks (e.g. constrained decoding); built in-process, never serialised.
    logits_processors: list[LogitsProcessor] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.stop_token_ids = list(self.stop_token_ids or [])
        if isinstance(self.logprobs, bool):
            self.logprobs = 0 if self.logprobs else None
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first field whose value is out of range."""
        _integer("n", self.n, lo=1, hi=MAX_N)
        _number("temperature", self.temperature, lo=0.0)
        _number("top_p", self.top_p, lo=0.0, hi=1.0, lo_open=True)
        _integer("top_k", self.top_k, lo=-1)
        _number("min_p", self.min_p, lo=0.0, hi=1.0)
        if self.seed is not None:
            _integer("seed", self.seed, lo=-(2**63))
        _number("repetition_penalty", self.repetition_penalty, lo=0.0, lo_open=True)
        _number("presence_penalty", self.presence_penalty, lo=-2.0, hi=2.0)
        _number("frequency_penalty", self.frequency_penalty, lo=-2.0, hi=2.0)
        if self.logit_bias is not None:
            if not isinstance(self.logit_bias, dict):
                raise ValueError("logit_bias must be a dict of token id -> bias")
            self.logit_bias = {_token_id("logit_bias", k): _number("logit_bias", v, lo=-100.0, hi=100.0)
                               for k, v in self.logit_bias.items()}
        if self.max_tokens is not None:
            _integer("max_tokens", self.max_tokens, lo=1)
        _integer("min_tokens", self.min_tokens, lo=0)
        if self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) must not exceed max_tokens ({self.max_tokens})")
        for t in self.stop_token_ids:
            _token_id("stop_token_ids", t)
        if not isinstance(self.ignore_eos, bool):
            raise ValueError(f"ignore_eos must be a bool, got {self.ignore_eos!r}")
        if self.logprobs is not None:
            _integer("logprobs", self.logprobs, lo=0, hi=MAX_LOGPROBS)
        if self.top_logprobs is not None:
            _integer("top_logprobs", self.top_logprobs, lo=0, hi=MAX_LOGPROBS)
        if self.prompt_logprobs is not None:
            _integer("prompt_logprobs", self.prompt_logprobs, lo=0, hi=MAX_LOGPROBS)
        if self.logits_processors is not None:
            if not isinstance(self.logits_processors, list) or not all(callable(f) for f in self.logits_processors):
                raise ValueError(f"logits_processors must be a list of callables, got {self.logits_processors!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def wants_logprobs(self) -> bool:
        return self.logprobs is not None or self.top_logprobs is not None

    @property
    def num_top_logprobs(self) -> int:
        return self.top_logprobs if self.top_logprobs is not None else (self.logprobs or 0)

    @property
    def top_k_enabled(self) -> bool:
        return self.top_k > 0


def _number(name: str, value, lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value!r}")
    return float(value)


def _integer(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if lo is not None and value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value!r}")
    return value


def _token_id(name: str, value) -> int:
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)  # JSON object keys arrive as strings
    return _integer(name, value, lo=0)
