"""The mock engine's sampling parameters from the worker wire format (engine/wire_params.py reads the sections
and refuses unknown fields), with the range checks the torch engine applies.

The mock models the stop conditions (max/min tokens, stop ids, EOS) and logprobs; the sampling options
(temperature, top_p, ...) are checked and then ignored (it echoes the prompt)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyimpl.llm.engine.wire_params import wire_fields
from pyimpl.llm.errors import EngineRequestError

MAX_LOGPROBS = 20
# sampling option -> accepted (low, high); logit_bias is checked as a mapping
SAMPLING_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, float("inf")), "top_p": (0.0, 1.0), "top_k": (-1, float("inf")), "min_p": (0.0, 1.0),
    "seed": (-(2**63), 2**64 - 1), "repetition_penalty": (0.0, float("inf")),
    "presence_penalty": (-2.0, 2.0), "frequency_penalty": (-2.0, 2.0),
}
_SAMPLING_NAMES = frozenset(SAMPLING_RANGES)


@dataclass
class MockSamplingParams:
    """What the mock honours; `extra` keeps the accepted sampling options it does not model."""

    max_tokens: int | None = 16      # None: until the context is full
    min_tokens: int = 0
    ignore_eos: bool = False
    stop_token_ids: list[int] = field(default_factory=list)
    logprobs: int | None = None
    prompt_logprobs: int | None = None   # top k of each prompt token, with the first output
    extra: dict = field(default_factory=dict)


def _integer(name: str, value: Any, low: int, high: float = float("inf")) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EngineRequestError(f"{name} must be an integer in [{low}, {high}], got {value!r}", name)
    return value


def make_params(wire: dict) -> MockSamplingParams:
    """MockSamplingParams from a wire request; EngineRequestError (400) naming an unknown or invalid field."""
    fields = wire_fields(wire)
    params = MockSamplingParams()
    if not _SAMPLING_NAMES.isdisjoint(fields):    # most requests send none: skip the per-name lookups
        for name, (low, high) in SAMPLING_RANGES.items():
            value = fields.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise EngineRequestError(f"{name} must be a number in [{low}, {high}], got {value!r}", name)
            params.extra[name] = value
    if "logit_bias" in fields:
        if not isinstance(fields["logit_bias"], dict):
            raise EngineRequestError("logit_bias must be an object of token id -> bias", "logit_bias")
        params.extra["logit_bias"] = fields["logit_bias"]
    if "max_tokens" in fields:
        params.max_tokens = _integer("max_tokens", fields["max_tokens"], 1)
    params.min_tokens = _integer("min_tokens", fields.get("min_tokens", 0), 0)
    if params.max_tokens is not None and params.min_tokens > params.max_tokens:
        raise EngineRequestError(f"min_tokens ({params.min_tokens}) must not exceed max_tokens "
                                 f"({params.max_tokens})", "min_tokens")
    ids = fields.get("stop_token_ids", [])
    if not isinstance(ids, list):
        raise EngineRequestError("stop_token_ids must be a list of token ids", "stop_token_ids")
    params.stop_token_ids = [_integer("stop_token_ids", t, 0, 2**31 - 1) for t in ids]
    params.ignore_eos = fields.get("ignore_eos", False)
    if not isinstance(params.ignore_eos, bool):
        raise EngineRequestError(f"ignore_eos must be a bool, got {params.ignore_eos!r}", "ignore_eos")
    if "logprobs" in fields:
        params.logprobs = _integer("logprobs", fields["logprobs"], 0, MAX_LOGPROBS)
    if "prompt_logprobs" in fields:
        params.prompt_logprobs = _integer("prompt_logprobs", fields["prompt_logprobs"], 0, MAX_LOGPROBS)
    return params
