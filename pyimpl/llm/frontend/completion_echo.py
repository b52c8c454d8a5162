"""The prompt part of a text completion choice with `echo` and `logprobs` (vLLM's and OpenAI's shape).

The choice's text starts with the prompt, and its `logprobs` cover the prompt tokens first: `tokens`,
`token_logprobs` (the first prompt token's is null: nothing predicts it), `top_logprobs` (null for the first
token) and `text_offset`, the character offset of each token in the returned text, prompt included. The worker
computes the prompt logprobs (wire `output_options.prompt_logprobs`) and sends them with its first chunk, so the
prompt goes out with the choice's first delta rather than in a chunk of its own.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from pyimpl.llm.errors import EngineError

if TYPE_CHECKING:
    from pyimpl.llm.text.preprocessor import Preprocessor


def echo_text(pre: Preprocessor, prompt: str | list[int] | None, prompt_ids: list[int]) -> str:
    """The text `echo` returns: the prompt as sent, or a token-id prompt decoded."""
    return prompt if isinstance(prompt, str) else pre.decode(prompt_ids)


class PromptLogprobs:
    """One choice's echoed prompt with its logprobs; `take(chunk)` hands them out once, with the first worker chunk
    that has tokens (a later one, e.g. after a migration re-sent the prompt with tokens appended, is ignored)."""

    def __init__(self, pre: Preprocessor, text: str, prompt_ids: list[int], skip_special_tokens: bool,
                 token_text: Callable[[int], str]):
        self.text, self.prompt_ids, self.token_text = text, prompt_ids, token_text
        self.pre, self.skip_special_tokens = pre, skip_special_tokens
        self.pending = True

    def take(self, chunk: dict) -> tuple[str, dict] | None:
        """(prompt text, prompt logprobs) for the choice's first delta; None before the first chunk with tokens or
        prompt logprobs, and after it. A worker that sends tokens without prompt logprobs is an EngineError."""
        if not self.pending or not (chunk.get("token_ids") or "prompt_logprobs" in chunk):
            return None
        self.pending = False
        lps, tops = chunk.get("prompt_logprobs"), chunk.get("prompt_top_logprobs")
        if lps is None or len(lps) != len(self.prompt_ids) or len(tops or ()) != len(lps):
            raise EngineError("the worker did not return the prompt's logprobs ('echo' with 'logprobs' needs a "
                              "worker that computes them)")
        return self.text, {"tokens": [self.token_text(t) for t in self.prompt_ids], "token_logprobs": list(lps),
                           "text_offset": self._offsets(),
                           "top_logprobs": [None if top is None else {self.token_text(t): lp for t, lp in top}
                                            for top in tops]}

    def _offsets(self) -> list[int]:
        """Where each prompt token's text starts in the echoed text: the length of the text its predecessors
        decode to (a token that completes a character another began shares that one's offset)."""
        det = self.pre.detokenizer(skip_special_tokens=self.skip_special_tokens)
        offsets, at = [], 0
        for t in self.prompt_ids:
            offsets.append(min(at, len(self.text)))
            at += len(det.add([t]))
        return offsets
