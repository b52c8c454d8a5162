"""The per-request logits processor: an llguidance matcher's token mask applied to one row of logits."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from llguidance import LLMatcher, LLTokenizer
from llguidance.hf import from_tokenizer

_SHIFTS = torch.arange(32, dtype=torch.int32)


class GuidedTokenizer:
    """A model's tokenizer as llguidance needs it (built once per worker: ~10 ms-1 s) and its added tokens."""

    def __init__(self, hf_tokenizer: Any, vocab_size: int, eos_token_ids: Sequence[int]) -> None:
        self.vocab_size, self.eos_token_ids = vocab_size, list(eos_token_ids)
        self.ll: LLTokenizer = from_tokenizer(hf_tokenizer, n_vocab=vocab_size, eos_token=self.eos_token_ids)
        self.added_tokens: dict[str, int] = dict(hf_tokenizer.get_added_vocab())

    def matcher(self, grammar: str) -> LLMatcher:
        """A fresh matcher; ValueError naming the problem when the grammar (e.g. a client's schema) is invalid."""
        matcher = LLMatcher(self.ll, grammar, log_level=0)
        if matcher.is_error():
            raise ValueError(matcher.get_error())
        return matcher


class GrammarLogitsProcessor:
    """Masks every token the grammar does not allow next; once the grammar is complete only EOS remains.

    Stateful, one per request: it feeds the matcher the tokens generated since the last call (and starts over if
    the history is not a continuation). A step costs one mask computation (llguidance: tens of microseconds).
    """

    def __init__(self, matcher: LLMatcher, vocab_size: int, eos_token_ids: Sequence[int]) -> None:
        self.matcher, self.eos_token_ids = matcher, list(eos_token_ids)
        self._words = torch.zeros((vocab_size + 31) // 32, dtype=torch.int32)
        self._fed: list[int] = []

    def __call__(self, generated_token_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        self._sync(generated_token_ids)
        width = logits.shape[-1]
        if self.matcher.is_error():   # the text left the grammar (cannot happen under the mask): end it
            allowed = torch.zeros(width, dtype=torch.bool)
            allowed[[t for t in self.eos_token_ids if t < width]] = True
        else:
            self.matcher.unsafe_compute_mask_ptr(self._words.data_ptr(), self._words.numel() * 4)
            bits = ((self._words.unsqueeze(-1) >> _SHIFTS) & 1).view(-1).bool()
            allowed = torch.zeros(width, dtype=torch.bool)
            n = min(width, bits.numel())
            allowed[:n] = bits[:n]
        return logits.masked_fill(~allowed.to(logits.device), float("-inf"))

    def _sync(self, generated: list[int]) -> None:
        n = len(self._fed)
        if len(generated) < n or (n and generated[n - 1] != self._fed[-1]):
            self.matcher.reset()
            self._fed, n = [], 0
        for token_id in generated[n:]:
            if token_id not in self.eos_token_ids:
                self.matcher.consume_token(token_id)
            self._fed.append(token_id)
