"""Hermes-style tool calls: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (Qwen, Hermes)."""
from __future__ import annotations

from .base import ToolCallParser
from .json_call import JsonCallScan
from .text_scan import decode_json_prefix, split_at_tag
from .deltas import ToolCall, tool_call_from_json

START, END = "<tool_call>", "</tool_call>"


class HermesToolCallParser(ToolCallParser):
    """Splits `<tool_call>` blocks out of streamed text; a block that is not a valid call stays content.
    Once a block's name and the start of its arguments object are in, the call streams (see json_call)."""

    name = "hermes"

    def __init__(self) -> None:
        super().__init__()
        self._inside = False
        self._scan_call: JsonCallScan | None = None
        self._lead = 0   # whitespace before the block's `{`

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
                self._stream(body)
                if after is None:
                    break
                self._end_block(body)
                self._inside, self._buf = False, after
        if final:
            if self._inside:   # the model stopped before closing the tag
                self._stream(self._buf)
                self._end_block(self._buf, closed=False)
            else:
                self._emit_content(self._buf)
            self._inside, self._buf = False, ""

    def _stream(self, body: str) -> None:
        """Send what is certain of the block's call so far (body: the block's text, no partial end tag)."""
        if self._scan_call is None:
            text = body.lstrip()
            self._scan_call = JsonCallScan.open_object(text)
            if self._scan_call is None:
                return
            self._lead = len(body) - len(text)
            self._open_call(self._scan_call.name)
        self._call_arguments(self._scan_call.advance(body[self._lead:]))

    def _end_block(self, body: str, closed: bool = True) -> None:
        if self._scan_call is not None:
            self._scan_call = None
            self._close_call()
            return
        call = _parse_body(body)
        if call is None:
            self._emit_content(START + body + (END if closed else ""))
        else:
            self._emit_tool_calls([call])


def _parse_body(body: str) -> ToolCall | None:
    decoded = decode_json_prefix(body)
    if decoded is None or body[decoded[1]:].strip():
        return None
    return tool_call_from_json(decoded[0])
