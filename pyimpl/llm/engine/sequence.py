"""A request's mutable state inside the engine: tokens, blocks, progress and sampling state."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import torch

from .sampling_params import SamplingParams


class SequenceStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(eq=False)
class Sequence:
    """Prompt plus generated tokens; `num_computed_tokens` of them have KV in `block_table`."""

    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    max_tokens: int  # params.max_tokens clamped to the model's context
    arrival: int = 0
    index: int = 0  # choice index within its request (n > 1)
    token_ids: list[int] = field(init=False)
    status: SequenceStatus = SequenceStatus.WAITING
    block_table: list[int] = field(default_factory=list)
    num_computed_tokens: int = 0
    num_hashed_blocks: int = 0  # leading blocks whose hash chain is known (cached or registered)
    last_block_hash: int | None = None  # sequence hash of block num_hashed_blocks-1
    num_emitted: int = 0  # generated tokens already returned to the caller
    finish_reason: str | None = None
    generator: torch.Generator | None = None
    logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[dict[int, float]] = field(default_factory=list)
    cumulative_logprob: float = 0.0
    # params.prompt_logprobs: the prompt positions scored so far (position 0 has no logprob: None)
    prompt_logprobs: list[float | None] = field(default_factory=list)
    prompt_top_logprobs: list[dict[int, float] | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.token_ids = list(self.prompt_token_ids)
        if self.params.prompt_logprobs is not None:
            self.prompt_logprobs, self.prompt_top_logprobs = [None], [None]

    def prompt_rows(self, start: int, end: int) -> range:
        """Positions in [start, end) whose logits score a prompt token not scored yet (position q scores token
        q+1); empty unless params.prompt_logprobs."""
        if self.params.prompt_logprobs is None:
            return range(0)
        return range(max(start, len(self.prompt_logprobs) - 1), min(end, self.num_prompt_tokens - 1))

    @property
    def wants_prompt_rows(self) -> bool:
        """Prompt logprobs asked for and not all computed: every prompt row must be computed here, none cached."""
        return self.params.prompt_logprobs is not None and len(self.prompt_logprobs) < self.num_prompt_tokens

    @property
    def rank(self) -> tuple[int, int]:
        """Scheduling priority: older requests (then lower choice index) first."""
        return self.arrival, self.index

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - len(self.prompt_token_ids)

    @property
    def output_token_ids(self) -> list[int]:
        return self.token_ids[len(self.prompt_token_ids):]

    @property
    def is_finished(self) -> bool:
        return self.status == SequenceStatus.FINISHED
