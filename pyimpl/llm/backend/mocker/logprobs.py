"""The mock engine's logprobs: fixed, deterministic values in the torch engine's shapes, so the frontend's logprobs
paths (chat and completions, completions echo with prompt logprobs) can be tested without a model."""
from __future__ import annotations

from pyimpl.llm.engine.outputs import RequestOutput

from .params import MockSamplingParams


def _top(token: int, k: int, vocab_size: int) -> dict[int, float]:
    return {(token + j) % vocab_size: -0.5 - j for j in range(k)}


def add_fake_logprobs(out: RequestOutput, params: MockSamplingParams, prompt: list[int] | None,
                      vocab_size: int) -> None:
    """Fill `out`'s logprobs as asked: each new token -0.5 with the top k {token + j: -0.5 - j}; with `prompt`
    (a request's first output) and params.prompt_logprobs, prompt token i (i > 0) gets -1 - (i % 4) / 4 and the
    same top k, prompt token 0 None (nothing predicts it)."""
    if params.logprobs is not None:
        out.logprobs = [-0.5 for _ in out.new_token_ids]
        out.top_logprobs = [_top(t, params.logprobs, vocab_size) for t in out.new_token_ids]
    if prompt is not None and params.prompt_logprobs is not None:
        k = params.prompt_logprobs
        out.prompt_logprobs = [None] + [-1.0 - (i % 4) / 4 for i in range(1, len(prompt))]
        out.prompt_top_logprobs = [None] + [_top(t, k, vocab_size) for t in prompt[1:]]
