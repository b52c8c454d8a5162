"""Shared machinery of the streaming tool-call parsers: pending text, content output, tool call output."""
from __future__ import annotations

from .deltas import ToolCall, ToolParseDelta


class ToolCallParser:
    """Base of the streaming tool-call parsers: subclasses implement `_scan(final)` over `self._buf`.

    `_scan` consumes what it can decide on from `self._buf` and leaves the rest there; decisions
    depend only on the text, never on how it was chunked, so feeding one character at a time and
    feeding everything at once give the same content and tool calls.
    """

    name = ""

    def __init__(self) -> None:
        self._buf = ""
        self._out = ToolParseDelta()
        self._after_tool_call = False   # drop whitespace between and after tool calls
        self.tool_calls_count = 0       # tool calls found so far (finish reason "tool_calls")

    def feed(self, text: str) -> ToolParseDelta:
        """Add streamed text; return the content that is safe to emit and any tool calls completed."""
        self._buf += text
        return self._run(final=False)

    def finish(self) -> ToolParseDelta:
        """End of stream: resolve held-back text (an unfinished or malformed call becomes content)."""
        return self._run(final=True)

    def _run(self, final: bool) -> ToolParseDelta:
        self._out = ToolParseDelta()
        self._scan(final)
        return self._out

    def _scan(self, final: bool) -> None:
        raise NotImplementedError

    def _emit_content(self, text: str) -> None:
        if self._after_tool_call:
            text = text.lstrip()
            if not text:
                return
            self._after_tool_call = False
        self._out.content += text

    def _emit_tool_calls(self, calls: list[ToolCall]) -> None:
        self._out.tool_calls.extend(calls)
        self.tool_calls_count += len(calls)
        self._after_tool_call = True
