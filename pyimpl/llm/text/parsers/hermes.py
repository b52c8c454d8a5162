"""Hermes-style tool calls: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (Qwen, Hermes)."""
from __future__ import annotations

from .base import ToolCallParser
from .text_scan import decode_json_prefix, split_at_tag
from .deltas import ToolCall, tool_call_from_json

START, END = "<tool_call>", "</tool_call>"


class HermesToolCallParser(ToolCallParser):
    """Splits `<tool_call>` blocks out of streamed text; a block that is not a valid call stays content."""

    name = "hermes"

    def __init__(self) -> None:
        super().__init__()
        self._inside = False

    def _scan(self, final: bool) -> None:
        while True:
            if not self._inside:
                before, after, held = split_at_tag(self._buf, START)
                self._emit_content(before)
                if after is None:
                    self._buf = held
                    break
                self._inside, self._buf = True, after
            else:
                body, after, _ = split_at_tag(self._buf, END)
                if after is None:
                    break
                self._close_block(body, START + body + END)
                self._inside, self._buf = False, after
        if final:
            if self._inside:   # the model stopped before closing the tag
                self._close_block(self._buf, START + self._buf)
            else:
                self._emit_content(self._buf)
            self._inside, self._buf = False, ""

    def _close_block(self, body: str, raw: str) -> None:
        call = _parse_body(body)
        if call is None:
            self._emit_content(raw)
        else:
            self._emit_tool_calls([call])


def _parse_body(body: str) -> ToolCall | None:
    decoded = decode_json_prefix(body)
    if decoded is None or body[decoded[1]:].strip():
        return None
    return tool_call_from_json(decoded[0])
