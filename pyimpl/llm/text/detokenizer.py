"""Incremental detokenization: token ids in, complete text out, never a broken UTF-8 tail.

Uses the prefix/read-offset method (as vLLM does): decode a small window of recent tokens
twice and emit only the difference, holding it back while it ends in U+FFFD (an incomplete
multi-byte character). The window restarts after each emission, so each token costs O(1).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

REPLACEMENT_CHAR = "\ufffd"
# Tokens of context kept before the read offset, so merges across the boundary decode right.
CONTEXT_TOKENS = 5


class IncrementalDetokenizer:
    """Turns a growing sequence of token ids into text deltas that are always valid UTF-8."""

    def __init__(self, tokenizer: Any, skip_special_tokens: bool = True,
                 prompt_token_ids: Sequence[int] = ()) -> None:
        self._decode = _decoder_for(tokenizer, skip_special_tokens)
        self._tokens: list[int] = list(prompt_token_ids[-CONTEXT_TOKENS:])
        self._prefix_offset = 0
        self._read_offset = len(self._tokens)

    def add(self, token_ids: Sequence[int]) -> str:
        """Append token ids and return the newly completed text ("" while a character is incomplete)."""
        if not token_ids:
            return ""
        self._tokens.extend(token_ids)
        text = self._step()
        if text or len(token_ids) == 1:
            return text
        # The batch ends mid-character: emit what the earlier tokens completed, one by one.
        del self._tokens[len(self._tokens) - len(token_ids):]
        return "".join(self._add_one(t) for t in token_ids)

    def flush(self) -> str:
        """Return whatever is still held back (an incomplete character decodes as U+FFFD)."""
        prefix_text = self._decode(self._tokens[self._prefix_offset:self._read_offset])
        full_text = self._decode(self._tokens[self._prefix_offset:])
        self._prefix_offset = self._read_offset = len(self._tokens)
        return full_text[len(prefix_text):] if len(full_text) > len(prefix_text) else ""

    def _add_one(self, token_id: int) -> str:
        self._tokens.append(token_id)
        return self._step()

    def _step(self) -> str:
        prefix_text = self._decode(self._tokens[self._prefix_offset:self._read_offset])
        full_text = self._decode(self._tokens[self._prefix_offset:])
        if len(full_text) <= len(prefix_text) or full_text.endswith(REPLACEMENT_CHAR):
            return ""
        new_text = full_text[len(prefix_text):]
        self._prefix_offset = max(self._read_offset, len(self._tokens) - CONTEXT_TOKENS)
        self._read_offset = len(self._tokens)
        self._compact()
        return new_text

    def _compact(self) -> None:
        """Drop tokens before the window so memory stays bounded on long generations."""
        if self._prefix_offset > 4096:
            del self._tokens[:self._prefix_offset]
            self._read_offset -= self._prefix_offset
            self._prefix_offset = 0


def _decoder_for(tokenizer: Any, skip_special_tokens: bool) -> Callable[[list[int]], str]:
    """A fast `ids -> str` function: the Rust backend when there is one, else `tokenizer.decode`."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return lambda ids: backend.decode(ids, skip_special_tokens=skip_special_tokens) if ids else ""
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=skip_special_tokens,
                                        clean_up_tokenization_spaces=False) if ids else ""
