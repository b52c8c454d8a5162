"""The per-request logits processor: an llguidance matcher's token mask applied to one row of logits."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from llguidance import LLMatcher, LLTokenizer
from llguidance.hf import from_tokenizer


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
        self._words = np.zeros((vocab_size + 31) // 32, dtype=np.int32)   # llguidance's bitmask, bit i = token i
        self._fed: list[int] = []

    def __call__(self, generated_token_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        self._sync(generated_token_ids)
        width = logits.shape[-1]
        banned = np.ones(width, dtype=bool)
        if self.matcher.is_error():   # the text left the grammar (cannot happen under the mask): end it
            banned[[t for t in self.eos_token_ids if t < width]] = False
        else:
            self.matcher.unsafe_compute_mask_ptr(self._words.ctypes.data, self._words.nbytes)
            allowed = np.unpackbits(self._words.view(np.uint8), bitorder="little")[:width]
            banned[:allowed.size] = allowed == 0
        return logits.masked_fill_(torch.from_numpy(banned).to(logits.device), float("-inf"))

    def _sync(self, generated: list[int]) -> None:
        n = len(self._fed)
        if len(generated) < n or (n and generated[n - 1] != self._fed[-1]):
            self.matcher.reset()
            self._fed, n = [], 0
        for token_id in generated[n:]:
            if token_id not in self.eos_token_ids:
                self.matcher.consume_token(token_id)
            self._fed.append(token_id)
