"""Reasoning parsers: text inside `<think>…</think>` goes to `reasoning_content`, the rest to `content`."""
from __future__ import annotations

from .deltas import ReasoningDelta
from .text_scan import partial_tag_length, split_at_tag

THINK_START, THINK_END = "<think>", "</think>"


class ThinkReasoningParser:
    """`think`: reasoning only between explicit `<think>` and `</think>` tags (Qwen3 style)."""

    name = "think"
    starts_in_reasoning = False
    single_block = False   # True: after the first `</think>` everything is content

    def __init__(self) -> None:
        self._buf = ""
        self._in_reasoning = self.starts_in_reasoning
        self._at_start = True       # an opening tag may still come first
        self._done = False          # single_block parsers: the reasoning block is over
        self._strip_leading = True  # drop whitespace right after a tag
        self._out = ReasoningDelta()

    def feed(self, text: str) -> ReasoningDelta:
        """Add streamed text; return the content and reasoning that are safe to emit now."""
        self._buf += text
        return self._run(final=False)

    def finish(self) -> ReasoningDelta:
        """End of stream: emit a held-back partial tag as text of the current kind."""
        return self._run(final=True)

    def _run(self, final: bool) -> ReasoningDelta:
        self._out = ReasoningDelta()
        if self._skip_opening_tag() or final:
            self._scan_tags()
        if final:
            self._emit(self._buf)
            self._buf = ""
        return self._out

    def _skip_opening_tag(self) -> bool:
        """Drop an opening `<think>` at the very start; False while the start is still undecided."""
        if not self._at_start:
            return True
        head = self._buf.lstrip()
        if head.startswith(THINK_START):
            self._buf, self._in_reasoning, self._strip_leading = head[len(THINK_START):], True, True
        elif not head or partial_tag_length(head, (THINK_START,)) == len(head):
            return False
        self._at_start = False
        return True

    def _scan_tags(self) -> None:
        while not self._done:
            tag = THINK_END if self._in_reasoning else THINK_START
            before, after, held = split_at_tag(self._buf, tag)
            self._emit(before)
            if after is None:
                self._buf = held
                return
            self._buf, self._in_reasoning, self._strip_leading = after, not self._in_reasoning, True
            self._done = self.single_block and not self._in_reasoning
        self._emit(self._buf)
        self._buf = ""

    def _emit(self, text: str) -> None:
        if self._strip_leading:
            text = text.lstrip()
            if not text:
                return
            self._strip_leading = False
        if self._in_reasoning:
            self._out.reasoning_content += text
        else:
            self._out.content += text


class DeepSeekR1ReasoningParser(ThinkReasoningParser):
    """`deepseek_r1`: output starts inside reasoning (the template opened `<think>`) until `</think>`."""

    name = "deepseek_r1"
    starts_in_reasoning = True
    single_block = True
