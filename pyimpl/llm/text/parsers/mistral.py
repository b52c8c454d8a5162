"""Mistral tool calls: `[TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]` or `[TOOL_CALLS]name[ARGS]{...}`."""
from __future__ import annotations

from .base import ToolCallParser
from .text_scan import decode_json_prefix, split_at_tag
from .deltas import ToolCall, make_tool_call, tool_call_from_json

TOOL_CALLS, ARGS = "[TOOL_CALLS]", "[ARGS]"


class MistralToolCallParser(ToolCallParser):
    """Text before `[TOOL_CALLS]` is content; what follows is a JSON list of calls (or `name[ARGS]{json}`)."""

    name = "mistral"

    def __init__(self) -> None:
        super().__init__()
        self._in_calls = False

    def _scan(self, final: bool) -> None:
        while True:
            if not self._in_calls:
                before, after, held = split_at_tag(self._buf, TOOL_CALLS)
                self._emit_content(before)
                if after is None:
                    self._buf = held
                    break
                self._in_calls, self._buf = True, after
            elif not self._read_calls():
                break
        if final:
            self._emit_content((TOOL_CALLS if self._in_calls else "") + self._buf)
            self._in_calls, self._buf = False, ""

    def _read_calls(self) -> bool:
        """Decode the calls after `[TOOL_CALLS]`; False when more text is needed."""
        head = self._buf.lstrip()
        if not head:
            return False
        if head[0] in "[{":
            closer = "]" if head[0] == "[" else "}"
            decoded = decode_json_prefix(head) if closer in head else None
            if decoded is None:
                return False
            calls = _calls_from_json(decoded[0])
            rest = head[decoded[1]:]
        else:
            name, args_marker, args = head.partition(ARGS)
            decoded = decode_json_prefix(args) if args_marker and "}" in args else None
            if decoded is None:
                return False
            call = make_tool_call(name.strip(), decoded[0])
            calls = [call] if call else None
            rest = args[decoded[1]:]
        if calls:
            self._emit_tool_calls(calls)
        else:
            self._emit_content(TOOL_CALLS + self._buf[:len(self._buf) - len(rest)])
        self._in_calls, self._buf = False, rest
        return True


def _calls_from_json(value: object) -> list[ToolCall] | None:
    items = value if isinstance(value, list) else [value]
    calls = [tool_call_from_json(item) for item in items]
    return calls if calls and all(calls) else None
